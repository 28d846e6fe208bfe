"""Handovers to systemd-networkd, NetworkManager and ifupdown, from snapshots (issue 15).

Pure: each manager's files are computed from a PortSpec and the host's files
given as texts (HostFiles), and the handover kind is planned against made-up
host snapshots. The VMs (tests/vm/test_vm_handover.py) run the same files on
real managers, across reboots.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from ovsnet.backends.manager import DhclientRun, ManagerHost, RunProgram, WriteFile
from ovsnet.backends.netlink.ops import NlSetLink
from ovsnet.current import Address, HostFiles, Route
from ovsnet.kinds.handover import Handovers, SavedHandover
from ovsnet.managers import IFUPDOWN, NETWORKD, NETWORKMANAGER, Managed, ifupdown, networkd, networkmanager
from ovsnet.managers.handoff import Dhclient, PortSpec, Program
from ovsnet.plan import planner
from ovsnet.plan.model import Action, Phase
from ovsnet.plan.offline import from_nothing
from ovsnet.topology.load import parse
from tests.support.snapshots import applied

ROOT = Path(__file__).resolve().parents[2]
SEED = (ROOT / "topologies" / "seed.toml").read_text()
STATIC = PortSpec("seed", "node1", "eth1", "mgmt0", ("192.168.10.11/24",), ("192.168.10.1",), ("192.168.10.1",), nic_index=3)
DHCP = replace(STATIC, addresses=(), gateways=(), dhcp=True)
MARK = "# ovsnet:seed:node1: "

# Debian's own /etc/network/interfaces, with the seed's static stanza for eth1.
INTERFACES = """\
# This file describes the network interfaces available on your system
# and how to activate them. For more information, see interfaces(5).

