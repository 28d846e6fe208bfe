"""ovsnet up/down/plan/status against a real OVS, real netlink and real packets.

The "host" is a namespace with a private ovsdb-server + ovs-vswitchd; its
physical NIC eth1 is a veth whose peer sits in a "gateway" namespace that
answers on the management VLAN untagged, as an upstream switch port with a
native VLAN would. Results are checked with independent tools (ovs-vsctl,
ip, bridge, ping), never only through ovsnet's own readers.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time

import pytest

from ovsnet import apply
from ovsnet.errors import RefusedError
from ovsnet.topology import check
from ovsnet.topology.load import parse
from tests.support.commands import ns_json, sh
from tests.support.topologies import as_template, node1

pytestmark = pytest.mark.root

# The seed's node1 (lab_host, in conftest.py, is that host before ovsnet);
# tests vary the gateway and the VLAN of br-db.
TOPOLOGY = as_template(node1("t{tag}", gateway="{gateway}", db_vlan="{db_vlan}"), "tag", "gateway", "db_vlan")


def topo(tag: str, gateway: str = "192.168.10.1", db_vlan: str = "db"):
    return check(parse(TOPOLOGY.format(tag=tag, gateway=gateway, db_vlan=db_vlan), "test.toml"))


def ping(ns: str, addr: str, count: int = 1) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", str(count), "-W", "1", "-i", "0.2", addr], capture_output=True).returncode == 0


def snapshot(h) -> dict:
    return {
        "links": sorted((l["ifname"], l.get("master"), l.get("mtu")) for l in ns_json(h.ns, "-d", "link")),
        "addrs": sorted((a["ifname"], i["local"]) for a in ns_json(h.ns, "addr") for i in a.get("addr_info", []) if i.get("scope") != "link"),
        "routes": sorted(json.dumps(r, sort_keys=True) for r in ns_json(h.ns, "route")),
        "ovs": h.vsctl("show").replace(h.vsctl("get", "Open_vSwitch", ".", "_uuid"), ""),
    }


def test_up_from_nothing_then_again_then_down(lab_host):
    h = lab_host
    checked = topo(h.tag)
    before = snapshot(h)
    assert ping(h.ns, "192.168.10.1")

    result = apply.up(checked, "node1", h.target)
    assert result.applied

    # OVS, as an independent client sees it.
    assert h.vsctl("get", "Bridge", "br-ovs", "datapath_type") == "netdev"
    assert h.vsctl("get", "Port", "eth1", "vlan_mode") == "native-untagged"
    assert h.vsctl("get", "Port", "eth1", "tag") == "10"
    assert h.vsctl("get", "Port", "eth1", "trunks") == "[10, 100, 200]"
    assert h.vsctl("get", "Port", "ovs-br-web", "tag") == "100"
    assert h.vsctl("get", "Port", "ovs-br-db", "tag") == "200"
    assert h.vsctl("get", "Port", "mgmt0", "tag") == "10"
    assert h.vsctl("get", "Interface", "mgmt0", "type") == "internal"
    assert f"ovsnet-topology=t{h.tag}" in h.vsctl("get", "Port", "ovs-br-web", "external_ids")
    # Linux side, as ip and bridge see it.
    links = {l["ifname"]: l for l in ns_json(h.ns, "-d", "link")}
    assert links["lnx-br-web"]["master"] == "br-web" and links["lnx-br-db"]["master"] == "br-db"
    assert links["br-web"]["ifalias"].startswith("ovsnet:")
    addrs = {(a["ifname"], i["local"]) for a in ns_json(h.ns, "addr") for i in a.get("addr_info", [])}
    assert ("mgmt0", "192.168.10.11") in addrs and ("eth1", "192.168.10.11") not in addrs
    default = [r for r in ns_json(h.ns, "route") if r["dst"] == "default"]
    assert default == [dict(default[0], dev="mgmt0", gateway="192.168.10.1")]
    assert "nameserver 192.168.10.1" in h.resolv.read_text() and "search example.test" in h.resolv.read_text()
    # Real packets: the host still reaches its gateway, now through OVS.
    assert ping(h.ns, "192.168.10.1")
    assert ping(h.gw, "192.168.10.11")

    again = apply.up(checked, "node1", h.target)
    assert again.applied == () and again.plan.empty
    assert apply.drift(checked, "node1", h.target).empty

    apply.down(checked, "node1", h.target)
    after = snapshot(h)
    assert after["links"] == before["links"]
    assert after["addrs"] == before["addrs"]
    assert after["routes"] == before["routes"]
    assert "br-ovs" not in h.vsctl("list-br")
    assert "nameserver 9.9.9.9" in h.resolv.read_text()
    assert ping(h.ns, "192.168.10.1")


def test_edit_changes_only_what_the_edit_touched(lab_host):
    h = lab_host
    apply.up(topo(h.tag), "node1", h.target)
    uuid_web = h.vsctl("get", "Port", "ovs-br-web", "_uuid")
    edited = topo(h.tag, db_vlan="web")  # br-db moves to VLAN 100
    p = apply.plan_live(edited, "node1", h.target)
    assert [c.resource for c in p.changes] == ["port:br-ovs/ovs-br-db"]
    apply.up(edited, "node1", h.target)
    assert h.vsctl("get", "Port", "ovs-br-db", "tag") == "100"
    assert h.vsctl("get", "Port", "ovs-br-web", "_uuid") == uuid_web
    apply.down(edited, "node1", h.target)


def test_drift_is_reported_and_repaired(lab_host):
    h = lab_host
    checked = topo(h.tag)
    apply.up(checked, "node1", h.target)
    h.vsctl("set", "Port", "ovs-br-web", "tag=200")
    h.vsctl("set", "Port", "eth1", "trunks=10,100")
    sh("ip", "-n", h.ns, "link", "del", "ovs-br-db")
    sh("ip", "-n", h.ns, "addr", "del", "192.168.10.11/24", "dev", "mgmt0")
    p = apply.drift(checked, "node1", h.target)
    resources = {c.resource for c in p.changes}
    assert {"port:br-ovs/ovs-br-web", "port:br-ovs/eth1", "veth:ovs-br-db/lnx-br-db", "address:mgmt0/192.168.10.11/24"} <= resources
    out = subprocess.run([".venv/bin/ovsnet", "status", "-", "--host", "node1"], capture_output=True, text=True)
    assert out.returncode == 2  # "-" is not a file: a clear error, not a traceback
    assert "Traceback" not in out.stderr
    apply.up(checked, "node1", h.target)
    assert apply.drift(checked, "node1", h.target).empty
    assert h.vsctl("get", "Port", "ovs-br-web", "tag") == "100"
    apply.down(checked, "node1", h.target)


def test_foreign_objects_are_refused_and_survive(lab_host):
    h = lab_host
    checked = topo(h.tag)
    h.vsctl("add-br", "br-foreign", "--", "set", "bridge", "br-foreign", "datapath_type=netdev")
    sh("ip", "-n", h.ns, "link", "add", "br-web", "type", "bridge")  # same name as ours, not ours
    before = snapshot(h)
    with pytest.raises(RefusedError, match="br-web"):
        apply.up(checked, "node1", h.target)
    assert snapshot(h) == before  # refused before touching anything
    sh("ip", "-n", h.ns, "link", "del", "br-web")
    apply.up(checked, "node1", h.target)
    apply.down(checked, "node1", h.target)
    assert "br-foreign" in h.vsctl("list-br")


def test_adopt_takes_over_a_foreign_bridge(lab_host):
    h = lab_host
    checked = topo(h.tag)
    h.vsctl("add-br", "br-ovs", "--", "set", "bridge", "br-ovs", "datapath_type=netdev")
    with pytest.raises(RefusedError, match="br-ovs"):
        apply.up(checked, "node1", h.target)
    apply.up(checked, "node1", h.target, apply.UpOptions(adopt=True))
    assert f"ovsnet-topology=t{h.tag}" in h.vsctl("get", "Bridge", "br-ovs", "external_ids")
    apply.down(checked, "node1", h.target)


def test_uplink_move_keeps_the_host_reachable(lab_host):
    """A peer pinging every 50 ms loses nothing while the address moves, and a TCP connection survives.

    The management port takes the NIC's MAC: the peer's ARP entry stays right,
    so nothing waits for ARP to notice the move.
    """
    h = lab_host
    checked = topo(h.tag)
    eth1_mac = json.loads(sh("ip", "-n", h.ns, "-j", "link", "show", "dev", "eth1"))[0]["address"]
    log = h.target.state_dir + ".ping"
    pinger = subprocess.Popen(["ip", "netns", "exec", h.gw, "ping", "-n", "-i", "0.05", "-W", "5", "192.168.10.11"],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)
    # A TCP connection across the move: a listener in the host, a client in the gateway.
    server = subprocess.Popen(["ip", "netns", "exec", h.ns, "python3", "-c", TCP_ECHO], stdout=subprocess.PIPE, text=True)
    client = None
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "listening"
        client = subprocess.Popen(["ip", "netns", "exec", h.gw, "python3", "-c", TCP_CLIENT], stdout=subprocess.PIPE, text=True)
        assert client.stdout is not None
        # The connection is up and echoing before the move (however long python takes to start).
        assert [client.stdout.readline().strip() for _ in range(3)] == ["ok"] * 3
        time.sleep(0.5)
        apply.up(checked, "node1", h.target)
        time.sleep(1.0)
    finally:
        pinger.send_signal(signal.SIGINT)
        pinger.wait(timeout=10)
    mgmt0_mac = json.loads(sh("ip", "-n", h.ns, "-j", "link", "show", "dev", "mgmt0"))[0]["address"]
    assert mgmt0_mac == eth1_mac
    text = open(log).read()
    sent, received = (int(x) for x in re.search(r"(\d+) packets transmitted, (\d+) received", text).groups())
    assert sent >= 30, text
    assert sent - received == 0, f"lost {sent - received} of {sent}: {text[-300:]}"
    # The client has echoed a line every 100 ms through the move: its last answers are recent.
    assert client is not None
    client.terminate()
    out, _ = client.communicate(timeout=10)
    server.terminate()
    server.wait(timeout=10)
    echoes = out.split()
    # After the first three: the half second before the move, the move, the second after it
    # (one echo per 100 ms when idle; fewer on a loaded machine, never none, never "bad").
    assert len(echoes) >= 5 and set(echoes) == {"ok"}, out[-200:]

    # And back: the NIC has kept its MAC all along, so `down` costs peers nothing either.
    pinger = subprocess.Popen(["ip", "netns", "exec", h.gw, "ping", "-n", "-i", "0.05", "-W", "5", "192.168.10.11"],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        time.sleep(1.0)
        apply.down(checked, "node1", h.target)
        time.sleep(1.0)
    finally:
        pinger.send_signal(signal.SIGINT)
        pinger.wait(timeout=10)
    text = open(log).read()
    sent, received = (int(x) for x in re.search(r"(\d+) packets transmitted, (\d+) received", text).groups())
    assert sent >= 30, text
    assert sent - received == 0, f"down: lost {sent - received} of {sent}: {text[-300:]}"


# One line out, the same line back, forever: the TCP connection a move must not break.
TCP_ECHO = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.168.10.11", 7007)); s.listen(1); print("listening", flush=True)
c, _ = s.accept(); f = c.makefile("rw")
for line in f:
    f.write(line); f.flush()
"""
TCP_CLIENT = r"""
import socket, time
c = socket.create_connection(("192.168.10.11", 7007), timeout=3); f = c.makefile("rw")
while True:
    f.write("x\n"); f.flush()
    print("ok" if f.readline().strip() == "x" else "bad", flush=True)
    time.sleep(0.1)
"""


