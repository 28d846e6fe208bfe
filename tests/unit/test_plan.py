"""The planner: offline order, idempotence, ownership, teardown, and data-driven cases."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ovsnet.backends.netlink.ops import NlAddAddress, NlReplaceRoute
from ovsnet.current import (
    Address,
    Current,
    DockerNetwork,
    Link,
    LinuxState,
    OvsBridge,
    OvsInterface,
    OvsPort,
    OvsState,
    Route,
)
from ovsnet.kinds import Settings
from ovsnet.kinds.dns import SavedDns
from ovsnet.kinds.linux_bridge import NlDeleteLink
from ovsnet.kinds.ovs_bridge import OvsAddBridge, OvsDelBridge, OvsSetBridge
from ovsnet.kinds.ovs_port import OvsAddPort, OvsDelPort
from ovsnet.kinds.uplink import SavedUplink
from ovsnet.marks import DOCKER_OWNER_LABEL, OWNER_KEY, ROLE_KEY, alias_for
from ovsnet.plan import planner
from ovsnet.plan.model import Action, Phase
from ovsnet.plan.offline import from_nothing
from ovsnet.topology import check
from ovsnet.topology.load import load, parse

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "topologies" / "seed.toml"
CASES = ROOT / "tests" / "cases"
TOPO = "seed"


@pytest.fixture(scope="module")
def seed():
    return parse(SEED.read_text(), str(SEED))


@pytest.fixture(scope="module")
def node1(seed):
    return planner.desire(seed, seed.hosts["node1"])


def offline(d):
    return planner.diff(d, from_nothing(d))


# --- the offline plan of node1 -------------------------------------------------------


def test_offline_plan_is_in_safe_order(node1):
    p = offline(node1)
    assert p.blockers == ()
    phases = [c.phase for c in p.changes]
    # netlink creates, then all OVSDB changes contiguous, then the uplink
    first_ovs = phases.index(Phase.OVSDB)
    last_ovs = len(phases) - 1 - phases[::-1].index(Phase.OVSDB)
    assert all(ph is Phase.LINUX for ph in phases[:first_ovs])
    assert all(ph is Phase.OVSDB for ph in phases[first_ovs:last_ovs + 1])
    assert all(c.action is Action.CREATE for c in p.changes[:first_ovs])
    assert first_ovs == 4
    assert all(ph not in (Phase.LINUX, Phase.OVSDB) for ph in phases[last_ovs + 1:])
    assert phases.index(Phase.UPLINK) == last_ovs + 1
    # the veths exist before OVS gets their ends as ports
    res = [c.resource for c in p.changes]
    assert res.index("veth:ovs-br-web/lnx-br-web") < res.index("port:br-ovs/ovs-br-web")
    assert res.index("bridge:br-ovs") < res.index("port:br-ovs/eth1")
    # address on mgmt0 BEFORE the route move BEFORE the delete on eth1
    add = res.index("address:mgmt0/192.168.10.11/24")
    move = res.index("route:default")
    delete = res.index("address:eth1/192.168.10.11/24")
    assert res.index("port:br-ovs/mgmt0") < add < move < delete
    assert p.changes[move].action is Action.MOVE
    assert p.changes[move].ops == (NlReplaceRoute("default", "mgmt0", "192.168.10.1", 0),)
    assert p.changes[delete].action is Action.DELETE
    # Docker last
    assert [c.phase for c in p.changes[-2:]] == [Phase.DOCKER, Phase.DOCKER]


def test_offline_plan_reasons_and_undo(node1):
    p = offline(node1)
    for c in p.changes:
        assert c.reason, c
        assert c.ops, c
        if c.action is Action.CREATE:
            assert c.undo, f"create without undo: {c.line()}"
    by_res = {c.resource: c for c in p.changes}
    assert by_res["bridge:br-ovs"].undo == (OvsDelBridge("br-ovs"),)
    assert by_res["link:br-web"].undo == (NlDeleteLink("br-web"),)
    assert by_res["route:default"].undo == (NlReplaceRoute("default", "eth1", "192.168.10.1", 0, "boot"),)
    assert by_res["address:eth1/192.168.10.11/24"].undo == (NlAddAddress("eth1", "192.168.10.11/24"),)


def test_offline_plan_saves_the_uplink(node1):
    p = offline(node1)
    assert p.moves_uplink and p.moves_from == ("eth1",)
    up = p.keep["uplink"]
    assert up.nic == "eth1"
    assert up.addresses == ("192.168.10.11/24",)
    assert up.routes == (Route("default", "eth1", "192.168.10.1", 0, "boot"),)
    # the DNS servers it replaces are remembered by the DNS kind
    assert p.keep["dns"] == SavedDns(())
    # and the checks it promises: the management port appears, the gateway answers
    assert [c.describe() for c in p.checks] == ["wait for ovs-vswitchd to create mgmt0", "the gateway check (192.168.10.1 on mgmt0, ARP)"]


def test_ovs_ops_carry_ownership_marks(node1):
    p = offline(node1)
    for c in p.changes:
        for op in c.ops:
            if isinstance(op, (OvsAddBridge, OvsAddPort)):
                assert op.external_ids[OWNER_KEY] == TOPO
                assert op.external_ids[ROLE_KEY]


# --- idempotence ---------------------------------------------------------------------------


def converged(d, seed) -> Current:
    """node1 as it is after a successful `up`, spelled by hand."""
    def marks(role):
        return {OWNER_KEY: TOPO, ROLE_KEY: role}

    ports = {
        "eth1": OvsPort("eth1", "br-ovs", 10, frozenset({10, 100, 200}), "native-untagged", (OvsInterface("eth1", "", 1),), marks("uplink")),
        "mgmt0": OvsPort("mgmt0", "br-ovs", 10, frozenset(), "access", (OvsInterface("mgmt0", "internal", 2),), marks("management")),
        "ovs-br-web": OvsPort("ovs-br-web", "br-ovs", 100, frozenset(), "access", (OvsInterface("ovs-br-web", "", 3),), marks("patch")),
        "ovs-br-db": OvsPort("ovs-br-db", "br-ovs", 200, frozenset(), "access", (OvsInterface("ovs-br-db", "", 4),), marks("patch")),
    }
    bridges = {"br-ovs": OvsBridge("br-ovs", "system", tuple(ports), marks("bridge"))}
    patch = alias_for(TOPO, "patch")
    links = {
        "eth1": Link("eth1", 2, "", master="ovs-system", up=True),
        "mgmt0": Link("mgmt0", 3, "openvswitch", up=True),
        "br-web": Link("br-web", 4, "bridge", up=True, alias=alias_for(TOPO, "docker-bridge")),
        "br-db": Link("br-db", 5, "bridge", up=True, alias=alias_for(TOPO, "docker-bridge")),
        "ovs-br-web": Link("ovs-br-web", 6, "veth", master="ovs-system", peer="lnx-br-web", up=True, alias=patch),
        "lnx-br-web": Link("lnx-br-web", 7, "veth", master="br-web", peer="ovs-br-web", up=True, alias=patch),
        "ovs-br-db": Link("ovs-br-db", 8, "veth", master="ovs-system", peer="lnx-br-db", up=True, alias=patch),
        "lnx-br-db": Link("lnx-br-db", 9, "veth", master="br-db", peer="ovs-br-db", up=True, alias=patch),
    }
    linux = LinuxState(
        links,
        (Address("mgmt0", "192.168.10.11/24"),),
        (Route("192.168.10.0/24", "mgmt0", None, 0, "kernel"), Route("default", "mgmt0", "192.168.10.1", 0, "static")),
    )
    docker = {
        n.name: DockerNetwork(n.name, f"id-{n.name}", "bridge", n.bridge, n.subnet, n.gateway, n.ip_range, n.mtu,
                              {DOCKER_OWNER_LABEL: TOPO, "org.ovsnet.vlan": n.vlan})
        for n in d.of("docker-network")
    }
    return Current(OvsState(bridges, ports), linux, dns=("192.168.10.1",), docker=docker)


def test_diff_against_converged_state_is_empty(node1, seed):
    p = planner.diff(node1, converged(node1, seed))
    assert p.changes == (), [c.line() for c in p.changes]
    assert p.blockers == ()
    assert p.empty and not p.moves_uplink


def test_retag_of_an_owned_port_is_a_modify(node1, seed):
    st = converged(node1, seed)
    ports = dict(st.ovs.ports)
    ports["ovs-br-web"] = replace(ports["ovs-br-web"], tag=101)
    p = planner.diff(node1, replace(st, ovs=replace(st.ovs, ports=ports)))
    (c,) = p.changes
    assert c.action is Action.MODIFY and c.resource == "port:br-ovs/ovs-br-web"
    assert c.line() == "modify  port:br-ovs/ovs-br-web  access tag 101 -> access tag 100"
    assert c.undo[0].tag == 101


def _with_macs(st, nic_mac, port_mac):
    links = dict(st.linux.links)
    links["eth1"] = replace(links["eth1"], mac=nic_mac)
    ports = dict(st.ovs.ports)
    ports["mgmt0"] = replace(ports["mgmt0"], interfaces=(replace(ports["mgmt0"].interfaces[0], mac=port_mac),))
    return replace(st, linux=replace(st.linux, links=links), ovs=replace(st.ovs, ports=ports))


def test_a_port_that_holds_the_address_keeps_its_mac(node1, seed):
    """Hand-built (adopted) or older hosts: peers know mgmt0's MAC; changing it would cut the host off until they ask again."""
    st = _with_macs(converged(node1, seed), "52:54:00:00:00:01", None)
    p = planner.diff(node1, st)
    assert p.changes == (), [c.line() for c in p.changes]


