"""The live picture: a host snapshot as a graph, marked with the plan's own verdicts.

Snapshots come from tests/support/snapshots.py (`applied`: the host as `up`
leaves it), broken here by hand the way the issue lists: a tag changed, a
VLAN removed from a trunk, a foreign port added, a Docker network deleted.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import networkx as nx
import pytest

from ovsnet.cli.options import _jsonable
from ovsnet.current import DockerNetwork, Link, OvsInterface, OvsPort
from ovsnet.live import read, snapshot
from ovsnet.marks import ovs_marks
from ovsnet.plan import offline, planner
from ovsnet.render import dot, mermaid, tree
from ovsnet.topology import load_checked
from tests.support.snapshots import applied

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "topologies").glob("*.toml"))


@pytest.fixture(scope="module")
def seed():
    return load_checked(ROOT / "topologies" / "seed.toml")


def plan_of(c, host, cur):
    return planner.diff(planner.desire(c.topology, c.topology.hosts[host]), cur)


def picture(c, host, cur):
    return read.picture(c, host, cur, plan_of(c, host, cur))


def marks(g):
    return {(m["resource"], m["mark"]) for m in g.graph["marks"]}


def broken(cur):
    """The issue's four breakages, by hand: tag, trunk, foreign port, deleted Docker network."""
    ports = dict(cur.ovs.ports)
    ports["ovs-br-db"] = replace(ports["ovs-br-db"], tag=300)
    ports["eth1"] = replace(ports["eth1"], trunks=frozenset({10, 100}))
    ports["fp0"] = OvsPort("fp0", "br-ovs", tag=100, interfaces=(OvsInterface("fp0", ""),))
    links = dict(cur.linux.links)
    links["fp0"] = Link("fp0", 900, "veth", peer="fp1", up=True)
    links["fp1"] = Link("fp1", 901, "veth", peer="fp0", up=True)
    links["docker0"] = Link("docker0", 902, "bridge", up=True)
    nets = dict(cur.docker)
    del nets["web"]
    nets["bridge"] = DockerNetwork("bridge", "b" * 64, "bridge", "docker0", "172.17.0.0/16", "172.17.0.1", None, None)
    return replace(cur, ovs=replace(cur.ovs, ports=ports), linux=replace(cur.linux, links=links), docker=nets)


# --- the helper is right: `up` leaves nothing to do ------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_applied_snapshot_needs_no_change(path):
    c = load_checked(path)
    for host in c.topology.hosts:
        p = plan_of(c, host, applied(c.topology, host))
        assert (p.changes, p.blockers) == ((), ()), (host, [x.line() for x in p.changes])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_host_as_up_leaves_it_has_no_mark(path):
    c = load_checked(path)
    for host in c.topology.hosts:
        g = picture(c, host, applied(c.topology, host))
        assert g.graph["marks"] == []
        assert [n for n, d in g.nodes(data=True) if d.get("drift") or d.get("faded")] == []


# --- what exists -----------------------------------------------------------------------------


def test_snapshot_graph_has_the_layout(seed):
    g = snapshot.build("node1", applied(seed.topology, "node1"), "seed")
    assert g.edges["ovs:node1/br-ovs", "nic:node1/eth1"] == {"kind": "trunk", "vlans": frozenset({10, 100, 200}), "native": 10, "vlan_mode": "native-untagged"}
    assert g.edges["ovs:node1/br-ovs", "veth:node1/ovs-br-web"]["tag"] == 100
    assert g.edges["veth:node1/ovs-br-web", "veth:node1/lnx-br-web"]["kind"] == "patch"
    assert g.edges["veth:node1/lnx-br-web", "linux_bridge:node1/br-web"]["kind"] == "member"
    assert g.edges["docker_network:node1/web", "linux_bridge:node1/br-web"]["kind"] == "member"
    web = g.nodes["docker_network:node1/web"]
    assert (web["subnet"], web["gateway"], web["ip_range"], web["vlan"]) == ("10.100.0.0/24", "10.100.0.1", "10.100.0.64/26", 100)
    mgmt = g.nodes["internal:node1/mgmt0"]
    assert mgmt["addresses"] == ("192.168.10.11/24",) and mgmt["routes"] == ("default via 192.168.10.1",)
    assert mgmt["resources"] == ("port:br-ovs/mgmt0", "link:mgmt0") and mgmt["owner"] == "seed"
    # The bridge's own local port is the bridge, not a port of it.
    assert "internal:node1/br-ovs" not in g and "nic:node1/br-ovs" not in g


def test_trunk_of_every_vlan_is_said_so(seed):
    cur = applied(seed.topology, "node1")
    ports = dict(cur.ovs.ports)
    ports["eth1"] = replace(ports["eth1"], trunks=frozenset(), tag=None, vlan_mode=None)
    g = snapshot.build("node1", replace(cur, ovs=replace(cur.ovs, ports=ports)))
    e = g.edges["ovs:node1/br-ovs", "nic:node1/eth1"]
    assert e["all_vlans"] is True
    assert "trunk all VLANs → " in tree.to_tree(g)


# --- marks from the plan -------------------------------------------------------------------------