def test_unreachable_gateway_rolls_back_by_itself(lab_host):
    h = lab_host
    before = snapshot(h)
    # The gateway the file names does not exist: after the move nobody answers.
    checked = topo(h.tag, gateway="192.168.10.99")
    sh("ip", "-n", h.ns, "route", "replace", "default", "via", "192.168.10.99", "dev", "eth1")
    before = snapshot(h)
    with pytest.raises(apply.ApplyFailed, match="did not answer") as err:
        apply.up(checked, "node1", h.target)
    assert "route:default" in err.value.undone
    assert snapshot(h) == before
    assert ping(h.ns, "192.168.10.1")


def test_failure_midway_rolls_back(lab_host):
    h = lab_host
    checked = topo(h.tag)
    before = snapshot(h)

    def boom(change):
        if change.resource == "route:default":
            raise RuntimeError("injected failure")

    with pytest.raises(apply.ApplyFailed, match="injected failure") as err:
        apply.up(checked, "node1", h.target, apply.UpOptions(after_change=boom))
    assert err.value.undone and not err.value.undo_errors
    assert snapshot(h) == before
    assert "br-ovs" not in h.vsctl("list-br")


def test_two_ups_at_once_one_waits_or_fails_clearly(lab_host):
    h = lab_host
    checked = topo(h.tag)
    results = []

    def run():
        try:
            apply.up(checked, "node1", h.target)
            results.append("ok")
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "ok" in results
    other = [r for r in results if r != "ok"]
    assert all("another ovsnet run" in str(e) for e in other), other
    assert apply.drift(checked, "node1", h.target).empty
    apply.down(checked, "node1", h.target)


