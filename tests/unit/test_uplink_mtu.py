"""The uplink's `mtu`: planned as a NIC change, kept in the state file, put back by down."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ovsnet.apply import record
from ovsnet.apply.record import Record
from ovsnet.backends.netlink.ops import NlSetLink
from ovsnet.current import Link, OvsBridge, OvsPort, OvsState
from ovsnet.errors import BackendError
from ovsnet.kinds import Desired
from ovsnet.kinds.nic import NicWant, SavedNics
from ovsnet.kinds.uplink import SavedUplink
from ovsnet.marks import OWNER_KEY, ROLE_KEY
from ovsnet.plan import planner
from ovsnet.plan.model import Action, Phase
from ovsnet.plan.offline import from_nothing
from ovsnet.render.plan import drift_text, plan_text
from ovsnet.topology import check
from ovsnet.topology.load import parse

ROOT = Path(__file__).resolve().parents[2]
SEED_TEXT = (ROOT / "topologies" / "seed.toml").read_text()
FLAT_TEXT = (ROOT / "topologies" / "flat.toml").read_text()
TOPO = "seed"
JUMBO = SEED_TEXT.replace('native_vlan = "mgmt"\n', 'native_vlan = "mgmt"\nmtu = 9000\n', 1)  # node1's uplink only


def host(text: str, name: str = "node1") -> Desired:
    t = parse(text, "t.toml")
    check(t)
    return planner.desire(t, t.hosts[name])


def with_nic_mtu(state, nic: str, mtu: int):
    links = dict(state.linux.links)
    links[nic] = replace(links[nic], mtu=mtu)
    return replace(state, linux=replace(state.linux, links=links))


def test_desired_has_each_uplink_nic_with_its_mtu():
    assert host(JUMBO).of("nic") == (NicWant("eth1", 9000),)
    # node2's uplink has no mtu in the file: its NIC's MTU is left alone, whatever it is.
    assert host(JUMBO, "node2").of("nic") == (NicWant("eth1", None),)


def test_the_flat_layout_has_no_nic_mtu():
    t = parse(FLAT_TEXT, "flat.toml")
    check(t)
    name = next(iter(t.hosts))
    assert planner.desire(t, t.hosts[name]).of("nic") == ()


def test_nic_mtu_change_is_planned_with_its_undo_and_remembered():
    d = host(JUMBO)
    p = planner.diff(d, from_nothing(d))
    (c,) = [c for c in p.changes if c.resource == "link:eth1"]
    assert c.action is Action.MODIFY and c.phase is Phase.LINUX
    assert c.line() == "modify  link:eth1  mtu 1500 -> mtu 9000"
    assert c.ops == (NlSetLink("eth1", mtu=9000),)
    assert c.undo == (NlSetLink("eth1", mtu=1500),)
    assert p.keep["nic"] == SavedNics({"eth1": 1500})
    # before the OVS transaction that adds the NIC, like the other Linux changes
    phases = [x.phase for x in p.changes]
    assert p.changes.index(c) < phases.index(Phase.OVSDB)
    text = plan_text(p)
    assert "modify  link:eth1  mtu 1500 -> mtu 9000" in text
    assert "eth1's mtu before ovsnet's first change is kept in the state file" in text


def test_nic_already_at_its_mtu_is_left_alone():
    d = host(JUMBO)
    st = with_nic_mtu(from_nothing(d), "eth1", 9000)
    p = planner.diff(d, st)
    assert not [c for c in p.changes if c.resource == "link:eth1"]
    assert "nic" not in p.keep


def test_nic_mtu_drift_is_reported():
    d = host(JUMBO)
    st = with_nic_mtu(from_nothing(d), "eth1", 1400)
    p = planner.diff(d, st)
    assert "modify  link:eth1  mtu 1400 -> mtu 9000   (the uplink's mtu in the topology)" in drift_text(p)


def test_missing_nic_gets_no_mtu_change():
    d = host(JUMBO)
    st = from_nothing(d)
    links = {k: v for k, v in st.linux.links.items() if k != "eth1"}
    p = planner.diff(d, replace(st, linux=replace(st.linux, links=links)))
    assert not [c for c in p.changes if c.resource == "link:eth1" and c.phase is Phase.LINUX]
    assert [b.resource for b in p.blockers] == ["link:eth1"]  # the uplink move names it


def test_teardown_restores_the_saved_mtu_before_the_bridge_goes():
    d = host(JUMBO)
    st = with_nic_mtu(from_nothing(d), "eth1", 9000)
    marks = {OWNER_KEY: TOPO, ROLE_KEY: "uplink"}
    st = replace(st, ovs=OvsState({"br-ovs": OvsBridge("br-ovs", "system", ("eth1",), {OWNER_KEY: TOPO, ROLE_KEY: "bridge"})},
                                  {"eth1": OvsPort("eth1", "br-ovs", 10, frozenset({10}), "native-untagged", (), marks)}))
    saved = {"nic": SavedNics({"eth1": 1500, "gone0": 1500})}
    p = planner.teardown(d, st, saved)
    res = [c.resource for c in p.changes]
    mtu = res.index("link:eth1")
    assert res.index("link:eth1") < res.index("bridge:br-ovs")
    c = p.changes[mtu]
    assert c.action is Action.RESTORE and c.ops == (NlSetLink("eth1", mtu=1500),)
    assert c.line() == "restore link:eth1  mtu 9000 -> mtu 1500"
    # a NIC no longer there, or already at its old MTU, needs nothing
    assert res.count("link:eth1") == 1 and "link:gone0" not in res
    assert "link:eth1" not in [c.resource for c in planner.teardown(d, with_nic_mtu(st, "eth1", 1500), saved).changes]


def test_state_file_keeps_nic_mtus(tmp_path):
    up = SavedUplink("eth1", ("192.0.2.11/24",), (), None)
    record.write(tmp_path, Record("t", "h", {"uplink": up, "nic": SavedNics({"eth1": 1500})}))
    back = record.read(tmp_path, "t", "h")
    assert back == Record("t", "h", {"uplink": up, "nic": SavedNics({"eth1": 1500})})
    body = json.loads(record.path_for(tmp_path, "t", "h").read_text())
    assert body["parts"]["nic"] == {"mtus": {"eth1": 1500}, "were_down": []}


def test_state_file_of_format_1_still_reads(tmp_path):
    """A file written before the kinds kept their own parts."""
    p = record.path_for(tmp_path, "t", "h")
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps({"format": 1, "topology": "t", "host": "h", "uplink": None}))
    assert record.read(tmp_path, "t", "h") == Record("t", "h")
    p.write_text(json.dumps({"format": 1, "topology": "t", "host": "h", "nic_mtus": {"eth1": 1500},
                             "uplink": {"nic": "eth1", "addresses": ["192.0.2.11/24"], "routes": [], "dns": ["9.9.9.9"], "nic_master": None}}))
    back = record.read(tmp_path, "t", "h")
    assert back is not None and back.parts["nic"] == SavedNics({"eth1": 1500})
    assert back.parts["uplink"] == SavedUplink("eth1", ("192.0.2.11/24",), (), None)
    assert back.parts["dns"].servers == ("9.9.9.9",)


@pytest.mark.parametrize("bad", [[1500], {"eth1": "1500"}, {"eth1": True}, "x", {"mtus": {"eth1": "x"}}, {"were_down": "eth2"}])
def test_state_file_with_bad_nic_mtus_is_corrupt(tmp_path, bad):
    p = record.path_for(tmp_path, "t", "h")
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps({"format": 1, "topology": "t", "host": "h", "uplink": None, "nic_mtus": bad}))
    with pytest.raises(BackendError, match="corrupt"):
        record.read(tmp_path, "t", "h")


def test_merge_keeps_the_oldest_mtu_and_uplink():
    up1 = SavedUplink("eth1", ("192.0.2.11/24",), (), None)
    up2 = SavedUplink("eth1", (), (), None)
    first = Record("t", "h").merged({"uplink": up1, "nic": SavedNics({"eth1": 1500})})
    assert first == Record("t", "h", {"uplink": up1, "nic": SavedNics({"eth1": 1500})})
    # a later plan sees ovsnet's own values: the first record wins
    later = first.merged({"uplink": up2, "nic": SavedNics({"eth1": 9000, "eth2": 1400})})
    assert later == Record("t", "h", {"uplink": up1, "nic": SavedNics({"eth1": 1500, "eth2": 1400})})
    assert Record("t", "h").merged({}) == Record("t", "h") and Record("t", "h").empty


def test_an_mtu_the_nic_refuses_says_so():
    import errno

    text = NlSetLink("eth1", mtu=9000).explain(errno.EINVAL)
    assert text.startswith("Invalid argument: eth1 does not take mtu 9000") and "lower the mtu in the topology" in text
    assert NlSetLink("eth1", up=True).explain(errno.EINVAL) == "Invalid argument"


def with_nic_down(state, nic: str, master: str | None = None, master_kind: str = "bond", up: bool = False):
    links = dict(state.linux.links)
    links[nic] = replace(links[nic], up=up, master=master)
    if master:
        links[master] = Link(master, 90, kind=master_kind, up=True)
    return replace(state, linux=replace(state.linux, links=links))


def test_an_uplink_nic_that_is_down_is_brought_up_and_remembered():
    """Neither OVS datapath brings a port's NIC up: a fresh host's unconfigured second NIC would carry nothing."""
    d = host(JUMBO)
    p = planner.diff(d, with_nic_down(from_nothing(d), "eth1"))
    (c,) = [c for c in p.changes if c.resource == "link:eth1"]
    assert c.line() == "modify  link:eth1  mtu 1500, down -> mtu 9000, up"
    assert c.ops == (NlSetLink("eth1", mtu=9000), NlSetLink("eth1", up=True))
    assert c.undo == (NlSetLink("eth1", up=False), NlSetLink("eth1", mtu=1500))
    assert p.keep["nic"] == SavedNics({"eth1": 1500}, frozenset({"eth1"}))
    # node2 sets no mtu: only the admin state
    d2 = host(JUMBO, "node2")
    (c2,) = [c for c in planner.diff(d2, with_nic_down(from_nothing(d2), "eth1")).changes if c.resource == "link:eth1"]
    assert c2.line() == "modify  link:eth1  down -> up" and c2.ops == (NlSetLink("eth1", up=True),)


def test_a_linux_bond_member_that_is_down_is_left_to_the_bond_kind():
    d = host(JUMBO, "node2")
    p = planner.diff(d, with_nic_down(from_nothing(d), "eth1", master="bond9"))
    assert not [c for c in p.changes if c.resource == "link:eth1" and c.phase is Phase.LINUX and "up" in (c.after or "")]
    assert "nic" not in p.keep


def test_a_nic_down_in_the_kernel_datapath_is_brought_up():
    """On the kernel datapath an OVS port's NIC has master ovs-system: down after a reboot, it is still brought up."""
    d = host(JUMBO, "node2")
    p = planner.diff(d, with_nic_down(from_nothing(d), "eth1", master="ovs-system", master_kind="openvswitch"))
    (c,) = [c for c in p.changes if c.resource == "link:eth1"]
    assert c.line() == "modify  link:eth1  down -> up"


