"""`ovsnet import`, pure part: a snapshot becomes a topology file that describes it.

The round trip: a host as `up` leaves it (tests/support/snapshots.py)
imports back to its part of the topology (same desired objects, modulo the
VLAN names no mark carries), and the plan of the imported file on that host
is empty. A host built by hand (no marks) imports to a file whose plan has
only objects to adopt.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ovsnet.current import Address, DockerNetwork, Link, OvsInterface, OvsPort, Route
from ovsnet.errors import ConfigError, UsageError
from ovsnet.importer import run
from ovsnet.importer.describe import describe
from ovsnet.kinds import Settings
from ovsnet.plan import planner
from ovsnet.plan.model import Action
from ovsnet.topology import load_checked
from ovsnet.topology.load import parse
from tests.support.shapes import shape
from tests.support.snapshots import applied

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "topologies").glob("*.toml"))


def by_hand(cur):
    """The same host as someone would build it with ovs-vsctl, ip and docker: no marks, vlan_mode left unset."""
    ovs = cur.ovs
    bridges = {k: replace(b, external_ids={}) for k, b in ovs.bridges.items()}
    ports = {k: replace(p, external_ids={}, vlan_mode=None if p.vlan_mode == "access" else p.vlan_mode) for k, p in ovs.ports.items()}
    links = {k: replace(lk, alias=None) for k, lk in cur.linux.links.items()}
    nets = {k: replace(n, labels={}) for k, n in (cur.docker or {}).items()}
    return replace(cur, ovs=replace(ovs, bridges=bridges, ports=ports), linux=replace(cur.linux, links=links), docker=nets)


@pytest.fixture(scope="module")
def seed():
    return load_checked(ROOT / "topologies" / "seed.toml")


# --- round trip over every file in topologies/ ---------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_host_ovsnet_configured_imports_back_to_its_part(path):
    c = load_checked(path)
    for host in c.topology.hosts:
        cur = applied(c.topology, host)
        r = run.settle(host, cur)
        t = r.checked.topology
        assert t.name == c.topology.name  # from the marks
        assert shape(t, host) == shape(c.topology, host)
        p = planner.diff(planner.desire(t, t.hosts[host]), cur)
        assert (p.changes, p.blockers) == ((), ()), [x.line() for x in p.changes]
        assert r.left_out == ()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_hosts_imported_one_into_the_other_make_one_file(path, tmp_path):
    c = load_checked(path)
    into = None
    for host in c.topology.hosts:
        r = run.settle(host, applied(c.topology, host), into, source=str(tmp_path / "site.toml"))
        into = run.Into(r.text, str(tmp_path / "site.toml"))
    (tmp_path / "site.toml").write_text(into.text)
    t = load_checked(tmp_path / "site.toml").topology
    assert set(t.hosts) == set(c.topology.hosts)
    for host in c.topology.hosts:
        assert shape(t, host) == shape(c.topology, host)


# --- a host built by hand --------------------------------------------------------------------------


def test_a_host_built_by_hand_imports_to_a_file_that_only_adopts(seed):
    cur = by_hand(applied(seed.topology, "node1"))
    r = run.settle("node1", cur, name="site")
    t = r.checked.topology
    assert (t.name, set(t.vlans)) == ("site", {"vlan10", "vlan100", "vlan200"})
    assert "[vlans.vlan100]  # name guessed: nothing on the host names VLAN 100" in r.text
    assert 'router = "192.168.10.1"  # guessed: the host\'s default gateway' in r.text
    # nothing marked as ovsnet's: everything is in the way until adopted, nothing else
    p = planner.diff(planner.desire(t, t.hosts["node1"]), cur)
    assert p.changes == ()
    assert {b.resource for b in p.blockers} == {"bridge:br-ovs", "port:br-ovs/eth1", "port:br-ovs/mgmt0", "port:br-ovs/ovs-br-web",
                                                 "port:br-ovs/ovs-br-db", "link:br-web", "link:br-db", "veth:ovs-br-web/lnx-br-web",
                                                 "veth:ovs-br-db/lnx-br-db", "docker-network:web", "docker-network:db"}
    adopt = Settings(adopt=True)
    p = planner.diff(planner.desire(t, t.hosts["node1"], adopt), cur, settings=adopt)
    assert p.blockers == ()
    # Reported to the lead (not fixed here, kinds/ is theirs): Docker networks
    # cannot carry a new label, so the planner recreates them on --adopt.
    assert {c.resource for c in p.changes if c.action is not Action.ADOPT} == {"docker-network:web", "docker-network:db"}


def test_names_come_from_the_file_it_goes_into(seed, tmp_path):
    text = (ROOT / "topologies" / "seed.toml").read_text().split("[hosts.node1]")[0]  # the VLANs, no host yet
    cur = by_hand(applied(seed.topology, "node1"))
    r = run.settle("node1", cur, run.Into(text, str(tmp_path / "seed.toml")))
    h = r.checked.topology.hosts["node1"]
    assert h.uplinks[0].vlans == ("mgmt", "web", "db") and h.uplinks[0].native_vlan == "mgmt"
    assert [d.vlan for d in h.docker] == ["web", "db"]
    assert "[vlans." not in r.text[len(text):]  # no VLAN added
    assert r.text.startswith(text)  # nothing before the host changes


def test_into_refuses_a_host_it_has(seed):
    text = (ROOT / "topologies" / "seed.toml").read_text()
    with pytest.raises(UsageError, match="already has a host named node1"):
        run.settle("node1", applied(seed.topology, "node1"), run.Into(text, "seed.toml"))


def test_into_checks_the_whole_file(seed):
    # The seed's endpoints name node2, which this file does not have yet: the
    # whole file is checked and refused, with the finding.
    text = (ROOT / "topologies" / "seed.toml").read_text().split("[hosts.node1]")[0] + "\n[[endpoints]]\nname = \"x\"\nhost = \"node2\"\nvlan = \"web\"\naddress = \"10.100.0.50/24\"\n"
    with pytest.raises(ConfigError) as exc:
        run.settle("node1", applied(seed.topology, "node1"), run.Into(text, "site.toml"))
    assert [f.message for f in exc.value.findings if f.severity == "error"] == ["no host named 'node2'"]


# --- what it cannot say, and guesses ---------------------------------------------------------------


def test_what_a_topology_cannot_say_is_listed(seed):
    cur = by_hand(applied(seed.topology, "node1"))
    ports = dict(cur.ovs.ports)
    ports["eth1"] = replace(ports["eth1"], trunks=frozenset())  # every VLAN
    ports["vx0"] = OvsPort("vx0", "br-ovs", interfaces=(OvsInterface("vx0", "vxlan"),))
    ports["mon0"] = OvsPort("mon0", "br-ovs", tag=10, interfaces=(OvsInterface("mon0", "internal"),))
    links = dict(cur.linux.links)
    links["mon0"] = Link("mon0", 700, "tun", up=True)
    links["docker0"] = Link("docker0", 701, "bridge", up=True)
    links["eth0"] = Link("eth0", 702, up=True)
    nets = dict(cur.docker)
    nets["bridge"] = DockerNetwork("bridge", "c" * 64, "bridge", "docker0", "172.17.0.0/16", "172.17.0.1", None, None)
    linux = replace(cur.linux, links=links, addresses=cur.linux.addresses + (Address("eth0", "10.0.2.15/24"), Address("docker0", "172.17.0.1/16")),
                    routes=cur.linux.routes + (Route("10.9.0.0/16", "eth0", "10.0.2.2", 0, "static"),))
    r = run.settle("node1", replace(cur, ovs=replace(cur.ovs, ports=ports), linux=linux, docker=nets))
    assert list(r.left_out) == [
        "port vx0 of type vxlan: a topology has no such ports; left out",
        "internal port mon0 has no address: a host has one management port, mgmt0; left out",
        "port eth1 trunks every VLAN (no trunks listed): the file lists the VLANs this host uses, 10,100,200, and up would restrict the trunk to them",
        "Docker network bridge (bridge on docker0): not on a Docker bridge of the layout; left out",
        "Linux bridge docker0, holding 172.17.0.1/16: not part of the layout; left out",
        "eth0 holds 10.0.2.15/24: not part of the layout; left out",
        "route 10.9.0.0/16 via 10.0.2.2 dev eth0: ovsnet manages only the management section's default route; left out",
    ]


def test_a_docker_range_the_plan_would_not_give_is_pinned(seed):
    cur = applied(seed.topology, "node1")
    nets = dict(cur.docker)
    nets["web"] = replace(nets["web"], ip_range="10.100.0.192/26")
    r = run.settle("node1", replace(cur, docker=nets))
    assert r.host.docker[0].ip_range is not None and str(r.host.docker[0].ip_range) == "10.100.0.192/26"
    assert 'ip_range = "10.100.0.192/26"' in r.text


def test_the_flat_layout(seed):
    c = load_checked(ROOT / "topologies" / "flat.toml")
    cur = by_hand(applied(c.topology, "node1"))
    imp = describe("node1", cur)
    assert imp.host.flat is not None and (imp.host.flat.bridge, imp.host.flat.nic) == ("br0", "eth0")
    assert [str(a) for a in imp.host.management.addresses] == ["192.168.1.11/24"]
    r = run.settle("node1", cur)
    assert parse(r.text).hosts["node1"].layout.value == "flat"


def test_nothing_to_import_is_an_error(seed):
    cur = applied(seed.topology, "node1")
    bare = replace(cur, ovs=replace(cur.ovs, bridges={}, ports={}), linux=replace(cur.linux, links={"eth1": Link("eth1", 2, up=True)}), docker={})
    with pytest.raises(UsageError, match="nothing of ovsnet's layouts to import"):
        run.settle("node1", bare)