def test_reboot_convergence(lab_host):
    """OVSDB keeps the bridge, the kernel forgets the Linux side: up again converges."""
    h = lab_host
    checked = topo(h.tag)
    apply.up(checked, "node1", h.target)
    for link in ("br-web", "br-db", "ovs-br-web", "ovs-br-db"):
        sh("ip", "-n", h.ns, "link", "del", link)
    assert not apply.drift(checked, "node1", h.target).empty
    apply.up(checked, "node1", h.target)
    assert apply.drift(checked, "node1", h.target).empty
    assert ping(h.ns, "192.168.10.1")
    apply.down(checked, "node1", h.target)


def test_ovs_vswitchd_stopped_times_out_and_leaves_nothing_half_changed(lab_host):
    """The transaction commits but is never applied: clear error, rolled back, host as before."""
    import dataclasses

    h = lab_host
    checked = topo(h.tag)
    before = snapshot(h)
    h.ovs.stop_vswitchd()
    try:
        target = dataclasses.replace(h.target, ovs_timeout=2.0)
        with pytest.raises(apply.ApplyFailed, match="ovs-vswitchd") as err:
            apply.up(checked, "node1", target)
        assert err.value.exit_code == 4
        assert "br-ovs" not in sh("ovs-vsctl", f"--db={h.ovs.remote}", "--no-wait", "list-br")
        after = snapshot_linux(h)
        assert after == {k: before[k] for k in after}
    finally:
        h.ovs.start_vswitchd()