def test_down_puts_a_nic_that_was_down_down_again_after_ovs_lets_it_go():
    d = host(JUMBO, "node2")
    marks = {OWNER_KEY: TOPO, ROLE_KEY: "uplink"}
    st = replace(from_nothing(d), ovs=OvsState({"br-ovs": OvsBridge("br-ovs", "system", ("eth1",), {OWNER_KEY: TOPO, ROLE_KEY: "bridge"})},
                                               {"eth1": OvsPort("eth1", "br-ovs", 10, frozenset({10}), "native-untagged", (), marks)}))
    saved = {"nic": SavedNics({}, frozenset({"eth1", "gone0"}))}
    p = planner.teardown(d, st, saved)
    (c,) = [c for c in p.changes if c.resource == "link:eth1"]
    assert c.action is Action.RESTORE and c.phase is Phase.CLEANUP and c.line() == "restore link:eth1  up -> down"
    assert c.ops == (NlSetLink("eth1", up=False),) and c.undo == (NlSetLink("eth1", up=True),)
    assert "link:gone0" not in [x.resource for x in p.changes]
    # already down, or back in a Linux bond: nothing to do
    assert "link:eth1" not in [x.resource for x in planner.teardown(d, with_nic_down(st, "eth1"), saved).changes]
    assert "link:eth1" not in [x.resource for x in planner.teardown(d, with_nic_down(st, "eth1", master="bond9", up=True), saved).changes]
    # still in the kernel datapath's OVS port when down plans: set down once OVS lets it go
    kernel = planner.teardown(d, with_nic_down(st, "eth1", master="ovs-system", master_kind="openvswitch", up=True), saved)
    assert [x.line() for x in kernel.changes if x.resource == "link:eth1"] == ["restore link:eth1  up -> down"]


def test_state_file_keeps_the_nics_that_were_down(tmp_path):
    record.write(tmp_path, Record("t", "h", {"nic": SavedNics({"eth1": 1500}, frozenset({"eth2"}))}))
    assert record.read(tmp_path, "t", "h") == Record("t", "h", {"nic": SavedNics({"eth1": 1500}, frozenset({"eth2"}))})
    merged = Record("t", "h", {"nic": SavedNics({}, frozenset({"eth2"}))}).merged({"nic": SavedNics({"eth1": 9000}, frozenset({"eth3"}))})
    assert merged.parts["nic"] == SavedNics({"eth1": 9000}, frozenset({"eth2", "eth3"}))


def test_state_file_of_format_2_with_mtus_only_still_reads(tmp_path):
    """A record written before the admin state was kept: the nic part is NIC -> MTU."""
    p = record.path_for(tmp_path, "t", "h")
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps({"format": 2, "topology": "t", "host": "h", "parts": {"nic": {"eth1": 1500}}}))
    assert record.read(tmp_path, "t", "h") == Record("t", "h", {"nic": SavedNics({"eth1": 1500})})