def test_a_port_still_to_take_the_address_takes_the_nics_mac(node1, seed):
    st = _with_macs(converged(node1, seed), "52:54:00:00:00:01", None)
    linux = st.linux
    moved_back = tuple(replace(a, ifname="eth1") if a.ifname == "mgmt0" else a for a in linux.addresses)
    st = replace(st, linux=replace(linux, addresses=moved_back))
    p = planner.diff(node1, st)
    (mac,) = [c for c in p.changes if c.resource == "port:br-ovs/mgmt0"]
    assert mac.line() == "modify  port:br-ovs/mgmt0  MAC chosen by OVS -> MAC 52:54:00:00:00:01"
    assert mac.phase is Phase.OVSDB and any(c.resource == "address:mgmt0/192.168.10.11/24" for c in p.changes)


def test_foreign_bridge_is_a_blocker_unless_adopt(node1):
    st = from_nothing(node1)
    st = replace(st, ovs=OvsState({"br-ovs": OvsBridge("br-ovs", "system", (), {"other": "x"})}, {}))
    p = planner.diff(node1, st)
    (b,) = p.blockers
    assert b.resource == "bridge:br-ovs"
    assert "not ovsnet" in b.message
    assert "--adopt" in b.hint

    p2 = planner.diff(node1, st, settings=Settings(adopt=True))
    assert p2.blockers == ()
    adopt = [c for c in p2.changes if c.resource == "bridge:br-ovs"]
    assert [c.action for c in adopt] == [Action.ADOPT]
    (op,) = adopt[0].ops
    assert op.external_ids == {"other": "x", OWNER_KEY: TOPO, ROLE_KEY: "bridge"}
    assert adopt[0].undo == (OvsSetBridge("br-ovs", "system", {"other": "x"}),)