source /etc/network/interfaces.d/*

# The loopback network interface
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp

# eth1, as on the seed's hosts
auto eth1
iface eth1 inet static
    address 192.168.10.11
    netmask 255.255.255.0
    gateway 192.168.10.1

# trailing comment
"""


def topo(handover: str, dhcp: bool = False):
    text = SEED.replace('[hosts.node1.management]\nport = "mgmt0"\n', f'[hosts.node1.management]\nport = "mgmt0"\nhandover = "{handover}"\n', 1)
    if dhcp:
        text = text.replace('addresses = ["192.168.10.11/24"]\ngateway = "192.168.10.1"\n', 'addresses = "dhcp"\n', 1)
    assert f'handover = "{handover}"' in text
    return parse(text, "seed.toml")


# --- systemd-networkd ---------------------------------------------------------------------------


def test_networkd_static_writes_an_unmanaged_nic_and_the_port_with_the_addresses():
    h = networkd.handoff(STATIC, HostFiles(texts={}))
    (nic, port) = h.files
    assert nic.path == "/etc/systemd/network/05-ovsnet-seed-eth1.network"
    assert port.path == "/etc/systemd/network/05-ovsnet-seed-mgmt0.network"
    # Sorted before netplan's generated files and the user's own.
    assert sorted([nic.path.rsplit("/", 1)[1], port.path.rsplit("/", 1)[1], "10-netplan-eth1.network", "20-wired.network"])[:2] == \
        ["05-ovsnet-seed-eth1.network", "05-ovsnet-seed-mgmt0.network"]
    assert nic.text is not None and nic.text.startswith(MARK)
    assert nic.text.split("\n", 1)[1] == ("[Match]\nName=eth1\n\n[Link]\nUnmanaged=yes\n\n"
                                         "[Network]\nDHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n")
    assert port.text is not None and port.text.split("\n", 1)[1] == (
        "[Match]\nName=mgmt0\n\n[Network]\nAddress=192.168.10.11/24\nGateway=192.168.10.1\nDNS=192.168.10.1\n"
        "LinkLocalAddressing=no\nIPv6AcceptRA=no\nKeepConfiguration=static\n")
    assert h.take == (Program(("networkctl", "reload")), Program(("networkctl", "reconfigure", "mgmt0")))
    assert h.give == (Program(("networkctl", "reload")), Program(("networkctl", "reconfigure", "eth1")))
    assert h.client_id is None and h.notes == ()


def test_networkd_dhcp_asks_as_the_nic_did_its_iaid_from_the_lease():
    # networkd's default: CLIENTID=ff + IAID (4 bytes) + DUID (RFC 4361).
    lease = "# This is private data. Do not parse.\nADDRESS=192.168.10.120\nCLIENTID=ff2a0b5c6d00020000ab11abcdef0123456789\n"
    h = networkd.handoff(DHCP, HostFiles(texts={"/run/systemd/netif/leases/3": lease}))
    port = h.files[1].text or ""
    assert "DHCP=ipv4\n" in port and "Address=" not in port and "KeepConfiguration" not in port
    assert port.endswith("[DHCPv4]\nClientIdentifier=duid\nIAID=705387629\n")
    assert int("2a0b5c6d", 16) == 705387629 and h.client_id == "duid iaid=705387629" and h.notes == ()


def test_networkd_dhcp_with_a_mac_client_id_or_no_lease_asks_with_the_mac():
    h = networkd.handoff(DHCP, HostFiles(texts={"/run/systemd/netif/leases/3": "CLIENTID=015254000a0011\n"}))
    assert (h.files[1].text or "").endswith("[DHCPv4]\nClientIdentifier=mac\n") and h.notes == ()
    h = networkd.handoff(DHCP, HostFiles(texts={}))
    assert (h.files[1].text or "").endswith("[DHCPv4]\nClientIdentifier=mac\n")
    assert h.notes == ("no DHCP lease of eth1 on file in /run/systemd/netif/leases: mgmt0 asks as ClientIdentifier=mac "
                       "(the NIC's MAC), and the server may hand out another address",)
    # Once chosen (kept in the record), the same file on every later run, lease or not.
    assert networkd.handoff(replace(DHCP, client_id="duid iaid=7"), HostFiles(texts={})).files[1].text.endswith("IAID=7\n")  # type: ignore[union-attr]


# --- NetworkManager -----------------------------------------------------------------------------


def test_networkmanager_static_unmanages_the_nic_and_adds_a_generic_keyfile_for_the_port():
    h = networkmanager.handoff(STATIC, HostFiles(texts={}))
    conf, key = h.files
    assert conf.path == "/etc/NetworkManager/conf.d/90-ovsnet-seed.conf"
    # The port managed although NetworkManager leaves a generic device, or one down at its start, unmanaged by default.
    assert (conf.text or "").split("\n", 1)[1] == ("[keyfile]\nunmanaged-devices+=interface-name:eth1\n\n"
                                                 "[device-ovsnet-seed-mgmt0]\nmatch-device=interface-name:mgmt0\nmanaged=1\n")
    assert key.path == "/etc/NetworkManager/system-connections/ovsnet-seed-mgmt0.nmconnection" and key.mode == 0o600
    uid = networkmanager.connection_uuid(STATIC)
    assert (key.text or "").split("\n", 1)[1] == (
        f"[connection]\nid=ovsnet-seed-mgmt0\nuuid={uid}\ntype=generic\ninterface-name=mgmt0\nautoconnect=true\nautoconnect-priority=50\n\n"
        "[ipv4]\nmethod=manual\naddress1=192.168.10.11/24\ngateway=192.168.10.1\ndns=192.168.10.1;\nmay-fail=false\n\n"
        "[ipv6]\nmethod=ignore\n")
    assert networkmanager.connection_uuid(STATIC) == uid != networkmanager.connection_uuid(replace(STATIC, host="node2"))
    # NetworkManager lets the NIC go (and takes it down) first; the port is asked for after the trunk is up again.
    assert h.release == (Program(("nmcli", "general", "reload", "conf")),)
    assert h.take == (Program(("nmcli", "connection", "load", key.path)), Program(("nmcli", "connection", "up", "uuid", uid)))
    assert h.give == (Program(("nmcli", "connection", "reload")), Program(("nmcli", "general", "reload", "conf")))


def test_networkmanager_dhcp_sends_the_client_id_of_the_nics_lease():
    leases = {"/var/lib/NetworkManager/internal-9f1c-eth1.lease": "ADDRESS=192.168.10.120\nCLIENTID=015254000a0011\n",
              "/var/lib/NetworkManager/internal-9f1c-eth2.lease": "CLIENTID=ffffffff\n"}
    h = networkmanager.handoff(DHCP, HostFiles(texts=leases))
    assert "[ipv4]\nmethod=auto\ndhcp-client-id=01:52:54:00:0a:00:11\ndns=192.168.10.1;\nmay-fail=false\n" in (h.files[1].text or "")
    h = networkmanager.handoff(DHCP, HostFiles(texts={}))
    assert "dhcp-client-id=mac\n" in (h.files[1].text or "") and h.notes


# --- ifupdown -----------------------------------------------------------------------------------


def test_ifupdown_makes_the_nics_stanza_manual_and_keeps_every_other_byte():
    h = ifupdown.handoff(STATIC, HostFiles(texts={"/etc/network/interfaces": INTERFACES}))
    main, port = h.files
    assert main.path == "/etc/network/interfaces" and port.path == "/etc/network/interfaces.d/ovsnet-seed-mgmt0"
    new = main.text or ""
    old_stanza = "iface eth1 inet static\n    address 192.168.10.11\n    netmask 255.255.255.0\n    gateway 192.168.10.1\n"
    made = (f"{MARK}eth1 is a port of an Open vSwitch bridge; its stanza was. Written by `ovsnet up`; `ovsnet down` puts things back.\n"
            + "".join("#   " + line + "\n" for line in old_stanza.splitlines()) + "iface eth1 inet manual\n")
    assert new == INTERFACES.replace(old_stanza, made)
    assert "auto eth1\n" in new  # ifupdown still brings the bridge port up at boot
    assert (port.text or "").split("\n", 1)[1] == ("auto mgmt0\niface mgmt0 inet static\n    address 192.168.10.11/24\n"
                                                  "    gateway 192.168.10.1\n    dns-nameservers 192.168.10.1\n")
    assert h.take == (Program(("ifup", "--ignore-errors", "mgmt0")),) and h.give == ()
    assert h.port_state == ("/run/network/ifstate.mgmt0",)


def test_ifupdown_dhcp_moves_the_client_and_a_file_without_source_gets_the_stanza_itself():
    text = INTERFACES.replace("source /etc/network/interfaces.d/*\n", "").replace(
        "iface eth1 inet static\n    address 192.168.10.11\n    netmask 255.255.255.0\n    gateway 192.168.10.1\n", "iface eth1 inet dhcp\n")
    h = ifupdown.handoff(DHCP, HostFiles(texts={"/etc/network/interfaces": text}))
    (main,) = h.files
    assert "#   iface eth1 inet dhcp\niface eth1 inet manual\n" in (main.text or "")
    assert (main.text or "").endswith("\nauto mgmt0\niface mgmt0 inet dhcp\n")
    assert h.notes == ("/etc/network/interfaces does not source /etc/network/interfaces.d: the mgmt0 stanza is added to "
                       "/etc/network/interfaces (the whole file is put back byte for byte by down)",)
    assert h.take == (Dhclient("eth1", start=False), Program(("ifup", "--ignore-errors", "mgmt0")))
    assert h.give == (Dhclient("mgmt0", start=False), Dhclient("eth1", start=True))


def test_ifupdown_finds_the_stanza_in_a_sourced_file_and_a_manual_stanza_is_not_managing(tmp_path):
    files = {"/etc/network/interfaces": "source-directory /etc/network/interfaces.d\n",
             "/etc/network/interfaces.d/eth1": "auto eth1\niface eth1 inet static\n  address 192.168.10.11/24\n",
             "/etc/network/interfaces.d/skipped.conf": "iface eth1 inet dhcp\n"}  # a dot: source-directory skips it
    h = ifupdown.handoff(STATIC, HostFiles(texts=files))
    assert [e.path for e in h.files] == ["/etc/network/interfaces.d/eth1", "/etc/network/interfaces.d/ovsnet-seed-mgmt0"]
    # Detection: after the handover ifupdown still ups eth1, but gives it no address.
    (tmp_path / "run/network").mkdir(parents=True)
    (tmp_path / "run/network/ifstate.eth1").write_text("eth1\n")
    (tmp_path / "etc/network").mkdir(parents=True)
    (tmp_path / "etc/network/interfaces").write_text(h.files[0].text or "")
    from ovsnet.current import Link
    assert ifupdown.detect(tmp_path, Link("eth1", 3)) is None
    (tmp_path / "etc/network/interfaces").write_text(files["/etc/network/interfaces.d/eth1"])
    found = ifupdown.detect(tmp_path, Link("eth1", 3))
    assert found is not None and found.manager == IFUPDOWN and not found.dhcp


# --- the kind: plan, record, drift, teardown -----------------------------------------------------------


def managed(manager: str, dhcp: bool = False) -> dict[str, Managed]:
    return {"eth1": Managed("eth1", manager, "a state file", dhcp)}


def handover_changes(plan):
    return [c for c in plan.changes if c.phase is Phase.HANDOVER]


def test_without_a_handover_up_refuses_naming_the_manager_and_the_choices():
    t = topo("none")
    d = planner.desire(t, t.hosts["node1"])
    p = planner.diff(d, replace(from_nothing(d), managers=managed(NETWORKD)))
    (b,) = p.blockers
    assert b.resource == "link:eth1"
    assert b.message == "eth1 is managed by systemd-networkd: a state file; after the move it would put the host's address back on eth1"
    assert b.hint == ('set handover = "networkd" (or "auto") under the host\'s [management] so that ovsnet hands eth1 to OVS and mgmt0 '
                      "to systemd-networkd, or stop systemd-networkd managing eth1 yourself")


@pytest.mark.parametrize("manager,files", [(NETWORKD, 2), (NETWORKMANAGER, 2), (IFUPDOWN, 2)])
def test_a_handover_is_each_file_as_a_change_then_the_manager_reads_them(manager, files):
    t = topo("auto")
    d = planner.desire(t, t.hosts["node1"])
    host_files = HostFiles(texts={"/etc/network/interfaces": INTERFACES})
    p = planner.diff(d, replace(from_nothing(d), managers=managed(manager), files=host_files))
    assert not p.blockers
    ch = handover_changes(p)
    up = ("link:eth1", (NlSetLink("eth1", up=True),))
    if manager == NETWORKMANAGER:
        # NetworkManager lets the NIC go, taking it down; the trunk is up again before the port asks for its address.
        assert [(c.resource, c.ops) for c in ch[-3:]] == [
            ("manager:networkmanager", (RunProgram(("nmcli", "general", "reload", "conf")),)), up,
            ("manager:networkmanager", (RunProgram(("nmcli", "connection", "load", "/etc/NetworkManager/system-connections/ovsnet-seed-mgmt0.nmconnection")),
                                        RunProgram(("nmcli", "connection", "up", "uuid", networkmanager.connection_uuid(STATIC)))))]
        ch = ch[:-3] + ch[-1:]
    else:
        # Last, the trunk is brought up again.
        assert (ch[-1].resource, ch[-1].ops) == up
        ch = ch[:-1]
    assert [c.action for c in ch] == [Action.CREATE if not c.resource.endswith("/interfaces") else Action.MODIFY for c in ch[:-1]] + [Action.MODIFY]
    assert len(ch) == files + 1 and all(c.resource.startswith("file:/etc/") for c in ch[:-1]) and ch[-1].resource == f"manager:{manager}"
    for c in ch[:-1]:
        (op,) = c.ops
        assert isinstance(op, WriteFile) and c.resource == f"file:{op.path}" and op.text is not None and MARK in op.text
        assert c.undo[0] == WriteFile(op.path, host_files.text(op.path))  # back as it was: absent, or the user's bytes
    # A rollback puts every file back first, then the manager reads them (the first change's undo runs last).
    assert all(isinstance(o, RunProgram) for o in ch[0].undo[1:]) and (len(ch[0].undo) > 1 or manager == IFUPDOWN)
    assert all(len(c.undo) == 1 for c in ch[1:-1])
    assert all(isinstance(o, (RunProgram, DhclientRun)) for o in ch[-1].ops)
    # A rollback takes away what the manager keeps about the port (ifup's state file), as down does.
    assert ch[-1].undo == ((WriteFile("/run/network/ifstate.mgmt0", None),) if manager == IFUPDOWN else ())
    saved = p.keep["handover"]
    assert saved.manager == manager and dict(saved.files) == {c.resource[5:]: host_files.text(c.resource[5:]) for c in ch[:-1]}
    # The record survives its JSON form.
    kind = Handovers()
    assert kind.record_from_json(kind.record_to_json(saved)) == saved
    assert "after the move" not in " ".join(p.facts)


def converged(manager: str, edit: dict[str, str | None] | None = None):
    """node1 after a handover: the files as ovsnet wrote them (then `edit`), the record, the NIC unmanaged."""
    t = topo(manager)
    d = planner.desire(t, t.hosts["node1"])
    first = planner.diff(d, replace(from_nothing(d), managers=managed(manager), files=HostFiles(texts={"/etc/network/interfaces": INTERFACES})))
    written = {op.path: op.text for c in handover_changes(first) for op in c.ops if isinstance(op, WriteFile)}
    assert [c.resource for c in handover_changes(first)][-2:] == ([f"manager:{manager}", "link:eth1"] if manager != NETWORKMANAGER
                                                                    else ["link:eth1", f"manager:{manager}"])
    written.update(edit or {})
    cur = replace(applied(t, "node1"), files=HostFiles(texts=written))
    return d, cur, first.keep["handover"], written


@pytest.mark.parametrize("manager", [NETWORKD, NETWORKMANAGER, IFUPDOWN])
def test_after_the_handover_the_plan_is_empty_and_an_edited_or_removed_file_is_drift(manager):
    d, cur, saved, written = converged(manager)
    p = planner.diff(d, cur, {"handover": saved})
    assert handover_changes(p) == [] and not p.blockers
    path = sorted(written)[-1]
    for edited in ("# edited by hand\n", None):
        _, cur2, _, _ = converged(manager, {path: edited})
        ch = handover_changes(planner.diff(d, cur2, {"handover": saved}))
        assert [c.resource for c in ch] == [f"file:{path}"] + ([f"manager:{manager}", "link:eth1"] if manager != NETWORKMANAGER
                                                               else [f"manager:{manager}", "link:eth1", f"manager:{manager}"])
        assert ch[0].action is (Action.CREATE if edited is None else Action.MODIFY) and ch[0].ops == (WriteFile(path, written[path], ch[0].ops[0].mode),)


def test_down_writes_the_users_files_back_byte_for_byte_and_removes_ovsnets():
    d, cur, saved, written = converged(IFUPDOWN)
    state = "/run/network/ifstate.mgmt0"
    cur = replace(cur, files=HostFiles(texts={**written, state: "mgmt0\n"}))
    p = planner.teardown(d, cur, {"handover": saved})
    ch = handover_changes(p)
    ops = {c.resource: c.ops for c in ch}
    assert ops["file:/etc/network/interfaces"] == (WriteFile("/etc/network/interfaces", INTERFACES),)
    assert ops["file:/etc/network/interfaces.d/ovsnet-seed-mgmt0"] == (WriteFile("/etc/network/interfaces.d/ovsnet-seed-mgmt0", None),)
    assert ops[f"file:{state}"] == (WriteFile(state, None),)
    assert ch[-1].resource == "manager:ifupdown" and ch[-1].action is Action.RESTORE
    # Down runs the handover after the NIC has its addresses back, before OVS lets the NIC go.
    order = [c.phase for c in p.changes]
    assert order.index(Phase.UPLINK) < order.index(Phase.HANDOVER) < order.index(Phase.OVSDB)


def test_at_boot_the_port_is_left_to_the_manager_until_it_has_the_address():
    d, cur, saved, _ = converged(NETWORKD)
    linux = cur.linux
    bare = replace(linux, addresses=tuple(a for a in linux.addresses if a.ifname != "mgmt0"),
                   routes=tuple(r for r in linux.routes if r.ifname != "mgmt0"))
    p = planner.diff(d, replace(cur, linux=bare), {"handover": saved})
    assert not [c for c in p.changes if c.phase is Phase.UPLINK] and not p.blockers
    assert [(h.resource, h.message) for h in p.health] == [
        ("link:mgmt0", "mgmt0 holds none of the host's addresses yet: systemd-networkd configures it (handed over from eth1)")]
    # Without the handover's record ovsnet puts them there itself, as before.
    assert [c.resource for c in planner.diff(d, replace(cur, linux=bare)).changes if c.phase is Phase.UPLINK][:2] == \
        ["address:mgmt0/192.168.10.11/24", "route:default"]
    # The NIC holding them (a manager that gave them back) is moved as ever.
    nic = replace(bare, addresses=bare.addresses + (Address("eth1", "192.168.10.11/24"),),
                  routes=bare.routes + (Route("default", "eth1", "192.168.10.1", 0, "static"),))
    assert any(c.resource == "address:eth1/192.168.10.11/24" for c in planner.diff(d, replace(cur, linux=nic), {"handover": saved}).changes)


def test_the_record_rejects_malformed_files():
    with pytest.raises(ValueError, match=r"handover files must be a list of \[path, text or null\]"):
        Handovers().record_from_json({"manager": "networkd", "nic": "eth1", "port": "mgmt0", "files": [["/etc/x", 3]]})
    assert Handovers().record_from_json({"manager": "dhclient", "nic": "eth1", "port": "mgmt0"}) == SavedHandover("dhclient", "eth1", "mgmt0")


# --- the backend ----------------------------------------------------------------------------------


def test_files_are_written_whole_with_their_mode_and_removed(tmp_path):
    host = ManagerHost(str(tmp_path), None)
    WriteFile("/etc/NetworkManager/system-connections/a.nmconnection", "[connection]\n", 0o600).run(host)
    p = tmp_path / "etc/NetworkManager/system-connections/a.nmconnection"
    assert p.read_text() == "[connection]\n" and stat.S_IMODE(p.stat().st_mode) == 0o600
    user = tmp_path / "etc/network/interfaces"
    user.parent.mkdir(parents=True)
    user.write_text("old\n")
    os.chmod(user, 0o640)
    WriteFile("/etc/network/interfaces", "new\n").run(host)  # mode None: as the file was
    assert user.read_text() == "new\n" and stat.S_IMODE(user.stat().st_mode) == 0o640
    WriteFile("/etc/NetworkManager/system-connections/a.nmconnection", None).run(host)
    assert not p.exists() and sorted(os.listdir(p.parent)) == []


def test_after_a_reboot_ovsnet_brings_the_trunk_up_that_the_manager_no_longer_does():
    """networkd leaves an Unmanaged=yes link down at boot, and OVS does not bring a system port up."""
    d, cur, saved, _ = converged(NETWORKD)
    links = dict(cur.linux.links)
    links["eth1"] = replace(links["eth1"], up=False)
    p = planner.diff(d, replace(cur, linux=replace(cur.linux, links=links)), {"handover": saved})
    (c,) = [c for c in p.changes if c.resource == "link:eth1"]
    assert all(c.phase is not Phase.HANDOVER for c in p.changes)
    assert (c.resource, c.phase, c.before, c.after) == ("link:eth1", Phase.LINUX, "down", "up")
    assert c.reason == "an uplink NIC carries frames only when up, and OVS does not bring a port's NIC up"
    # eth1 was up before ovsnet's first change (the manager ran it): down must not set it down
    assert "nic" not in p.keep


@pytest.mark.parametrize("module,unit,state", [
    (networkmanager, "NetworkManager.service", ("run/NetworkManager/devices/3", "[device]\nmanaged=true\n")),
    (networkd, "systemd-networkd.service", ("run/systemd/netif/links/3", "ADMIN_STATE=configured\nNETWORK_FILE=/etc/systemd/network/20-eth1.network\n")),
])
def test_a_stopped_managers_state_files_are_not_taken_for_it(tmp_path, module, unit, state):
    """Stopped during a boot, the daemon leaves its state files in /run (seen on the VMs:
    NetworkManager's said managed=true and hid ifupdown's NIC). systemd says whether it runs."""
    from ovsnet.current import Link

    path, text = state
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_text(text)
    nic = Link("eth1", 3)
    assert module.detect(tmp_path, nic) is not None  # no systemd: the state file counts
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    assert module.detect(tmp_path, nic) is None  # systemd, and the unit has neither invocation nor cgroup
    (tmp_path / "sys/fs/cgroup/system.slice" / unit).mkdir(parents=True)
    assert module.detect(tmp_path, nic) is not None
    (tmp_path / "sys/fs/cgroup/system.slice" / unit).rmdir()
    (tmp_path / "run/systemd/units").mkdir(parents=True)
    (tmp_path / "run/systemd/units" / f"invocation:{unit}").symlink_to("0123456789abcdef")
    assert module.detect(tmp_path, nic) is not None
