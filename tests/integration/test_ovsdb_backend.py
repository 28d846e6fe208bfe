"""The OVSDB backend against a real, private ovsdb-server and ovs-vswitchd.

Every effect is checked with ovs-vsctl, a client independent of python-ovs,
so a bug shared by the backend's writes and reads cannot hide itself.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from ovsnet.backends.ovsdb import Ovsdb
from ovsnet.errors import BackendError, VerificationError
from ovsnet.kinds.ovs_bridge import OvsAddBridge, OvsDelBridge, OvsSetBridge
from ovsnet.kinds.ovs_port import OvsAddPort, OvsDelPort, OvsSetPort
from ovsnet.lab import netns
from ovsnet.marks import OWNER_KEY

pytestmark = pytest.mark.root

MARK = {OWNER_KEY: "lab"}


@pytest.fixture(autouse=True)
def nothing_left_behind(run_prefix):
    """After the fixtures' teardown: no namespace and no live daemon of this test remain."""
    yield
    assert netns.listed(run_prefix) == []
    assert _live_processes_mentioning(run_prefix) == []


def _live_processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if text in cmdline and state not in ("Z", "X"):
            found.append(f"{proc.name}: {cmdline}")
    return found


def vsctl(ovs, *args: str) -> str:
    proc = subprocess.run(
        ["ovs-vsctl", f"--db={ovs.remote}", "--timeout=10", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def get(ovs, table: str, record: str, column: str) -> str:
    return vsctl(ovs, "get", table, record, column)


def names(ovs, table: str) -> set[str]:
    out = vsctl(ovs, "--format=json", "--columns=name", "list", table)
    return {row[0] for row in json.loads(out)["data"]}


def next_cfg(ovs) -> int:
    return int(get(ovs, "Open_vSwitch", ".", "next_cfg"))


def make_veth(ns: str, name: str) -> None:
    """A veth pair in the namespace, both ends up; `name` goes into OVS."""
    with IPRoute(netns=ns) as ipr:
        ipr.link("add", ifname=name, kind="veth", peer=f"{name}p")
        for ifname in (name, f"{name}p"):
            (index,) = ipr.link_lookup(ifname=ifname)
            ipr.link("set", index=index, state="up")


def base(ovs, *ports: OvsAddPort) -> None:
    with Ovsdb(ovs.remote) as db:
        db.transact([OvsAddBridge("br0", "netdev", MARK), *ports])


# --- building ---------------------------------------------------------------


def test_one_transaction_builds_bridge_and_ports(ovs):
    make_veth(ovs.netns, "eth1")
    ops = [
        OvsAddBridge("br0", "netdev", MARK),
        OvsAddPort("br0", "int10", iface_type="internal", tag=10, external_ids=MARK),
        OvsAddPort(
            "br0",
            "eth1",
            tag=10,
            trunks=frozenset({100, 200}),
            vlan_mode="native-untagged",
            external_ids={**MARK, "ovsnet-role": "uplink"},
        ),
    ]
    with Ovsdb(ovs.remote) as db:
        db.transact(ops)
        state = db.read()

    # One transaction: next_cfg went up exactly once, and ovs-vswitchd caught up.
    assert next_cfg(ovs) == 1
    assert int(get(ovs, "Open_vSwitch", ".", "cur_cfg")) >= 1
    assert state.cur_cfg >= 1

    assert get(ovs, "Bridge", "br0", "datapath_type") == "netdev"
    assert get(ovs, "Bridge", "br0", f"external_ids:{OWNER_KEY}") == "lab"
    assert vsctl(ovs, "list-ports", "br0").split() == ["eth1", "int10"]
    assert get(ovs, "Port", "int10", "tag") == "10"
    assert get(ovs, "Interface", "int10", "type") == "internal"
    assert get(ovs, "Port", "eth1", "tag") == "10"
    assert get(ovs, "Port", "eth1", "trunks") == "[100, 200]"
    assert get(ovs, "Port", "eth1", "vlan_mode") == "native-untagged"
    assert get(ovs, "Port", "eth1", "external_ids:ovsnet-role") == "uplink"
    for iface in ("int10", "eth1"):
        assert int(get(ovs, "Interface", iface, "ofport")) > 0

    bridge = state.bridges["br0"]
    assert bridge.datapath_type == "netdev"
    assert bridge.ports == ("eth1", "int10")
    assert bridge.owner == "lab"
    eth1 = state.ports["eth1"]
    assert (eth1.bridge, eth1.tag, eth1.trunks, eth1.vlan_mode) == (
        "br0",
        10,
        frozenset({100, 200}),
        "native-untagged",
    )
    assert eth1.external_ids == {**MARK, "ovsnet-role": "uplink"}
    (iface,) = eth1.interfaces
    assert iface.name == "eth1" and iface.type == "" and iface.ofport > 0 and not iface.error
    int10 = state.ports["int10"]
    assert (int10.tag, int10.vlan_mode, int10.owner) == (10, None, "lab")
    assert int10.interfaces[0].type == "internal"


def test_ensure_root_creates_the_row_once(ovs):
    # The fixture already ran ensure_root() on a fresh database instead of `ovs-vsctl init`.
    with Ovsdb(ovs.remote) as db:
        db.ensure_root()
    assert len(json.loads(vsctl(ovs, "--format=json", "list", "Open_vSwitch"))["data"]) == 1


def test_read_sees_changes_by_other_clients_at_once(ovs):
    with Ovsdb(ovs.remote) as db:
        assert db.read().bridges == {}
        vsctl(ovs, "--no-wait", "add-br", "br9", "--", "set", "Bridge", "br9", "datapath_type=netdev")
        assert "br9" in db.read().bridges


def test_empty_ops_are_no_transaction(ovs):
    with Ovsdb(ovs.remote) as db:
        db.transact([])
    assert next_cfg(ovs) == 0
    # Not even a connection is needed for nothing.
    with Ovsdb("unix:/nonexistent/db.sock") as db:
        db.transact([])


# --- changing ---------------------------------------------------------------


def test_set_port_replaces_vlan_columns_and_marks(ovs):
    base(ovs, OvsAddPort("br0", "p1", iface_type="internal", tag=10, external_ids=MARK))
    with Ovsdb(ovs.remote) as db:
        db.transact([OvsSetPort("p1", tag=20, external_ids={**MARK, "k": "v"})])
        assert get(ovs, "Port", "p1", "tag") == "20"
        assert get(ovs, "Port", "p1", "external_ids") == '{k=v, ovsnet-topology=lab}'

        db.transact([OvsSetPort("p1", tag=None, trunks=frozenset({5, 6}), vlan_mode="trunk")])
        assert get(ovs, "Port", "p1", "tag") == "[]"
        assert get(ovs, "Port", "p1", "trunks") == "[5, 6]"
        assert get(ovs, "Port", "p1", "vlan_mode") == "trunk"
        assert get(ovs, "Port", "p1", "external_ids") == "{}"

        db.transact([OvsSetPort("p1", tag=30)])
        assert get(ovs, "Port", "p1", "vlan_mode") == "[]"
        assert get(ovs, "Port", "p1", "trunks") == "[]"
        port = db.read().ports["p1"]
    assert (port.tag, port.trunks, port.vlan_mode) == (30, frozenset(), None)


def test_set_bridge(ovs):
    base(ovs)
    with Ovsdb(ovs.remote) as db:
        db.transact([OvsSetBridge("br0", "netdev", {"a": "b"})])
    assert get(ovs, "Bridge", "br0", "external_ids") == "{a=b}"


def test_del_port_takes_its_interface(ovs):
    base(
        ovs,
        OvsAddPort("br0", "p1", iface_type="internal"),
        OvsAddPort("br0", "p2", iface_type="internal"),
    )
    with Ovsdb(ovs.remote) as db:
        db.transact([OvsDelPort("br0", "p1")])
        assert vsctl(ovs, "list-ports", "br0").split() == ["p2"]
        assert names(ovs, "Port") == {"p2"}
        assert names(ovs, "Interface") == {"p2"}
        # Already gone is the asked-for end state.
        db.transact([OvsDelPort("br0", "p1")])
        with pytest.raises(BackendError, match="p2 is on bridge br0, not br1"):
            db.transact([OvsDelPort("br1", "p2")])


def test_replace_port_in_one_transaction(ovs):
    base(ovs, OvsAddPort("br0", "p1", iface_type="internal", tag=10))
    with Ovsdb(ovs.remote) as db:
        db.transact([OvsDelPort("br0", "p1"), OvsAddPort("br0", "p1", iface_type="internal", tag=11)])
    assert get(ovs, "Port", "p1", "tag") == "11"
    assert names(ovs, "Interface") == {"p1"}


def test_del_bridge_takes_its_ports(ovs):
    base(ovs, OvsAddPort("br0", "p1", iface_type="internal"))
    with Ovsdb(ovs.remote) as db:
        db.transact([OvsDelBridge("br0")])
        assert db.read().bridges == {}
    assert vsctl(ovs, "list-br") == ""
    assert get(ovs, "Open_vSwitch", ".", "bridges") == "[]"
    assert names(ovs, "Port") == set() and names(ovs, "Interface") == set()


def test_two_hundred_ports_in_one_transaction(ovs):
    ports = [OvsAddPort("br0", f"p{i}", iface_type="internal", tag=100 + i % 2) for i in range(200)]
    with Ovsdb(ovs.remote, timeout=60) as db:
        db.transact([OvsAddBridge("br0", "netdev"), *ports])
        state = db.read()
    assert next_cfg(ovs) == 1
    assert len(state.bridges["br0"].ports) == 200
    assert all(p.interfaces[0].ofport > 0 for p in state.ports.values())
    assert len(vsctl(ovs, "list-ports", "br0").split()) == 200


# --- failing ----------------------------------------------------------------


def test_unreachable_server(tmp_path):
    remote = f"unix:{tmp_path}/db.sock"
    with Ovsdb(remote, timeout=2) as db:
        with pytest.raises(BackendError) as info:
            db.read()
    message = str(info.value)
    assert message.startswith(f"cannot reach ovsdb-server at {remote}: No such file or directory")
    assert "is openvswitch-switch running? (start it, or pass --db)" in message


def test_stopped_vswitchd_is_a_verification_error(ovs):
    ovs.stop_vswitchd()
    started = time.monotonic()
    with Ovsdb(ovs.remote, timeout=2) as db:
        with pytest.raises(VerificationError) as info:
            db.transact([OvsAddBridge("br0", "netdev")])
        assert time.monotonic() - started < 10
        assert "committed as next_cfg 1" in str(info.value)
        assert "reports cur_cfg 0 after 2." in str(info.value)
        assert "is ovs-vswitchd running?" in str(info.value)
        # Committed all the same: the database has it, the switch does not yet.
        assert vsctl(ovs, "list-br") == "br0"

        # Without waiting nothing is verified, so nothing can fail.
        db.transact([OvsAddPort("br0", "p1", iface_type="internal")], wait=False)

        ovs.start_vswitchd()
        db.transact([OvsSetBridge("br0", "netdev", MARK)])
    assert int(get(ovs, "Open_vSwitch", ".", "cur_cfg")) == 3
    assert int(get(ovs, "Interface", "p1", "ofport")) > 0


def test_port_on_missing_device_is_named(ovs):
    base(ovs)
    with Ovsdb(ovs.remote) as db:
        with pytest.raises(VerificationError) as info:
            db.transact(
                [
                    OvsAddPort("br0", "nosuch0"),
                    OvsAddPort("br0", "fine0", iface_type="internal"),
                ]
            )
        message = str(info.value)
        assert "nosuch0" in message and "fine0" not in message
        assert "No such device" in message
        iface = db.read().ports["nosuch0"].interfaces[0]
    assert iface.ofport == -1 and iface.error
    assert get(ovs, "Interface", "nosuch0", "ofport") == "-1"


def test_server_refusal_commits_nothing(ovs):
    # An interface of a bond made by another tool: its name is taken, though no port has it.
    make_veth(ovs.netns, "ifa")
    make_veth(ovs.netns, "ifb")
    base(ovs)
    vsctl(ovs, "add-bond", "br0", "bond0", "ifa", "ifb")
    before = next_cfg(ovs)
    with Ovsdb(ovs.remote) as db:
        with pytest.raises(BackendError, match="constraint violation") as info:
            db.transact([OvsAddBridge("br1", "netdev"), OvsAddPort("br1", "ifa")])
    assert "nothing was changed" in str(info.value)
    assert vsctl(ovs, "list-br") == "br0"
    assert next_cfg(ovs) == before


def test_bad_value_is_refused_before_sending(ovs):
    base(ovs, OvsAddPort("br0", "p1", iface_type="internal", tag=10))
    before = next_cfg(ovs)
    with Ovsdb(ovs.remote) as db:
        with pytest.raises(BackendError, match="port p1 tag.*4095"):
            db.transact([OvsAddBridge("br1", "netdev"), OvsSetPort("p1", tag=5000)])
        with pytest.raises(BackendError, match="vlan_mode"):
            db.transact([OvsSetPort("p1", tag=10, vlan_mode="sideways")])
    assert get(ovs, "Port", "p1", "tag") == "10"
    assert vsctl(ovs, "list-br") == "br0"
    assert next_cfg(ovs) == before


def test_stale_plan_is_refused(ovs):
    base(ovs, OvsAddPort("br0", "p1", iface_type="internal"))
    with Ovsdb(ovs.remote) as db:
        with pytest.raises(BackendError, match="bridge br0 already exists"):
            db.transact([OvsAddBridge("br0", "netdev")])
        with pytest.raises(BackendError, match="no bridge br7"):
            db.transact([OvsAddPort("br7", "p9")])
        with pytest.raises(BackendError, match="no port p9"):
            db.transact([OvsSetPort("p9", tag=1)])


def test_concurrent_writer_is_not_overwritten(ovs, monkeypatch):
    """Another client adds a port between our read and our commit: we retry, keeping it."""
    from ovsnet.backends.ovsdb.txn import Txn

    base(ovs)
    build = Txn.build
    calls = []

    def racing_build(self, ops):
        calls.append(1)
        if len(calls) == 1:
            vsctl(ovs, "--no-wait", "add-port", "br0", "theirs", "--", "set", "Interface", "theirs", "type=internal")
        return build(self, ops)

    monkeypatch.setattr(Txn, "build", racing_build)
    with Ovsdb(ovs.remote) as db:
        db.transact([OvsAddPort("br0", "ours", iface_type="internal")])
    assert len(calls) == 2
    assert vsctl(ovs, "list-ports", "br0").split() == ["ours", "theirs"]


def test_server_gone_after_connecting(ovs):
    with Ovsdb(ovs.remote, timeout=2) as db:
        db.read()
        ovs.stop()
        with pytest.raises(BackendError, match="cannot reach ovsdb-server at unix:.*is openvswitch-switch running"):
            db.read()


def test_the_select_reader_and_the_idl_agree(ovs):
    """Reads go through one select transaction (fast); the IDL's replica must say exactly the same."""
    make_veth(ovs.netns, "pa")
    make_veth(ovs.netns, "pb")
    make_veth(ovs.netns, "pc")
    base(ovs)
    vsctl(ovs, "add-bond", "br0", "bond0", "pa", "pb", "bond_mode=balance-slb", "--", "set", "Port", "bond0", "trunks=10,20")
    vsctl(ovs, "add-port", "br0", "pc", "tag=7", "vlan_mode=native-untagged", "trunks=7,8", "--", "set", "Port", "pc", "external_ids:k=v")
    vsctl(ovs, "add-port", "br0", "in0", "--", "set", "Interface", "in0", "type=internal", "mac=\"02:00:00:00:00:07\"")
    vsctl(ovs, "add-port", "br0", "gone0")  # a device that does not exist: error and ofport -1
    with Ovsdb(ovs.remote) as db:
        fast, slow = db.read(), db.read_through_idl()
    assert fast == slow
    assert fast.ports["in0"].interfaces[0].mac == "02:00:00:00:00:07"
    assert [i.name for i in fast.ports["bond0"].interfaces] == ["pa", "pb"]
    assert fast.ports["gone0"].interfaces[0].ofport == -1
