"""The bridge graph of the seed, broadcast domains and expected reachability."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from ovsnet.topology import graph
from ovsnet.topology.graph import Domains, Expect, expected, nid
from ovsnet.topology.load import parse

ROOT = Path(__file__).resolve().parents[2]
SEED_TEXT = (ROOT / "topologies" / "seed.toml").read_text()


@pytest.fixture(scope="module")
def seed():
    topo = parse(SEED_TEXT)
    return topo, graph.build(topo)


def test_every_host_has_one_ovs_bridge(seed):
    topo, g = seed
    for h in topo.hosts:
        bridges = [n for n, d in g.nodes(data=True) if d["kind"] == "ovs_bridge" and d["host"] == h]
        assert bridges == [nid("ovs", h, "br-ovs")]
        assert g.edges[graph.host_id(h), bridges[0]]["kind"] == "contains"


def test_edge_attributes(seed):
    _, g = seed
    kinds = set()
    for u, v, d in g.edges(data=True):
        kinds.add(d["kind"])
        if d["kind"] == "access":
            assert isinstance(d["tag"], int) and not isinstance(d["tag"], bool), (u, v, d)
        if d["kind"] == "trunk":
            assert isinstance(d["vlans"], frozenset) and d["vlans"]
            assert d["native"] is None or d["native"] in d["vlans"]
    assert {"trunk", "access", "patch", "member", "contains", "cable", "routes"} <= kinds


def test_seed_node_inventory(seed):
    _, g = seed
    t = g.edges[nid("ovs", "node1", "br-ovs"), nid("nic", "node1", "eth1")]
    assert t["kind"] == "trunk" and t["vlans"] == frozenset({10, 100, 200}) and t["native"] == 10
    assert g.edges[nid("ovs", "node1", "br-ovs"), nid("internal", "node1", "mgmt0")]["tag"] == 10
    assert g.edges[nid("ovs", "node1", "br-ovs"), nid("veth", "node1", "ovs-br-web")]["tag"] == 100
    assert g.edges[nid("linux_bridge", "node1", "br-web"), nid("endpoint", "web1")]["kind"] == "member"
    assert g.graph["vlans"] == {10: "mgmt", 100: "web", 200: "db"}
    assert nid("router_leg", "router", "web") in g
    assert nid("router_leg", "router", "db") not in g
    # per host: host, ovs, nic, internal, 2 x (veth, veth, linux_bridge) = 10; endpoints 4;
    # switch + 2 ports; router + 2 legs
    assert g.number_of_nodes() == 2 * 10 + 4 + 3 + 3


def test_seed_has_no_loops(seed):
    _, g = seed
    assert Domains(g).loops == []


def test_seed_domains(seed):
    _, g = seed
    doms = Domains(g)
    assert doms.same(100, nid("endpoint", "web1"), nid("endpoint", "web2"))
    assert doms.same(200, nid("endpoint", "db1"), nid("endpoint", "db2"))
    assert not doms.same(100, nid("endpoint", "web1"), nid("endpoint", "db1"))
    assert doms.same(10, nid("internal", "node1", "mgmt0"), nid("internal", "node2", "mgmt0"))
    assert doms.same(10, nid("internal", "node1", "mgmt0"), nid("router_leg", "router", "mgmt"))
    web = doms.members(100, nid("endpoint", "web1"))
    assert nid("endpoint", "web2") in web and nid("router_leg", "router", "web") in web
    assert nid("endpoint", "db1") not in web


def test_expected_seed(seed):
    topo, g = seed
    e = expected(topo, g)
    assert e[("web1", "web2")] is Expect.SAME_VLAN
    assert e[("db1", "db2")] is Expect.SAME_VLAN
    assert e[("node1", "node2")] is Expect.SAME_VLAN
    for db in ("db1", "db2"):
        for web in ("web1", "web2"):
            assert e[(web, db)] is Expect.BLOCKED
            assert e[(db, web)] is Expect.BLOCKED
        for h in ("node1", "node2"):
            assert e[(db, h)] is Expect.BLOCKED
            assert e[(h, db)] is Expect.BLOCKED
    for web in ("web1", "web2"):
        for h in ("node1", "node2"):
            assert e[(web, h)] is Expect.ROUTED
            assert e[(h, web)] is Expect.ROUTED
    for (a, b), v in e.items():
        assert e[(b, a)] is v


NO_LAB_TEXT = SEED_TEXT.split("# Only for `ovsnet lab`")[0]


def test_expected_without_lab_assumes_router_on_trunk():
    topo = parse(NO_LAB_TEXT)
    e = expected(topo, graph.build(topo))
    assert e[("web1", "node1")] is Expect.ROUTED
    assert e[("db1", "node1")] is Expect.BLOCKED


def test_without_lab_the_uplinks_meet_an_assumed_upstream_switch():
    # Real hosts: the trunks reach each other through the network the file does
    # not describe, so one VLAN on two hosts is one broadcast domain.
    topo = parse(NO_LAB_TEXT)
    g = graph.build(topo)
    e = expected(topo, g)
    assert e[("web1", "web2")] is Expect.SAME_VLAN
    assert e[("db1", "db2")] is Expect.SAME_VLAN
    assert e[("node1", "node2")] is Expect.SAME_VLAN
    assert e[("web1", "db2")] is Expect.BLOCKED
    assert g.nodes[graph.UPSTREAM_ID]["implicit"] is True
    port = nid("switch_port", "upstream", "node2-eth1")
    assert g.edges[graph.UPSTREAM_ID, port] == {"kind": "trunk", "vlans": frozenset({10, 100, 200}), "native": 10, "implicit": True}
    assert g.edges[nid("nic", "node2", "eth1"), port]["kind"] == "cable"


def test_assumed_upstream_carries_only_what_both_trunks_carry():
    # node2's trunk drops db: db1 and db2 can no longer meet, web still can.
    text = NO_LAB_TEXT.replace(
        '[[hosts.node2.uplinks]]\nnic = "eth1"\nvlans = ["mgmt", "web", "db"]',
        '[[hosts.node2.uplinks]]\nnic = "eth1"\nvlans = ["mgmt", "web"]',
    )
    assert text != NO_LAB_TEXT
    topo = parse(text)
    e = expected(topo, graph.build(topo))
    assert e[("db1", "db2")] is Expect.BLOCKED
    assert e[("web1", "web2")] is Expect.SAME_VLAN


def test_a_lab_replaces_the_assumed_upstream():
    topo = parse(SEED_TEXT)
    g = graph.build(topo)
    assert graph.UPSTREAM_ID not in g
    assert not any(d.get("implicit") for _u, _v, d in g.edges(data=True))


def test_two_uplinks_on_one_vlan_without_lab_is_a_possible_loop_warning():
    from ovsnet.topology.validate import validate

    topo = parse(_two_uplinks(NO_LAB_TEXT))
    g = graph.build(topo)
    findings = validate(topo, g)
    loops = [f for f in findings if "loop" in f.message]
    assert loops and all(f.severity == "warning" for f in loops)
    assert "possible L2 loop in VLAN web" in loops[0].message
    assert "eth2" in loops[0].message
    # Each names the uplink that closes it: the second NIC of each host onto the assumed upstream switch.
    assert [f.path for f in loops] == ["hosts.node1.uplinks[1]", "hosts.node2.uplinks[1]"]


def _two_uplinks(text: str) -> str:
    for h in ("node1", "node2"):
        old = f'[[hosts.{h}.uplinks]]\nnic = "eth1"\nvlans = ["mgmt", "web", "db"]\nnative_vlan = "mgmt"\n'
        assert old in text
        text = text.replace(old, old + f'\n[[hosts.{h}.uplinks]]\nnic = "eth2"\nvlans = ["web"]\n')
    return text


def test_domains_find_loop_between_hosts():
    text = _two_uplinks(SEED_TEXT).replace(
        '[[lab.cables]]\nends = ["node2:eth1", "switch"]',
        '[[lab.cables]]\nends = ["node2:eth1", "switch"]\n\n[[lab.cables]]\nends = ["node1:eth2", "node2:eth2"]',
    )
    g = graph.build(parse(text))
    loops = Domains(g).loops
    assert [lp.vlan for lp in loops] == [100]


def test_domains_find_loop_of_plain_links():
    g = nx.Graph()
    for n in ("a", "b", "c"):
        g.add_node(n, kind="linux_bridge")
    g.add_edge("a", "b", kind="member")
    g.add_edge("b", "c", kind="patch")
    g.add_edge("c", "a", kind="cable")
    loops = Domains(g).loops
    assert len(loops) == 1 and loops[0].vlan is None


def test_domains_trunk_pair_with_disjoint_vlans_is_no_loop():
    g = nx.Graph()
    for n in ("x", "y"):
        g.add_node(n, kind="ovs_bridge")
    g.add_node("m", kind="switch")
    g.add_edge("x", "m", kind="trunk", vlans=frozenset({1, 2}), native=None)
    g.add_edge("y", "m", kind="trunk", vlans=frozenset({2}), native=None)
    d = Domains(g)
    assert d.loops == []
    assert d.same(2, "x", "y") and not d.same(1, "x", "y")