def snapshot_linux(h) -> dict:
    full = {
        "links": sorted((l["ifname"], l.get("master"), l.get("mtu")) for l in ns_json(h.ns, "-d", "link")),
        "addrs": sorted((a["ifname"], i["local"]) for a in ns_json(h.ns, "addr") for i in a.get("addr_info", []) if i.get("scope") != "link"),
        "routes": sorted(json.dumps(r, sort_keys=True) for r in ns_json(h.ns, "route")),
    }
    return full


def test_cli_plan_up_status_down(lab_host, tmp_path):
    """The commands a person runs, through the real CLI, exit codes and JSON included."""
    h = lab_host
    topo_file = tmp_path / "t.toml"
    topo_file.write_text(TOPOLOGY.format(tag=h.tag, gateway="192.168.10.1", db_vlan="db"))
    where = ["--host", "node1", "--db", h.ovs.remote, "--netns", h.ns, "--state-dir", h.target.state_dir, "--resolv-conf", str(h.resolv)]

    def ovsnet(*args: str) -> subprocess.CompletedProcess:
        out = subprocess.run([".venv/bin/ovsnet", *args], capture_output=True, text=True, timeout=120)
        assert "Traceback" not in out.stderr, out.stderr
        return out

    p = ovsnet("plan", str(topo_file), *where, "--json")
    assert p.returncode == 0, p.stderr
    plan = json.loads(p.stdout)
    assert plan["moves_uplink"] is True
    assert {"action": "create", "resource": "bridge:br-ovs"}.items() <= next(c for c in plan["changes"] if c["resource"] == "bridge:br-ovs").items()
    assert snapshot(h)["ovs"].count("Bridge") == 0  # plan changed nothing

    bad = ovsnet("up", str(topo_file), "--host", "node1", "--db", "unix:/nonexistent/db.sock", "--netns", h.ns, "--state-dir", h.target.state_dir, "--resolv-conf", str(h.resolv))
    assert bad.returncode == 3 and "cannot reach ovsdb-server" in bad.stderr

    up = ovsnet("up", str(topo_file), *where, "--json")
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["applied"] == len(plan["changes"])

    assert ovsnet("status", str(topo_file), *where).returncode == 0
    again = ovsnet("up", str(topo_file), *where)
    assert again.returncode == 0 and "nothing to change" in again.stdout

    h.vsctl("set", "Port", "ovs-br-web", "tag=200")
    st = ovsnet("status", str(topo_file), *where, "--json")
    assert st.returncode == 1
    body = json.loads(st.stdout)
    assert body["in_sync"] is False and [c["resource"] for c in body["changes"]] == ["port:br-ovs/ovs-br-web"]

    down = ovsnet("down", str(topo_file), *where)
    assert down.returncode == 0, down.stderr
    assert "br-ovs" not in h.vsctl("list-br")


