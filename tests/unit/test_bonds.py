"""Bonded uplinks, pure parts: the keys, the loop rules, the plan from snapshots, health, the pictures.

Snapshots are made up (tests/support/snapshots.py `applied` is the host as
`up` leaves it); each test breaks or changes one thing and states the plan
it must get.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from ovsnet.backends.netlink.ops import NlSetLink
from ovsnet.current import Address, Link, OvsInterface, OvsPort, Route
from ovsnet.errors import ConfigError
from ovsnet.kinds import BY_NAME, Settings
from ovsnet.kinds.bond import ROLE_BOND, OvsAddBond, OvsSetBond, SavedBonds
from ovsnet.kinds.ovs_port import OvsDelPort
from ovsnet.kinds.uplink import GatewayAnswers
from ovsnet.live import drift as live_drift
from ovsnet.live import snapshot as live_snapshot
from ovsnet.marks import OWNER_KEY, ROLE_KEY
from ovsnet.plan import planner
from ovsnet.plan.model import Action, Phase, to_json
from ovsnet.plan.offline import from_nothing
from ovsnet.render.dot import to_dot
from ovsnet.render.mermaid import to_mermaid
from ovsnet.render.plan import drift_text, plan_text
from ovsnet.render.tree import to_tree
from ovsnet.topology import check, graph
from ovsnet.topology.load import parse
from ovsnet.topology.model import BondMode, Lacp, LacpTime
from ovsnet.topology.validate import validate
from ovsnet.verify.frames import CapturePoint, Frame, MacOwner, analyze, bundle_findings
from tests.support.snapshots import applied

ROOT = Path(__file__).resolve().parents[2]
BONDED_TEXT = (ROOT / "topologies" / "bonded.toml").read_text()
SEED_TEXT = (ROOT / "topologies" / "seed.toml").read_text()


def sub(pattern: str, repl: str, text: str = BONDED_TEXT, count: int = 1) -> str:
    new, n = re.subn(pattern, repl, text, count=count, flags=re.M)
    assert n, f"pattern {pattern!r} not found"
    return new


def topo(text: str = BONDED_TEXT):
    return parse(text, "bonded.toml")


def findings(text: str):
    t = topo(text)
    return validate(t, graph.build(t))


def plan_of(t, host: str, cur, saved=None, adopt: bool = False):
    return planner.diff(planner.desire(t, t.hosts[host]), cur, saved, Settings(adopt=adopt))


def port(cur, name: str) -> OvsPort:
    return cur.ovs.ports[name]


def with_port(cur, p: OvsPort):
    ports = dict(cur.ovs.ports)
    ports[p.name] = p
    return replace(cur, ovs=replace(cur.ovs, ports=ports))


def with_links(cur, **links: Link):
    return replace(cur, linux=replace(cur.linux, links={**cur.linux.links, **links}))


# --- the keys ---------------------------------------------------------------------------


def test_bond_keys_read_into_the_model():
    up = topo().hosts["node1"].uplinks[0]
    assert up.nic == "eth1" and up.members == ("eth1", "eth2") and up.port == "bond0"
    assert up.bond is not None
    assert (up.bond.name, up.bond.mode, up.bond.lacp, up.bond.lacp_time) == ("bond0", BondMode.BALANCE_TCP, Lacp.ACTIVE, LacpTime.FAST)
    assert topo().hosts["node2"].uplinks[0].bond.mode is BondMode.BALANCE_SLB


def test_bond_defaults_are_bond0_active_backup_without_lacp():
    text = sub(r'^bond = "bond0"\nbond_mode = "balance-tcp"\nlacp = "active"\nlacp_time = "fast"\n', "")
    b = topo(text).hosts["node1"].uplinks[0].bond
    assert (b.name, b.mode, b.lacp, b.lacp_time) == ("bond0", BondMode.ACTIVE_BACKUP, Lacp.OFF, LacpTime.SLOW)
    assert not [f for f in findings(text) if f.severity == "error"]


def test_a_single_nic_uplink_has_no_bond():
    up = topo(SEED_TEXT).hosts["node1"].uplinks[0]
    assert up.bond is None and up.members == ("eth1",) and up.port == "eth1"


@pytest.mark.parametrize(("edit", "path", "message"), [
    ((r'^nics = \["eth1", "eth2"\]', 'nic = "eth1"\nnics = ["eth1", "eth2"]'), "hosts.node1.uplinks[0].nics",
     "an uplink names nic (one NIC) or nics (a bond), not both"),
    ((r'^nics = \["eth1", "eth2"\]', 'nics = ["eth1"]'), "hosts.node1.uplinks[0].nics", "a bond needs at least two NICs, got 1"),
    ((r'^nics = \["eth1", "eth2"\]', "nics = []"), "hosts.node1.uplinks[0].nics", "a bond needs at least two NICs, got 0"),
    ((r'^lacp = "active"\n', ""), "hosts.node1.uplinks[0].bond_mode", "bond_mode balance-tcp needs LACP"),
    ((r'^lacp = "active"', 'lacp = "off"'), "hosts.node1.uplinks[0].bond_mode", "bond_mode balance-tcp needs LACP"),
    ((r'^lacp = "active"', 'lacp = "on"'), "hosts.node1.uplinks[0].lacp", "'on' is not one of off, passive, active"),
])
def test_bond_key_errors(edit, path, message):
    with pytest.raises(ConfigError) as exc:
        check(topo(sub(*edit)))
    assert [(f.path, f.message) for f in exc.value.findings] == [(path, message)]


def test_bond_keys_on_a_single_nic_are_refused():
    text = sub(r'^nic = "eth1"\nvlans', 'nic = "eth1"\nbond_mode = "balance-slb"\nvlans', SEED_TEXT)
    with pytest.raises(ConfigError) as exc:
        check(topo(text))
    assert [(f.path, f.message) for f in exc.value.findings] == [
        ("hosts.node1.uplinks[0].bond_mode", "bond_mode applies to a bond, and this uplink has one NIC")]


@pytest.mark.parametrize(("edit", "path", "message"), [
    ((r'^nics = \["eth1", "eth2"\]', 'nics = ["eth1", "eth2", "eth2"]'), "hosts.node1.uplinks[0].nics[2]",
     "interface name 'eth2' is also used at hosts.node1.uplinks[0].nics[1]"),
    ((r'^\[hosts.node1.management\]', '[[hosts.node1.access_ports]]\ninterface = "eth2"\nvlan = "web"\n\n[hosts.node1.management]'),
     "hosts.node1.access_ports[0].interface", "interface name 'eth2' is also used at hosts.node1.uplinks[0].nics[1]"),
    ((r'^bond = "bond0"', 'bond = "mgmt0"'), "hosts.node1.management.port", "interface name 'mgmt0' is also used at hosts.node1.uplinks[0].bond"),
])
def test_members_exist_once(edit, path, message):
    fs = [f for f in findings(sub(*edit)) if f.severity == "error"]
    assert [(f.path, f.message) for f in fs] == [(path, message)]


def test_from_nic_must_be_a_member_or_an_uplink():
    fs = [f for f in findings(sub(r'^\[hosts.node1.management\]', '[hosts.node1.management]\nfrom_nic = "eth3"')) if f.severity == "error"]
    # As for a single NIC: an unknown from_nic also leaves the management VLAN unknown.
    assert [(f.path, f.message) for f in fs] == [("hosts.node1.management.from_nic", "'eth3' is not an uplink of node1"),
                                                 ("hosts.node1.management.vlan", "untagged management needs the uplink's native_vlan")]


def test_from_nic_may_name_any_member():
    assert not [f for f in findings(sub(r'^\[hosts.node1.management\]', '[hosts.node1.management]\nfrom_nic = "eth2"')) if f.severity == "error"]


def test_the_bond_mtu_must_fit_every_vlan():
    fs = findings(sub(r'^\[vlans.web\]\nid = 100', '[vlans.web]\nid = 100\nmtu = 9000'))
    assert [(f.path, f.message) for f in fs if f.severity == "error"] == [(
        "hosts.node1.uplinks[0].mtu",
        "VLAN web (mtu 9000) does not fit bond:node1/bond0 (mtu 1500): its 802.1Q-tagged frames are 9022 bytes, the NIC passes 1522",
    ), (
        "hosts.node2.uplinks[0].mtu",
        "VLAN web (mtu 9000) does not fit bond:node2/bond0 (mtu 1500): its 802.1Q-tagged frames are 9022 bytes, the NIC passes 1522",
    )]


# --- the loop rules ------------------------------------------------------------------------


UNBONDED = sub(r'^nics = \["eth1", "eth2"\]\nbond = "bond0"\nbond_mode = "balance-tcp"\nlacp = "active"\nlacp_time = "fast"\n'
               r'vlans = \["mgmt", "web", "db"\]\nnative_vlan = "mgmt"',
               'nic = "eth1"\nvlans = ["mgmt", "web", "db"]\nnative_vlan = "mgmt"\n\n[[hosts.node1.uplinks]]\nnic = "eth2"\nvlans = ["web"]')


def test_two_nics_of_one_bond_cabled_to_one_switch_are_not_a_loop():
    assert findings(BONDED_TEXT) == []
    doms = graph.Domains(graph.build(topo()))
    assert doms.loops == []
    g = graph.build(topo())
    # One switch port faces the bond (its side of the LAG), cabled from both members.
    assert g.has_edge("nic:node1/eth1", "switch_port:switch/node1-bond0") and g.has_edge("nic:node1/eth2", "switch_port:switch/node1-bond0")
    assert g.edges["bond:node1/bond0", "nic:node1/eth2"] == {"kind": "bundle", "bundle": "bond:node1/bond0"}


def test_the_same_nics_unbonded_with_a_shared_vlan_are_a_loop():
    fs = [f for f in findings(UNBONDED) if f.severity == "error"]
    assert [(f.path, f.message) for f in fs] == [(
        "lab.cables[1]",
        "L2 loop in VLAN web: switch:switch - switch_port:switch/node1-eth2 closes a second path between the same bridges",
    )]


def test_without_a_lab_a_bond_reaches_one_upstream_port_and_two_uplinks_warn():
    no_lab = BONDED_TEXT.split("# Only for `ovsnet lab`")[0]
    assert findings(no_lab) == []
    g = graph.build(topo(no_lab))
    assert g.has_edge("nic:node1/eth2", "switch_port:upstream/node1-bond0")
    fs = findings(UNBONDED.split("# Only for `ovsnet lab`")[0])
    assert [(f.severity, f.path) for f in fs] == [("warning", "hosts.node1.uplinks[1]")]
    assert fs[0].message.startswith("possible L2 loop in VLAN web")


def test_a_real_loop_through_a_bond_is_still_found():
    """A bond does not hide a second path that does not go through it: an extra uplink on VLAN web."""
    text = sub(r'^\[hosts.node1.management\]', '[[hosts.node1.uplinks]]\nnic = "eth3"\nvlans = ["web"]\n\n[hosts.node1.management]')
    text += '\n[[lab.cables]]\nends = ["node1:eth3", "switch"]\n'
    fs = [f for f in findings(text) if f.severity == "error"]
    assert [f.message for f in fs] == ["L2 loop in VLAN web: switch:switch - switch_port:switch/node1-eth3 closes a second path between the same bridges"]


# --- plan: create, in sync, modify, adopt, teardown ----------------------------------------


@pytest.fixture(scope="module")
def bonded():
    return topo()


def test_offline_plan_creates_one_bond_port_in_the_transaction(bonded):
    d = planner.desire(bonded, bonded.hosts["node1"])
    p = planner.diff(d, from_nothing(d))
    assert p.blockers == ()
    ports = [c for c in p.changes if c.resource.startswith("port:")]
    assert "port:br-ovs/eth1" not in [c.resource for c in ports]
    bond = next(c for c in ports if c.resource == "port:br-ovs/bond0")
    assert bond.action is Action.CREATE and bond.phase is Phase.OVSDB
    assert bond.after == "bond of eth1,eth2 (balance-tcp, LACP active, fast), trunk 10,100,200, native 10 untagged"
    assert bond.ops == (OvsAddBond("br-ovs", "bond0", ("eth1", "eth2"), "balance-tcp", "active", {"lacp-time": "fast"}, 10,
                                   frozenset({10, 100, 200}), "native-untagged", {OWNER_KEY: "bonded", ROLE_KEY: ROLE_BOND}),)
    assert bond.undo == (OvsDelPort("br-ovs", "bond0"),)
    # The address moves off the first member, and the management port takes its MAC.
    assert "address:eth1/192.168.10.11/24" in [c.resource for c in p.changes]
    assert p.moves_from == ("eth1",)


def test_the_host_as_up_leaves_it_plans_nothing_and_is_healthy(bonded):
    for host in bonded.hosts:
        p = plan_of(bonded, host, applied(bonded, host))
        assert p.changes == () and p.blockers == () and p.health == ()
        assert p.facts == ("bond bond0: 2/2 members up, LACP negotiated on 2/2",)
        assert "unhealthy" not in drift_text(p)


def test_a_member_down_and_lacp_not_negotiated_are_health_not_changes(bonded):
    cur = applied(bonded, "node1")
    b = port(cur, "bond0")
    eth1, eth2 = b.interfaces
    cur = with_port(cur, replace(b, interfaces=(replace(eth1, lacp_current=False), replace(eth2, link_state="down", lacp_current=False))))
    p = plan_of(bonded, "node1", cur)
    assert p.changes == () and p.blockers == ()
    assert [(h.resource, h.message) for h in p.health] == [
        ("port:br-ovs/bond0", "bond0: LACP not negotiated on eth1"),
        ("port:br-ovs/bond0", "bond0: member eth2 is down"),
    ]
    assert p.facts == ("bond bond0: 1/2 members up, LACP negotiated on 0/2",)
    text = drift_text(p)
    assert text.splitlines()[0] == "drift on host node1: configured as the topology says, but not working:"
    assert "  unhealthy bond0: member eth2 is down" in text.splitlines()
    assert "bond0: LACP not negotiated on eth1" in plan_text(p)
    assert to_json(p)["health"] == [{"resource": "port:br-ovs/bond0", "message": "bond0: LACP not negotiated on eth1"},
                                    {"resource": "port:br-ovs/bond0", "message": "bond0: member eth2 is down"}]


def test_lacp_off_reports_only_links(bonded):
    t = topo(BONDED_TEXT.replace('bond_mode = "balance-slb"\nlacp = "active"', 'bond_mode = "balance-slb"\nlacp = "off"'))
    cur = applied(t, "node2")
    b = port(cur, "bond0")
    assert all(i.lacp_current is None for i in b.interfaces)
    p = plan_of(t, "node2", cur)
    assert p.health == () and p.facts == ("bond bond0: 2/2 members up",)


def test_changed_members_mode_and_lacp_modify_the_bond_in_place(bonded):
    cur = applied(bonded, "node1")
    before = port(cur, "bond0")
    text = BONDED_TEXT.replace('nics = ["eth1", "eth2"]\nbond = "bond0"\nbond_mode = "balance-tcp"\nlacp = "active"\nlacp_time = "fast"',
                               'nics = ["eth1", "eth2", "eth3"]\nbond = "bond0"\nbond_mode = "balance-slb"\nlacp = "passive"', 1)
    t = topo(text)
    cur = with_links(cur, eth3=Link("eth3", 99, up=True))
    p = plan_of(t, "node1", cur)
    assert [(c.action, c.resource) for c in p.changes] == [(Action.MODIFY, "port:br-ovs/bond0")]
    c = p.changes[0]
    assert c.before == "bond of eth1,eth2 (balance-tcp, LACP active, fast), trunk 10,100,200, native 10 untagged"
    assert c.after == "bond of eth1,eth2,eth3 (balance-slb, LACP passive), trunk 10,100,200, native 10 untagged"
    marks = {OWNER_KEY: "bonded", ROLE_KEY: ROLE_BOND}
    assert c.ops == (OvsSetBond("bond0", ("eth1", "eth2", "eth3"), "balance-slb", "passive", {}, 10, frozenset({10, 100, 200}), "native-untagged", marks),)
    assert c.undo == (OvsSetBond("bond0", ("eth1", "eth2"), "balance-tcp", "active", {"lacp-time": "fast"}, 10, before.trunks, "native-untagged", marks),)


def test_a_missing_member_blocks(bonded):
    cur = applied(bonded, "node1")
    links = {k: v for k, v in cur.linux.links.items() if k != "eth2"}
    p = plan_of(bonded, "node1", replace(cur, linux=replace(cur.linux, links=links)))
    assert [(b.resource, b.message) for b in p.blockers] == [("link:eth2", "bond bond0: NIC eth2 does not exist on this host")]


def hand_built(cur):
    """The bond as someone would make it: `ovs-vsctl add-bond br-ovs bond0 eth1 eth2 bond_mode=... lacp=active`, no marks."""
    b = port(cur, "bond0")
    return with_port(cur, replace(b, external_ids={}))


def test_a_hand_built_bond_is_refused_then_adopted_with_marks_only(bonded):
    cur = hand_built(applied(bonded, "node1"))
    p = plan_of(bonded, "node1", cur)
    assert [(b.resource, b.message) for b in p.blockers] == [("port:br-ovs/bond0", "OVS port bond0 exists and belongs to not ovsnet")]
    p = plan_of(bonded, "node1", cur, adopt=True)
    assert [(c.action, c.resource) for c in p.changes] == [(Action.ADOPT, "port:br-ovs/bond0")]
    op = p.changes[0].ops[0]
    assert isinstance(op, OvsSetBond) and op.members == ("eth1", "eth2") and op.mode == "balance-tcp"
    assert op.external_ids == {OWNER_KEY: "bonded", ROLE_KEY: ROLE_BOND}
    assert p.changes[0].undo[0].external_ids == {}


def test_from_a_single_nic_uplink_to_a_bond_in_one_transaction():
    seed = topo(SEED_TEXT.replace('name = "seed"', 'name = "bonded"'))
    cur = with_links(applied(seed, "node1"), eth2=Link("eth2", 98, up=True))
    p = plan_of(topo(), "node1", cur)
    ovsdb = [(c.action, c.resource) for c in p.changes if c.phase is Phase.OVSDB]
    assert (Action.DELETE, "port:br-ovs/eth1") in ovsdb and (Action.CREATE, "port:br-ovs/bond0") in ovsdb
    assert p.blockers == ()


def test_a_member_in_a_strangers_port_blocks_unless_adopting_its_own_port(bonded):
    d = planner.desire(bonded, bonded.hosts["node1"])
    cur = from_nothing(d)
    alone = OvsPort("eth2", "br-ovs", None, frozenset({100}), None, (OvsInterface("eth2"),), {})
    cur = replace(cur, ovs=replace(cur.ovs, ports={"eth2": alone}))
    p = plan_of(bonded, "node1", cur)
    assert [(b.resource, b.message) for b in p.blockers] == [
        ("port:br-ovs/eth2", "NIC eth2 of bond bond0 is in OVS port eth2, which belongs to not ovsnet")]
    p = plan_of(bonded, "node1", cur, adopt=True)
    assert p.blockers == ()
    ovsdb = [(c.action, c.resource) for c in p.changes if c.phase is Phase.OVSDB]
    assert (Action.DELETE, "port:br-ovs/eth2") in ovsdb and (Action.CREATE, "port:br-ovs/bond0") in ovsdb


def test_teardown_of_a_bond_on_ovsnets_bridge_goes_with_the_bridge_and_restores_the_address(bonded):
    cur = applied(bonded, "node1")
    p = planner.teardown(planner.desire(bonded, bonded.hosts["node1"]), cur)
    res = [(c.action, c.resource) for c in p.changes]
    assert (Action.DELETE, "bridge:br-ovs") in res and not any(r == "port:br-ovs/bond0" for _, r in res)
    assert (Action.RESTORE, "address:eth1/192.168.10.11/24") in res


def test_teardown_deletes_ovsnets_bond_from_a_bridge_it_does_not_own(bonded):
    cur = applied(bonded, "node1")
    bridges = {k: replace(b, external_ids={}) for k, b in cur.ovs.bridges.items()}
    cur = replace(cur, ovs=replace(cur.ovs, bridges=bridges))
    p = planner.teardown(planner.desire(bonded, bonded.hosts["node1"]), cur)
    bond = next(c for c in p.changes if c.resource == "port:br-ovs/bond0")
    assert bond.action is Action.DELETE and bond.ops == (OvsDelPort("br-ovs", "bond0"),)
    assert isinstance(bond.undo[0], OvsAddBond) and bond.undo[0].members == ("eth1", "eth2")


# --- where the host's address is: a member, or a Linux bond --------------------------------


def before_ovsnet(t, host: str, holder: str, master: Link | None = None):
    d = planner.desire(t, t.hosts[host])
    cur = from_nothing(d)
    linux = cur.linux
    links = dict(linux.links)
    if master is not None:
        links[master.name] = master
        for m in ("eth1", "eth2"):
            links[m] = replace(links[m], master=master.name)
    addresses = tuple(Address(holder, a.cidr) for a in linux.addresses)
    routes = tuple(replace(r, ifname=holder) for r in linux.routes)
    return replace(cur, linux=replace(linux, links=links, addresses=addresses, routes=routes))


def test_the_address_moves_off_whichever_member_holds_it(bonded):
    p = plan_of(bonded, "node1", before_ovsnet(bonded, "node1", "eth2"))
    res = [c.resource for c in p.changes]
    assert "address:eth2/192.168.10.11/24" in res and "address:eth1/192.168.10.11/24" not in res
    route = next(c for c in p.changes if c.resource == "route:default")
    assert route.before == "via 192.168.10.1 dev eth2" and route.after == "via 192.168.10.1 dev mgmt0"
    assert p.moves_from == ("eth2",) and p.keep["uplink"].nic == "eth2"
    assert any(isinstance(c, GatewayAnswers) and c.iface == "mgmt0" for c in p.checks)


def test_a_linux_bond_releases_its_members_and_down_gives_them_back(bonded):
    linux_bond = Link("bond0", 50, kind="bond", up=True)
    cur = before_ovsnet(bonded, "node1", "bond0", linux_bond)
    p = plan_of(bonded, "node1", cur)
    assert p.blockers == ()
    freed = [c for c in p.changes if c.phase is Phase.LINUX and c.resource in ("link:eth1", "link:eth2")]
    assert [(c.action, c.resource, c.before, c.after) for c in freed] == [
        (Action.MODIFY, "link:eth1", "master bond0", "master none, up"), (Action.MODIFY, "link:eth2", "master bond0", "master none, up")]
    assert freed[0].ops == (NlSetLink("eth1", master=""), NlSetLink("eth1", up=True))
    assert freed[0].undo == (NlSetLink("eth1", up=False), NlSetLink("eth1", master="bond0"))
    res = [c.resource for c in p.changes]
    # freed before the transaction that makes them OVS interfaces; the address leaves the Linux bond last
    assert res.index("link:eth1") < res.index("port:br-ovs/bond0") < res.index("address:mgmt0/192.168.10.11/24") < res.index("address:bond0/192.168.10.11/24")
    assert p.moves_from == ("bond0",)
    assert p.keep["bond"] == SavedBonds({"eth1": "bond0", "eth2": "bond0"}) and p.keep["uplink"].nic == "bond0"

    # After up: the members are OVS's, the address on mgmt0; down puts both back.
    after = applied(bonded, "node1")
    after = with_links(after, bond0=linux_bond)
    saved = {"bond": p.keep["bond"], "uplink": p.keep["uplink"]}
    down = planner.teardown(planner.desire(bonded, bonded.hosts["node1"]), after, saved)
    back = [c for c in down.changes if c.resource in ("link:eth1", "link:eth2")]
    assert [(c.action, c.phase, c.after) for c in back] == [(Action.RESTORE, Phase.CLEANUP, "master bond0")] * 2
    assert back[0].ops == (NlSetLink("eth1", up=False), NlSetLink("eth1", master="bond0"))
    res = [c.resource for c in down.changes]
    assert res.index("address:bond0/192.168.10.11/24") < res.index("bridge:br-ovs") < res.index("link:eth1")
    # The gateway must answer on the Linux bond once its members are back in it.
    # ... and the switch's side of the LACP bond (fast) may take its LACP timeout to fall back.
    assert [(c.iface, c.after, c.at_least) for c in down.checks if isinstance(c, GatewayAnswers)] == [("bond0", Phase.CLEANUP, 10.0)]


@pytest.mark.parametrize(("lacp", "seconds"), [("off", 0.0), ("active-slow", 97.0), ("active-fast", 10.0)])
def test_down_gives_the_gateway_the_switch_lacp_fallback_time(bonded, lacp, seconds):
    cur = applied(bonded, "node1")
    b = port(cur, "bond0")
    mode, _, time_ = lacp.partition("-")
    cur = with_port(cur, replace(b, lacp=mode, other_config={"lacp-time": time_} if time_ else {}))
    down = planner.teardown(planner.desire(bonded, bonded.hosts["node1"]), cur)
    assert [(c.iface, c.at_least) for c in down.checks if isinstance(c, GatewayAnswers)] == [("eth1", seconds)]


def test_the_bond_record_round_trips_and_the_older_wins():
    k = BY_NAME["bond"]
    rec = SavedBonds({"eth1": "bond0"})
    assert k.record_from_json(json.loads(json.dumps(k.record_to_json(rec)))) == rec
    assert k.merge_record(rec, SavedBonds({"eth1": "team0", "eth2": "bond0"})) == SavedBonds({"eth1": "bond0", "eth2": "bond0"})
    with pytest.raises(ValueError):
        k.record_from_json({"linux_bond_of": {"eth1": 3}})


# --- pictures: the file's and the live one ---------------------------------------------------


def test_pictures_draw_the_members_as_one_bundle(bonded):
    g = graph.build(bonded)
    tree = to_tree(g)
    assert "trunk 10,100,200 (native 10) → bond0 (OVS bond, balance-tcp, LACP active (fast), members eth1, eth2)" in tree
    assert "│   ├── bond member → eth1 (NIC)" in tree
    dot = to_dot(g)
    assert '"bond:node1/bond0" [shape="trapezium"' in dot
    assert re.search(r'"bond:node1/bond0" -- "nic:node1/eth1" \[tooltip="[^"]*", color="#444444", penwidth="4"', dot)
    assert '[/"bond0<br/>OVS bond<br/>balance-tcp, LACP active (fast)<br/>members eth1, eth2"\\]' in to_mermaid(g)


def test_the_live_picture_shows_the_bond_its_members_and_a_member_down(bonded):
    cur = applied(bonded, "node1")
    b = port(cur, "bond0")
    cur = with_port(cur, replace(b, interfaces=(b.interfaces[0], replace(b.interfaces[1], link_state="down"))))
    g = live_snapshot.build("node1", cur, "bonded")
    assert g.nodes["bond:node1/bond0"]["kind"] == "bond" and g.nodes["bond:node1/bond0"]["members"] == ("eth1", "eth2")
    assert g.edges["bond:node1/bond0", "nic:node1/eth2"]["kind"] == "bundle"
    assert g.nodes["nic:node1/eth2"].get("link_down") is True
    p = plan_of(bonded, "node1", cur)
    found = live_drift.mark(g, graph.build(bonded), p, "node1", "bonded")
    assert [(f.resource, f.mark.value, f.text, f.source) for f in found] == [
        ("port:br-ovs/bond0", "different", "bond0: member eth2 is down", "health")]
    tree = to_tree(g)
    assert "eth2 (NIC, link down)" in tree


# --- verify's captures: a bond's members together ---------------------------------------------


def test_a_vlan_seen_on_one_member_of_a_bond_is_enough():
    macs = {"02:00:00:00:00:01": MacOwner("web1", 100, "node1")}
    common = dict(node="switch", namespace="x", role="trunk", vlans=frozenset({10, 100}), native=10, near=frozenset({"node1"}),
                  required=frozenset({100}), bundle="node1:bond0")
    a = CapturePoint(interface="h1-eth1", **common)
    b = CapturePoint(interface="h1-eth2", **common)
    seen = [Frame("02:00:00:00:00:01", "ff:ff:ff:ff:ff:ff", (100,), "IPv4", "10.100.0.11")]
    # Per member, no "missing" (the bond decides which member carries a flow) ...
    assert analyze(b, [], macs, None)[1] == []  # type: ignore[arg-type]
    # ... and together: seen on one member is enough; seen on none is reported once, for the bond.
    assert bundle_findings([(a, seen), (b, [])], macs) == []
    (miss,) = bundle_findings([(a, []), (b, [])], macs)
    assert (miss.kind, miss.vlan, miss.interface) == ("missing", 100, "h1-eth1+h1-eth2")
    assert "bond node1:bond0 (on any of its members)" in miss.detail


def test_the_checked_bonded_file_draws_its_lab_switch_side_once(bonded):
    c = check(bonded)
    g = c.graph
    ports = sorted(n for n, d in g.nodes(data=True) if d.get("kind") == "switch_port")
    assert ports == ["switch_port:switch/node1-bond0", "switch_port:switch/node2-bond0"]


def test_route_and_address_on_the_holder_only_move_the_holder(bonded):
    """Another member's own unrelated address stays where it is."""
    cur = before_ovsnet(bonded, "node1", "eth1")
    cur = replace(cur, linux=replace(cur.linux, addresses=cur.linux.addresses + (Address("eth2", "198.51.100.7/24"),),
                                     routes=cur.linux.routes + (Route("198.51.100.0/24", "eth2", None, 0, "kernel"),)))
    p = plan_of(bonded, "node1", cur)
    assert "address:eth2/198.51.100.7/24" not in [c.resource for c in p.changes]
    assert p.moves_from == ("eth1",)