def test_bridge_of_another_topology_is_a_blocker(node1):
    st = from_nothing(node1)
    st = replace(st, ovs=OvsState({"br-ovs": OvsBridge("br-ovs", "system", (), {OWNER_KEY: "other"})}, {}))
    (b,) = planner.diff(node1, st).blockers
    assert "topology other" in b.message


def test_foreign_linux_bridge_is_a_blocker(node1):
    st = from_nothing(node1)
    links = dict(st.linux.links)
    links["br-web"] = Link("br-web", 40, "bridge", up=True)
    p = planner.diff(node1, replace(st, linux=replace(st.linux, links=links)))
    assert [b.resource for b in p.blockers] == ["link:br-web"]


def test_owned_port_not_desired_is_deleted(node1, seed):
    st = converged(node1, seed)
    ports = dict(st.ovs.ports)
    ports["old0"] = OvsPort("old0", "br-ovs", 300, frozenset(), "access", (OvsInterface("old0", "internal"),), {OWNER_KEY: TOPO, ROLE_KEY: "access"})
    ports["theirs0"] = OvsPort("theirs0", "br-ovs", 7, frozenset(), None, (), {})
    p = planner.diff(node1, replace(st, ovs=replace(st.ovs, ports=ports)))
    (c,) = p.changes
    assert c.action is Action.DELETE and c.resource == "port:br-ovs/old0"
    assert c.ops == (OvsDelPort("br-ovs", "old0"),)
    assert c.undo[0].iface_type == "internal" and c.undo[0].tag == 300


def test_owned_link_not_desired_is_deleted_once_per_pair(node1, seed):
    st = converged(node1, seed)
    links = dict(st.linux.links)
    a = alias_for(TOPO, "patch")
    links["ovs-br-x"] = Link("ovs-br-x", 50, "veth", peer="lnx-br-x", alias=a)
    links["lnx-br-x"] = Link("lnx-br-x", 51, "veth", peer="ovs-br-x", alias=a)
    p = planner.diff(node1, replace(st, linux=replace(st.linux, links=links)))
    assert [c.line() for c in p.changes] == ["delete  link:ovs-br-x  veth"]
    assert p.changes[0].phase is Phase.CLEANUP


