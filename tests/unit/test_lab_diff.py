"""The lab's own changes for an edited file (lab/layout.py, lab/diff.py): pure, from topology texts (#13)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ovsnet.lab import layout
from ovsnet.lab.diff import Part, Stage, diff
from ovsnet.lab.names import LabNames
from ovsnet.plan.model import Action
from ovsnet.topology.load import parse

SEED = Path(__file__).resolve().parents[2] / "topologies" / "seed.toml"
PREFIX = "ab12"

NODE3 = '''
[hosts.node3]
[[hosts.node3.uplinks]]
nic = "eth1"
vlans = ["mgmt", "web"]
native_vlan = "mgmt"
[hosts.node3.management]
addresses = ["192.168.10.13/24"]
gateway = "192.168.10.1"
[[hosts.node3.docker]]
bridge = "br-web"
vlan = "web"
network = "web"
'''


def topo(text: str):
    return parse(text, str(SEED))


def seed_text() -> str:
    return SEED.read_text()


def with_node3(text: str) -> str:
    text = text.replace("# Test endpoints:", NODE3 + "\n# Test endpoints:", 1)
    text = text.replace("[[endpoints]]\nname = \"web1\"", "[[endpoints]]\nname = \"web3\"\nhost = \"node3\"\nvlan = \"web\"\n"
                        "address = \"10.100.0.13/24\"\n\n[[endpoints]]\nname = \"web1\"", 1)
    return text + '\n[[lab.cables]]\nends = ["node3:eth1", "switch"]\n'


def without_node2(text: str) -> str:
    start = text.index("[hosts.node2]")
    end = min(i for i in (text.find("\n[hosts.node3]", start), text.index("# Test endpoints:")) if i >= 0)
    text = text[:start] + text[end:]
    for ep in ("web2", "db2"):
        i = text.index(f'name = "{ep}"')
        text = text[:text.rindex("[[endpoints]]", 0, i)] + text[text.index("\n\n", i) + 2:]
    return text.replace('[[lab.cables]]\nends = ["node2:eth1", "switch"]\n', "")


def lay(text: str, before: LabNames | None = None, docker: bool = False):
    t = topo(text)
    names = LabNames.for_topology(t, PREFIX, before=before)
    return names, layout.desired(t, names, docker)


@pytest.fixture(scope="module")
def built():
    return lay(seed_text())


def lines(p, stage=None):
    return [c.line() for c in p.changes if stage is None or c.stage is stage]


def test_the_same_file_changes_nothing(built):
    names, have = built
    assert diff(have, lay(seed_text(), names)[1]).empty


def test_a_vlan_on_the_trunks_and_the_router(built):
    names, have = built
    text = seed_text().replace("[router]", '[vlans.app]\nid = 300\nsubnet = "10.30.0.0/24"\nrouter = "10.30.0.1"\n\n[router]', 1)
    text = text.replace('vlans = ["mgmt", "web"]\n', 'vlans = ["mgmt", "web", "app"]\n', 1)
    text = text.replace('vlans = ["mgmt", "web", "db"]', 'vlans = ["mgmt", "web", "db", "app"]')
    p = diff(have, lay(text, names)[1])
    assert lines(p) == [
        "create  lab:router-leg:v300  VLAN 300, 10.30.0.1/24, mtu 1500",
        "modify  lab:switch-port:h1-eth1  trunk 10,100,200, native 10 untagged -> trunk 10,100,200,300, native 10 untagged",
        "modify  lab:switch-port:h2-eth1  trunk 10,100,200, native 10 untagged -> trunk 10,100,200,300, native 10 untagged",
        "create  lab:switch-port:r300  access tag 300",
    ]
    assert all(c.stage is Stage.BEFORE for c in p.changes) and not p.cannot
    # Taken out again: the ports shrink before the hosts, the leg and its port go after them.
    back = diff(lay(text, names)[1], have)
    assert lines(back, Stage.AFTER) == ["delete  lab:switch-port:r300  access tag 300",
                                        "delete  lab:router-leg:v300  VLAN 300, 10.30.0.1/24, mtu 1500"]


def test_a_host_added_keeps_every_other_name(built):
    names, have = built
    new_names, want = lay(with_node3(seed_text()), names)
    assert (new_names.host_ns("node1"), new_names.host_ns("node2"), new_names.host_ns("node3")) == ("ab12-h1", "ab12-h2", "ab12-h3")
    # web3 comes first in the file, and still gets the next number, not web1's.
    assert new_names.endpoint_ns("web1") == names.endpoint_ns("web1") == "ab12-e1"
    assert new_names.endpoint_ns("web3") == "ab12-e5"
    p = diff(have, want)
    assert lines(p) == [
        "create  lab:host:node3  namespace ab12-h3, its own Open vSwitch",
        "create  lab:cable:node3:eth1  switch:h3-eth1, mtu 1500",
        "create  lab:switch-port:h3-eth1  trunk 10,100, native 10 untagged",
        "create  lab:endpoint:web3  node3, VLAN 100, 10.100.0.13/24, bridge br-web",
    ]
    assert [c.stage for c in p.changes] == [Stage.BEFORE] * 3 + [Stage.AFTER]


def test_a_host_removed_goes_after_the_hosts_and_renames_nobody(built):
    names, have = built
    text = without_node2(with_node3(seed_text()))
    mid_names, mid = lay(with_node3(seed_text()), names)
    new_names, want = lay(text, mid_names)
    assert new_names.host_ns("node3") == "ab12-h3" and new_names.host_ns("node1") == "ab12-h1"
    p = diff(mid, want)
    assert lines(p, Stage.BEFORE) == [
        "delete  lab:endpoint:web2  node2, VLAN 100, 10.100.0.12/24, bridge br-web",
        "delete  lab:endpoint:db2  node2, VLAN 200, 10.200.0.12/24, bridge br-db",
    ]
    assert lines(p, Stage.AFTER) == [
        "delete  lab:switch-port:h2-eth1  trunk 10,100,200, native 10 untagged",
        "delete  lab:host:node2  namespace ab12-h2 and everything in it",
    ]
    # Its cable goes with its namespace: no change of its own.
    assert not [c for c in p.changes if c.part is Part.CABLE]
    # A host added later does not take the removed one's number.
    later = LabNames.for_topology(topo(text.replace("[hosts.node3]", NODE3.replace("node3", "node4") + "\n[hosts.node3]", 1)), PREFIX, before=new_names)
    assert later.host_ns("node4") == "ab12-h4"


def test_a_loose_nic_cabled_later_is_re_plugged_in_place(built):
    names, have = built
    text = seed_text().replace("[router]", '[vlans.app]\nid = 300\n\n[router]', 1)
    loose = text.replace("[hosts.node1.management]", '[[hosts.node1.uplinks]]\nnic = "eth2"\nvlans = ["app"]\n\n[hosts.node1.management]', 1)
    _, mid = lay(loose, names)
    assert mid.wires["node1:eth2"].loose and mid.wires["node1:eth2"].far_ns == "ab12-x"
    assert lines(diff(have, mid)) == ["create  lab:cable:node1:eth2  no cable, mtu 1500"]
    _, want = lay(loose + '\n[[lab.cables]]\nends = ["node1:eth2", "switch"]\n', names)
    p = diff(mid, want)
    assert lines(p) == ["move    lab:cable:node1:eth2  no cable, mtu 1500 -> switch:h1-eth2, mtu 1500",
                        "create  lab:switch-port:h1-eth2  trunk 300"]
    assert not p.cannot


def test_a_direct_cable_between_hosts_is_named_by_one_end_whichever_way_it_is_written(built):
    names, _ = built
    text = seed_text().replace("[router]", '[vlans.app]\nid = 300\n\n[router]', 1)
    for host in ("node1", "node2"):
        text = text.replace(f"[hosts.{host}.management]", f'[[hosts.{host}.uplinks]]\nnic = "eth2"\nvlans = ["app"]\n\n[hosts.{host}.management]', 1)
    a = lay(text + '\n[[lab.cables]]\nends = ["node1:eth2", "node2:eth2"]\n', names)[1]
    b = lay(text + '\n[[lab.cables]]\nends = ["node2:eth2", "node1:eth2"]\n', names)[1]
    assert a.wires == b.wires and "node1:eth2" in a.wires and "node2:eth2" not in a.wires
    # Re-plugging a NIC away from another host's would replace it under its OVS: said, not done.
    c = lay(text + '\n[[lab.cables]]\nends = ["node1:eth2", "switch"]\n', names)[1]
    p = diff(a, c)
    (refusal,) = p.cannot
    assert refusal.what.startswith("cable node1:eth2: node2:eth2, mtu 1500 -> switch:h1-eth2, mtu 1500")
    assert "ovsnet lab down" in refusal.how


def test_what_cannot_change_in_place_is_said_with_how(built):
    names, have = built
    p = diff(have, replace(have, switch="sw2", datapath="system"), file="seed.toml")
    assert [r.what for r in p.cannot] == ["the lab's switch: switch -> sw2", "the lab's datapath: netdev -> system"]
    assert all(r.how == "rebuild the lab: `ovsnet lab down seed.toml`, then `ovsnet lab up seed.toml`" for r in p.cannot)
    _, want = lay(with_node3(seed_text()), names)
    (r,) = diff(have, want, fleet=True).cannot
    assert "hosts added or removed (+node3) in a lab built with --ssh" in r.what and "--ssh" in r.how


def test_an_endpoint_moved_is_unplugged_before_the_hosts(built):
    names, have = built
    text = seed_text().replace('name = "web1"\nhost = "node1"', 'name = "web1"\nhost = "node2"', 1)
    (c,) = diff(have, lay(text, names)[1]).changes
    assert (c.action, c.part, c.stage) == (Action.MODIFY, Part.ENDPOINT, Stage.BEFORE)
    assert c.line() == "modify  lab:endpoint:web1  node1, VLAN 100, 10.100.0.11/24, bridge br-web -> node2, VLAN 100, 10.100.0.11/24, bridge br-web"


def test_a_lab_running_docker_starts_a_dockerd_for_a_new_docker_host(built):
    names, _ = built
    have = lay(seed_text(), docker=True)[1]
    assert have.docker == {"node1", "node2"}
    p = diff(have, lay(with_node3(seed_text()), names, docker=True)[1])
    assert [c.line() for c in p.changes if c.part is Part.DOCKERD] == ["create  lab:dockerd:node3  a private dockerd"]


def test_the_layout_survives_the_ledger(built):
    _, have = built
    assert layout.from_json(layout.to_json(have)) == have
    with pytest.raises(KeyError):
        layout.from_json({"switch": None})


def test_a_number_is_never_given_twice():
    first = LabNames.for_topology(topo(with_node3(seed_text())), PREFIX)
    assert first.host_ns("node3") == "ab12-h3"
    # node3, the highest, goes; a host added afterwards does not take its namespace's name.
    gone = LabNames.for_topology(topo(seed_text()), PREFIX, before=first)
    node4 = NODE3.replace("node3", "node4").replace("192.168.10.13", "192.168.10.14")
    again = LabNames.for_topology(topo(seed_text().replace("# Test endpoints:", node4 + "\n# Test endpoints:", 1)), PREFIX, before=gone)
    assert again.host_ns("node4") == "ab12-h4" and again.host_ns("node2") == "ab12-h2"
    assert again.endpoint_ns("web1") == first.endpoint_ns("web1")


# --- with the bonded uplinks and dual stack of integ ------------------------------------------------

BONDED = SEED.parent / "bonded.toml"
DUAL = SEED.parent / "dualstack.toml"


def test_a_hosts_lacp_bond_faces_a_lag_on_the_switch():
    t = parse(BONDED.read_text(), str(BONDED))
    names = LabNames.for_topology(t, PREFIX)
    want = layout.desired(t, names)
    lag = want.switch_ports[names.switch_port("node1", "bond0")]
    assert lag.members == (names.switch_port("node1", "eth1"), names.switch_port("node1", "eth2"))
    assert (lag.bond_mode, lag.lacp, lag.mark) == ("balance-tcp", "active", "node1:bond0")
    assert dict(lag.config) == {"lacp-fallback-ab": "true", "bond-primary": names.switch_port("node1", "eth1"), "lacp-time": "fast"}
    # Both member cables are wired to the switch; their ends are the LAG's interfaces, not ports of their own.
    assert {w.key for w in want.wires.values() if w.far_node == "switch"} == {"node1:eth1", "node1:eth2", "node2:eth1", "node2:eth2"}
    assert names.switch_port("node1", "eth1") not in want.switch_ports
    assert lag.describe() == (f"trunk 10,100,200, native 10 untagged, LAG of {', '.join(lag.members)} (balance-tcp, lacp active)")
    assert layout.from_json(layout.to_json(want)) == want


def test_a_second_nic_bonded_turns_the_plain_port_into_a_lag_freed_first():
    text = seed_text()
    names, have = lay(text)
    bonded = text.replace('[[hosts.node1.uplinks]]\nnic = "eth1"', '[[hosts.node1.uplinks]]\nnics = ["eth1", "eth2"]\nbond = "bond0"\nlacp = "active"', 1)
    bonded += '\n[[lab.cables]]\nends = ["node1:eth2", "switch"]\n'
    _, want = lay(bonded, names)
    p = diff(have, want)
    port1, port2 = names.switch_port("node1", "eth1"), names.switch_port("node1", "eth2")
    # The plain port leaves before the LAG takes its interface, in the stage before the hosts.
    assert [(c.action, c.key) for c in p.stage(Stage.BEFORE, Part.SWITCH_PORT)] == [
        (Action.DELETE, port1), (Action.CREATE, names.switch_port("node1", "bond0"))]
    assert [(c.action, c.key) for c in p.stage(Stage.BEFORE, Part.CABLE)] == [(Action.CREATE, "node1:eth2")]
    assert p.changes[[c.key for c in p.changes].index(port1)].stage is Stage.BEFORE
    assert (port1, port2) == p.stage(Stage.BEFORE, Part.SWITCH_PORT, Action.CREATE)[0].after.members


def test_dual_stack_legs_and_endpoints_carry_both_families():
    t = parse(DUAL.read_text(), str(DUAL))
    names = LabNames.for_topology(t, PREFIX)
    want = layout.desired(t, names)
    assert want.legs[100].addresses == ("10.100.0.1/24", "fd00:100::1/64")
    assert want.legs[100].describe() == "VLAN 100, 10.100.0.1/24, fd00:100::1/64, mtu 1500"
    web1 = want.endpoints["web1"]
    assert (web1.address, web1.gateway, web1.address6, web1.gateway6) == ("10.100.0.11/24", "10.100.0.1", "fd00:100::11/64", "fd00:100::1")
    assert layout.from_json(layout.to_json(want)) == want
    # The router's IPv6 address edited: the leg is modified in place.
    _, edited = lay(DUAL.read_text().replace('router6 = "fd00:100::1"', 'router6 = "fd00:100::fe"'), names)
    (c,) = diff(want, edited).stage(Stage.BEFORE, Part.LEG)
    assert c.line() == ("modify  lab:router-leg:v100  VLAN 100, 10.100.0.1/24, fd00:100::1/64, mtu 1500 -> "
                        "VLAN 100, 10.100.0.1/24, fd00:100::fe/64, mtu 1500")