# --- import: a hand-built OVS bond back to nics = [...] --------------------------------------


def test_a_hand_built_bond_imports_to_nics_with_its_mode_and_lacp(bonded):
    from ovsnet.importer import run

    cur = applied(bonded, "node1")
    ports = {k: replace(p, external_ids={}) for k, p in cur.ovs.ports.items()}
    bridges = {k: replace(b, external_ids={}) for k, b in cur.ovs.bridges.items()}
    links = {k: replace(lk, alias=None) for k, lk in cur.linux.links.items()}
    cur = replace(cur, ovs=replace(cur.ovs, ports=ports, bridges=bridges), linux=replace(cur.linux, links=links), docker={})
    r = run.settle("node1", cur, name="site")
    assert '[[hosts.node1.uplinks]]\nnics = ["eth1", "eth2"]\nbond = "bond0"\nbond_mode = "balance-tcp"\nlacp = "active"\nlacp_time = "fast"\n' in r.text
    t = r.checked.topology
    adopt = Settings(adopt=True)
    p = planner.diff(planner.desire(t, t.hosts["node1"], adopt), cur, settings=adopt)
    assert p.blockers == () and {c.action for c in p.changes} == {Action.ADOPT}
    assert "port:br-ovs/bond0" in [c.resource for c in p.changes]
    # Nothing about the bond is "left out".
    assert not [n for n in r.imported.left_out if "bond" in n or "eth2" in n]


def test_a_bond_that_is_not_a_trunk_is_left_out(bonded):
    from ovsnet.importer.describe import describe

    cur = applied(bonded, "node1")
    b = port(cur, "bond0")
    cur = with_port(cur, replace(b, tag=100, trunks=frozenset(), vlan_mode="access", external_ids={}))
    imp = describe("node1", cur)
    assert "port bond0 is a bond on one VLAN (tag 100): a topology's bonds are uplink trunks; left out" in imp.left_out