def test_the_issue_breakages_are_marked_exactly(seed):
    g = picture(seed, "node1", broken(applied(seed.topology, "node1")))
    assert marks(g) == {
        ("port:br-ovs/eth1", "different"),
        ("port:br-ovs/ovs-br-db", "different"),
        ("port:br-ovs/fp0", "foreign"),
        ("docker-network:web", "missing"),
    }
    nodes = {n: d["drift"] for n, d in g.nodes(data=True) if d.get("drift")}
    assert nodes == {"nic:node1/eth1": "different", "veth:node1/ovs-br-db": "different", "veth:node1/fp0": "foreign",
                     "docker_network:node1/web": "missing"}
    assert g.nodes["veth:node1/ovs-br-db"]["drift_notes"] == ["now access tag 300; the file: access tag 200"]
    # the edges that carry them
    assert g.edges["ovs:node1/br-ovs", "veth:node1/ovs-br-db"]["drift"] == "different"
    assert g.edges["ovs:node1/br-ovs", "nic:node1/eth1"]["drift"] == "different"
    assert g.edges["docker_network:node1/web", "linux_bridge:node1/br-web"]["drift"] == "missing"
    # neither ovsnet's nor in the way: faded
    assert {n for n, d in g.nodes(data=True) if d.get("faded")} == {"veth:node1/fp1", "linux_bridge:node1/docker0", "docker_network:node1/bridge"}


def test_plan_marks_and_picture_agree(seed):
    cur = broken(applied(seed.topology, "node1"))
    p = plan_of(seed, "node1", cur)
    g = read.picture(seed, "node1", cur, p)
    from_plan = {(m["resource"]) for m in g.graph["marks"] if m["from"] in ("plan", "blocker")}
    assert from_plan == {c.resource for c in p.changes} | {b.resource for b in p.blockers}
    assert [m["resource"] for m in g.graph["marks"] if m["from"] == "bridge"] == ["port:br-ovs/fp0"]


def test_extra_and_foreign_from_the_plan(seed):
    cur = applied(seed.topology, "node1")
    ports = dict(cur.ovs.ports)
    # ovsnet's, no longer declared: the plan deletes it
    ports["old0"] = OvsPort("old0", "br-ovs", tag=100, interfaces=(OvsInterface("old0", ""),), external_ids=ovs_marks("seed", "access"))
    links = dict(cur.linux.links)
    links["old0"] = Link("old0", 950, up=True)
    # br-web made by someone else: the plan refuses (a blocker)
    links["br-web"] = replace(links["br-web"], alias=None)
    g = picture(seed, "node1", replace(cur, ovs=replace(cur.ovs, ports=ports), linux=replace(cur.linux, links=links)))
    assert marks(g) == {("port:br-ovs/old0", "extra"), ("link:br-web", "foreign")}
    assert g.nodes["linux_bridge:node1/br-web"]["drift_notes"] == ["br-web exists and belongs to not ovsnet"]


def test_a_host_before_ovsnet_is_drawn_from_the_file(seed):
    want = planner.desire(seed.topology, seed.topology.hosts["node1"])
    g = picture(seed, "node1", offline.from_nothing(want))
    missing = {n for n, d in g.nodes(data=True) if d.get("drift") == "missing"}
    assert missing == {"ovs:node1/br-ovs", "internal:node1/mgmt0", "veth:node1/ovs-br-web", "veth:node1/lnx-br-web", "veth:node1/ovs-br-db",
                       "veth:node1/lnx-br-db", "linux_bridge:node1/br-web", "linux_bridge:node1/br-db", "docker_network:node1/web",
                       "docker_network:node1/db"}
    assert all(g.nodes[n]["ghost"] for n in missing)
    # eth1 exists: what is missing is its port on the bridge, the edge; its address moves
    eth1 = g.nodes["nic:node1/eth1"]
    assert eth1["drift"] == "different" and not eth1.get("ghost")
    assert g.edges["ovs:node1/br-ovs", "nic:node1/eth1"]["drift"] == "missing"
    assert any("192.168.10.11/24 to delete" in n for n in eth1["drift_notes"])
    # what is no node is listed for the host
    assert [line.split(": ")[1] for line in g.graph["host_drift"]["node1"]] == ["route:default", "dns:nameservers"]


# --- pictures ----------------------------------------------------------------------------------


def test_every_format_shows_the_marks_and_a_legend(seed):
    g = picture(seed, "node1", broken(applied(seed.topology, "node1")))
    text = tree.to_tree(g)
    assert "→ [DIFFERENT] ovs-br-db (veth)  <- now access tag 300; the file: access tag 200" in text
    assert "[FOREIGN] fp0" in text and "[MISSING] web (Docker network)" in text and "fp1 (veth)  · not ovsnet's" in text
    assert "  MISSING     1  declared in the file" in text and "  faded       3" in text
    d = dot.to_dot(g)
    assert '"veth:node1/ovs-br-db" [shape="cds", fillcolor="#ffffff", style="filled", fontsize="10", margin="0.2,0.08", color="#c51162", penwidth="3"' in d
    assert 'style="dashed,filled"' in d and "<b>MISSING</b></font> (1)" in d and "faded: not ovsnet" in d
    assert 'label="DIFFERENT: tag 300"' in d
    m = mermaid.to_mermaid(g)
    assert "classDef drift_missing stroke:#e8000b" in m and "class n_veth_node1_fp0 drift_foreign" in m
    assert ":::drift_different" in m and "n_legend" in m


def test_json_is_the_same_graph_as_data(seed):
    g = picture(seed, "node1", broken(applied(seed.topology, "node1")))
    data = json.loads(json.dumps(nx.node_link_data(g, edges="edges"), default=_jsonable))
    assert {(m["resource"], m["mark"]) for m in data["graph"]["marks"]} == marks(g)
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes["veth:node1/fp0"]["drift"] == "foreign" and nodes["veth:node1/fp1"]["faded"] is True


def test_topology_pictures_are_unchanged_by_live_support(seed):
    # The file's own graph carries no mark: no legend, no badge.
    assert "Drift against" not in tree.to_tree(seed.graph)
    assert "MISSING" not in dot.to_dot(seed.graph) and "drift_" not in mermaid.to_mermaid(seed.graph)