def test_docker_unreachable_applies_the_rest_unless_required(lab_host):
    """No Docker: networks are left out with a note; docker_required refuses instead."""
    import dataclasses

    h = lab_host
    text = TOPOLOGY.format(tag=h.tag, gateway="192.168.10.1", db_vlan="db").replace(
        'bridge = "br-web"\nvlan = "web"', 'bridge = "br-web"\nvlan = "web"\nnetwork = "web"')
    target = dataclasses.replace(h.target, docker_host="unix:///nonexistent/docker.sock")
    checked = check(parse(text, "test.toml"))
    result = apply.up(checked, "node1", target)
    assert any("Docker networks web are left for a later run" in n for n in result.plan.notes), result.plan.notes
    assert any("/nonexistent/docker.sock" in n for n in result.plan.notes), result.plan.notes
    assert "br-ovs" in h.vsctl("list-br")
    apply.down(checked, "node1", target)

    required = check(parse(text.replace("[hosts.node1]\n", "[hosts.node1]\ndocker_required = true\n"), "test.toml"))
    before = snapshot(h)
    with pytest.raises(RefusedError, match="docker_required"):
        apply.up(required, "node1", target)
    assert snapshot(h) == before


def test_route_lookup_used_by_the_ssh_guard(lab_host):
    """The guard asks the kernel which NIC reaches the SSH client: eth1 before up, mgmt0 after."""
    from ovsnet.backends.netlink import Netlink

    h = lab_host
    with Netlink(h.ns) as nl:
        assert nl.route_to("203.0.113.9") == "eth1"  # via the default route
    apply.up(topo(h.tag), "node1", h.target)
    with Netlink(h.ns) as nl:
        assert nl.route_to("203.0.113.9") == "mgmt0"
    apply.down(topo(h.tag), "node1", h.target)