def test_docker_network_mtu_edited_by_hand_is_recreated(node1, seed):
    # Docker networks cannot be edited; one whose MTU drifted from its VLAN's is made again.
    st = converged(node1, seed)
    assert planner.diff(node1, st).changes == ()
    docker = dict(st.docker)
    docker["web"] = replace(docker["web"], mtu=9000)
    (c,) = planner.diff(node1, replace(st, docker=docker)).changes
    assert c.resource == "docker-network:web" and c.action is Action.MODIFY
    assert c.before.endswith("on br-web mtu 9000") and c.after.endswith("on br-web")
    # Docker omits the option at its default: None and 1500 are the same network.
    docker["web"] = replace(docker["web"], mtu=None)
    assert planner.diff(node1, replace(st, docker=docker)).changes == ()


def test_docker_unreachable_is_a_note(node1):
    p = planner.diff(node1, from_nothing(node1), settings=Settings(docker=False))
    assert not [c for c in p.changes if c.phase is Phase.DOCKER]
    assert any("Docker is not reachable" in n for n in p.notes)


# --- teardown -------------------------------------------------------------------------------


def test_teardown_restores_before_ovsdb_deletes(node1, seed):
    st = converged(node1, seed)
    saved = {"uplink": SavedUplink("eth1", ("192.168.10.11/24",), (Route("default", "eth1", "192.168.10.1", 0, "boot"),)),
             "dns": SavedDns(("10.0.0.53",))}
    st = replace(st, docker={})
    p = planner.teardown(node1, st, saved)
    lines = [c.line() for c in p.changes]
    res = [c.resource for c in p.changes]
    addr = res.index("address:eth1/192.168.10.11/24")
    route = res.index("route:default")
    dns = res.index("dns:nameservers")
    br = res.index("bridge:br-ovs")
    assert addr < route < br and dns < br
    assert p.changes[addr].action is Action.RESTORE
    assert p.changes[route].ops == (NlReplaceRoute("default", "eth1", "192.168.10.1", 0, "boot"),)
    # ports go with their bridge; links last, one per veth pair
    assert not [r for r in res if r.startswith("port:")]
    assert all(c.phase is Phase.CLEANUP for c in p.changes[br + 1:])
    assert sorted(r for r in res if r.startswith("link:")) == sorted(["link:br-web", "link:br-db", "link:ovs-br-web", "link:ovs-br-db"])
    assert lines[br] == "delete  bridge:br-ovs  OVS bridge (and its ports)"
    assert p.notes == ()


def test_teardown_without_saved_state_uses_fallback(node1, seed):
    st = replace(converged(node1, seed), docker=None)
    # No record: the topology's management addresses and gateway are the fallback.
    p = planner.teardown(node1, st, None)
    assert p.notes and "no saved state" in p.notes[0]
    res = [c.resource for c in p.changes]
    assert res.index("address:eth1/192.168.10.11/24") < res.index("bridge:br-ovs")


def test_teardown_blocks_on_docker_containers(node1, seed):
    st = converged(node1, seed)
    docker = dict(st.docker)
    docker["web"] = replace(docker["web"], containers=("nginx",))
    p = planner.teardown(node1, replace(st, docker=docker), None)
    assert [b.resource for b in p.blockers] == ["docker-network:web"]


def test_teardown_leaves_foreign_objects(node1):
    st = from_nothing(node1)
    st = replace(st, ovs=OvsState({"br-x": OvsBridge("br-x")}, {"p": OvsPort("p", "br-x")}))
    assert planner.teardown(node1, st, None).changes == ()


# --- data-driven cases ------------------------------------------------------------------------


CASE_DIRS = sorted(p for p in CASES.iterdir() if (p / "topology.toml").exists())


def test_there_are_cases():
    assert len(CASE_DIRS) >= 3


@pytest.mark.parametrize("case", CASE_DIRS, ids=lambda p: p.name)
def test_case_offline_plan(case):
    """Offline plan of the file's first host, one change.line() per line."""
    topo = load(case / "topology.toml")
    check(topo)
    host = next(iter(topo.hosts.values()))
    d = planner.desire(topo, host)
    p = offline(d)
    assert p.blockers == ()
    expected = (case / "expected.txt").read_text().splitlines()
    assert [c.line() for c in p.changes] == expected
