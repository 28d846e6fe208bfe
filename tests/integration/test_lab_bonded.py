"""topologies/bonded.toml in the lab: two-NIC OVS bonds with LACP against a switch bonding its side,
real negotiation, verify, a member cable cut during a running ping, and down restoring the members.

The lab's hosts are fresh machines first (address and default route on a
member: eth1, the bond's first, on node1; eth2 on node2, named by
management.from_nic); `ovsnet up`'s own code then makes the bond, moves the
address off that member with the gateway check, and `down` puts eth1 and eth2
back as they were. The file is the committed one with the hosts' datapath set
to netdev (the lab's), so that the real CLI's `status` needs no override.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ovsnet import apply
from ovsnet.backends.ovsdb import Ovsdb
from ovsnet.kinds.uplink import GatewayAnswers
from ovsnet.lab import endpoints, run, teardown
from ovsnet.lab import names as lab_names
from ovsnet.lab import netns as netns_mod
from ovsnet.lab.names import LAB_OVS_TIMEOUT
from ovsnet.lab.review import review
from ovsnet.render.verify import render_matrix
from ovsnet.topology import load_checked
from ovsnet.verify.lab import verify_lab
from tests.support.commands import ns_json

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
HOSTS = ("node1", "node2")
HOLDER = {"node1": "eth1", "node2": "eth2"}  # the member holding the host's address before ovsnet
MEMBERS = ("eth1", "eth2")
LACP_WAIT = 20.0  # lacp_time fast: PDUs every second; a loaded machine needs a few


def members_state(ns: str) -> dict:
    """What down must put back on the bond's members: addresses, MTU, master, up/down, MAC; and the routes."""
    links = {lk["ifname"]: lk for lk in ns_json(ns, "-d", "link")}
    addrs = {a["ifname"]: sorted((i["local"], i["prefixlen"]) for i in a.get("addr_info", []) if i.get("scope") != "link")
             for a in ns_json(ns, "addr")}
    out = {m: (addrs.get(m, []), links[m]["mtu"], links[m].get("master"), "UP" in links[m]["flags"], links[m]["address"]) for m in MEMBERS}
    out["routes"] = sorted(json.dumps(r, sort_keys=True) for r in ns_json(ns, "route"))
    return out


def interfaces(remote: str, port: str) -> dict:
    with Ovsdb(remote, timeout=LAB_OVS_TIMEOUT) as db:
        p = db.read().ports[port]
    return {i.name: (i.link_state, i.lacp_current) for i in p.interfaces}


def wait_for(what, seconds: float):
    deadline = time.monotonic() + seconds
    while True:
        got = what()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def ovsnet(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([str(ROOT / ".venv/bin/ovsnet"), *args], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def ansible_status(bl, host: str, tmp: Path) -> dict:
    """The Ansible module ovsnet_status run on this machine against a lab host: its result."""
    t = bl.targets[host]
    args = f"topology={bl.file} host={host} db={t.ovsdb} netns={t.netns} state_dir={t.state_dir} resolv_conf={t.resolv_conf}"
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible" / "ansible.cfg"), "ANSIBLE_HOME": str(tmp / "home"),
           "ANSIBLE_LOCAL_TEMP": str(tmp / "tmp"), "NO_COLOR": "1"}
    out = subprocess.run([str(ROOT / ".venv/bin/ansible"), "localhost", "-o", "-c", "local", "-i", "localhost,",
                          "-e", f"ansible_python_interpreter={ROOT / '.venv/bin/python'}", "-m", "ovsnet.fleet.ovsnet_status", "-a", args],
                         capture_output=True, text=True, env=env, cwd=ROOT / "ansible", timeout=300)
    line = next((x for x in out.stdout.splitlines() if x.startswith("localhost | ")), "")
    assert " => " in line, out.stdout[-2000:] + out.stderr[-2000:]
    return json.loads(line.split(" => ", 1)[1])


def status(bl, host: str) -> subprocess.CompletedProcess:
    t = bl.targets[host]
    return ovsnet("status", str(bl.file), "--host", host, "--db", t.ovsdb, "--netns", t.netns, "--state-dir", t.state_dir,
                  "--resolv-conf", t.resolv_conf, "--json")


class BondedLab:
    def __init__(self, tmp: Path):
        self.file = tmp / "bonded.toml"
        text = (ROOT / "topologies" / "bonded.toml").read_text().replace('datapath = "system"', 'datapath = "netdev"')
        self.file.write_text(text.replace("[hosts.node2.management]\n", '[hosts.node2.management]\nfrom_nic = "eth2"\n'))
        self.checked = load_checked(self.file)
        self.prefix = netns_mod.unique_prefix("obd")[:7]
        self.lab_dir = tmp / "lab"
        self.lab = run.up(self.checked, self.prefix, self.lab_dir, configure=False)
        self.targets = lab_names.targets(self.lab)
        self.before = {h: members_state(self.lab.names.host_ns(h)) for h in HOSTS}
        self.up = {h: apply.up(self.checked, h, self.targets[h]) for h in HOSTS}
        endpoints.attach_endpoints(self.lab)

    def host_remote(self, host: str) -> str:
        return self.lab.ovs_of(host).remote

    @property
    def switch_remote(self) -> str:
        return self.lab.ovs[self.lab.names.switch_ns].remote


@pytest.fixture(scope="module")
def bonded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("obd")
    bl = None
    try:
        bl = BondedLab(tmp)
        yield bl
    finally:
        prefix = bl.prefix if bl else None
        if prefix:
            teardown.destroy(prefix, tmp / "lab")
            assert not netns_mod.listed(f"{prefix}-")


def test_up_made_the_bonds_and_moved_the_address_off_a_member_with_the_gateway_check(bonded):
    for host in HOSTS:
        result = bonded.up[host]
        assert "port:br-ovs/bond0" in [c.resource for c in result.applied]
        holder = HOLDER[host]
        assert bonded.before[host][holder][0] == [(f"192.168.10.1{host[-1]}", 24)]
        assert result.plan.moves_from == (holder,)
        assert any(isinstance(c, GatewayAnswers) and c.iface == "mgmt0" for c in result.plan.checks)
        ns = bonded.lab.names.host_ns(host)
        addrs = {a["ifname"]: [i["local"] for i in a.get("addr_info", []) if i.get("scope") != "link"] for a in ns_json(ns, "addr")}
        assert addrs[holder] == [] and addrs["mgmt0"] == [f"192.168.10.1{host[-1]}"]
        # The management port took the holder's MAC: peers' ARP entries stay right.
        macs = {lk["ifname"]: lk["address"] for lk in ns_json(ns, "link")}
        assert macs["mgmt0"] == macs[holder]
        with Ovsdb(bonded.host_remote(host), timeout=LAB_OVS_TIMEOUT) as db:
            port = db.read().ports["bond0"]
        assert sorted(i.name for i in port.interfaces) == ["eth1", "eth2"]
        assert (port.lacp, port.other_config.get("lacp-time")) == ("active", "fast")
        assert port.bond_mode == ("balance-tcp" if host == "node1" else "balance-slb")


def test_lacp_negotiates_on_both_sides(bonded):
    for host, lag in (("node1", "h1-bond0"), ("node2", "h2-bond0")):
        host_side = wait_for(lambda h=host: (s := interfaces(bonded.host_remote(h), "bond0"))
                             and all(v == ("up", True) for v in s.values()) and s, LACP_WAIT)
        assert host_side == {"eth1": ("up", True), "eth2": ("up", True)}, host
        switch_side = interfaces(bonded.switch_remote, lag)
        assert sorted(switch_side) == [f"h{host[-1]}-eth1", f"h{host[-1]}-eth2"]
        assert all(v == ("up", True) for v in switch_side.values()), switch_side
        st = status(bonded, host)
        assert st.returncode == 0, st.stdout + st.stderr
        body = json.loads(st.stdout)
        assert body["in_sync"] is True and body["health"] == []
        assert "bond bond0: 2/2 members up, LACP negotiated on 2/2" in body["facts"]


def test_verify_lab_passes_over_the_bonds(bonded):
    report = verify_lab(bonded.checked, bonded.lab)
    assert report.ok, render_matrix(report)
    assert report.probed == len(report.pairs) > 0
    trunks = [c for c in report.captures if c.role == "trunk"]
    assert sorted(c.interface for c in trunks) == ["h1-eth1", "h1-eth2", "h2-eth1", "h2-eth2"]


ARP_PROBE = r"""
import socket, struct, sys, time
port, sender_mac, target_ip = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), socket.inet_aton(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((port, 0))
arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, sender_mac, socket.inet_aton("192.168.10.250"), b"\0" * 6, target_ip)
for _ in range(3):
    s.send(b"\xff" * 6 + sender_mac + b"\x08\x06" + arp)
    time.sleep(0.3)
"""


def test_only_the_management_port_answers_arp_for_the_hosts_address(bonded, tmp_path):
    """An ARP request for node1's address, sent to its kernel on each member cable, is answered by one MAC only:
    the management port's (the lab's hosts answer ARP only on the interface holding the address, as a host on
    the kernel datapath does; a reply with another member's MAC made peers lose the host)."""
    sw = bonded.lab.names.switch_ns
    mgmt = {lk["ifname"]: lk["address"] for lk in ns_json(bonded.lab.names.host_ns("node1"), "link")}["mgmt0"]
    seen: set[str] = set()
    for member in MEMBERS:
        port = f"h1-{member}"
        log = tmp_path / f"{port}.arp"
        dump = subprocess.Popen(["ip", "netns", "exec", sw, "tcpdump", "-l", "-n", "-e", "-i", port, "arp and arp[6:2] == 2"],
                                stdout=log.open("w"), stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)
            subprocess.run(["ip", "netns", "exec", sw, sys.executable, "-c", ARP_PROBE, port, "02:00:00:00:0a:fa", "192.168.10.11"],
                           check=True, timeout=30)
            time.sleep(1.0)
        finally:
            dump.terminate()
            dump.wait(timeout=10)
        repliers = set(re.findall(r"^\S+ ([0-9a-f:]{17}) > ", log.read_text(), re.M))
        assert repliers <= {mgmt}, f"ARP for 192.168.10.11 sent on {member}'s cable answered by {repliers}, not only mgmt0's {mgmt}:\n{log.read_text()}"
        seen |= repliers
    assert seen == {mgmt}, "mgmt0 never answered (the replies come back over either member)"


def test_a_vlan_added_to_a_bond_converges_the_switchs_lag_in_place(bonded):
    """`lab up` on the built lab (#13): node1's bond and the switch's LAG facing it carry the new VLAN; nothing is recreated."""
    text = bonded.file.read_text()
    edited = text.replace("[router]", '[vlans.app]\nid = 300\nsubnet = "10.30.0.0/24"\n\n[router]', 1).replace(
        'lacp_time = "fast"\nvlans = ["mgmt", "web", "db"]', 'lacp_time = "fast"\nvlans = ["mgmt", "web", "db", "app"]', 1)
    assert edited.count('"app"') == 1

    def lag(column: str) -> str:
        return subprocess.run(["ovs-vsctl", f"--db={bonded.switch_remote}", "get", "Port", "h1-bond0", column],
                              capture_output=True, text=True, check=True).stdout.strip()

    uuids = (lag("_uuid"), lag("interfaces"))
    try:
        bonded.file.write_text(edited)
        r = review(load_checked(bonded.file), bonded.prefix, bonded.lab_dir)
        assert [c.line() for c in r.lab.changes] == [
            "modify  lab:switch-port:h1-bond0  trunk 10,100,200, native 10 untagged, LAG of h1-eth1, h1-eth2 (balance-tcp, lacp active)"
            " -> trunk 10,100,200,300, native 10 untagged, LAG of h1-eth1, h1-eth2 (balance-tcp, lacp active)"]
        assert [c.resource for c in r.hosts[0].plan.changes] == ["port:br-ovs/bond0"] and r.hosts[1].plan.empty
        done = run.lab_up(load_checked(bonded.file), bonded.prefix, bonded.lab_dir).converged
        assert {h.host: h.applied for h in done.hosts} == {"node1": 1, "node2": 0}
        assert lag("trunks") == "[10, 100, 200, 300]" and (lag("_uuid"), lag("interfaces")) == uuids
        assert review(load_checked(bonded.file), bonded.prefix, bonded.lab_dir).in_sync
    finally:
        bonded.file.write_text(text)
        run.lab_up(load_checked(bonded.file), bonded.prefix, bonded.lab_dir)
    assert lag("trunks") == "[10, 100, 200]"
    assert review(load_checked(bonded.file), bonded.prefix, bonded.lab_dir).in_sync


def rx_packets(ns: str, port: str) -> int:
    (link,) = ns_json(ns, "-s", "link", "show", port)
    return int(link["stats64"]["rx"]["packets"])


def test_a_member_cut_during_a_ping_loses_a_handful_and_status_reports_it(bonded, tmp_path):
    lab, sw = bonded.lab, bonded.lab.names.switch_ns
    argv = lab_names.exec_argv(lab, "web1", ["ping", "-n", "-i", "0.05", "-W", "1", "10.100.0.12"])
    ports = {m: lab.switch_ports[f"node1:{m}"] for m in MEMBERS}
    before = {m: rx_packets(sw, p) for m, p in ports.items()}
    pinger = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(2.0)
        # node1's bond sends this flow over one member (its hash): cut that one, on the switch side.
        grew = {m: rx_packets(sw, p) - before[m] for m, p in ports.items()}
        cut = max(grew, key=lambda m: grew[m])
        other = next(m for m in MEMBERS if m != cut)
        subprocess.run(["ip", "-n", sw, "link", "set", ports[cut], "down"], check=True)
        cut_at = rx_packets(sw, ports[other])
        time.sleep(4.0)
        carried = rx_packets(sw, ports[other]) - cut_at
    finally:
        pinger.send_signal(signal.SIGINT)
        out, _ = pinger.communicate(timeout=10)
    sent, received = (int(x) for x in re.search(r"(\d+) packets transmitted, (\d+) received", out).groups())
    lost = sent - received
    print(f"\nbond member cut: node1's {cut} (switch port {ports[cut]}) during a 50 ms ping web1 -> web2: "
          f"{sent} sent, {received} received, {lost} lost; {carried} frames on {other} after the cut")
    assert sent > 80
    assert lost <= 10, out[-800:]
    assert carried > 40  # the flow went on over the other member

    st = wait_for(lambda: (s := status(bonded, "node1")).returncode == 1 and s, 10.0)
    assert st and st.returncode == 1, st.stdout if st else "status stayed in sync"
    body = json.loads(st.stdout)
    assert body["in_sync"] is False and body["changes"] == []
    assert {"resource": "port:br-ovs/bond0", "message": f"bond0: member {cut} is down"} in body["health"]
    text = ovsnet("status", str(bonded.file), "--host", "node1", "--db", bonded.targets["node1"].ovsdb, "--netns",
                  bonded.targets["node1"].netns, "--state-dir", bonded.targets["node1"].state_dir, "--resolv-conf",
                  bonded.targets["node1"].resolv_conf)
    assert text.returncode == 1 and f"unhealthy bond0: member {cut} is down" in text.stdout
    # The Ansible module's facts say it too.
    facts = ansible_status(bonded, "node1", tmp_path)["ansible_facts"]["ovsnet"]
    assert (facts["in_sync"], facts["exit_status"], facts["drift"]) == (False, 1, [])
    assert facts["health"] == [{"resource": "port:br-ovs/bond0", "message": f"bond0: member {cut} is down"}]

    subprocess.run(["ip", "-n", sw, "link", "set", ports[cut], "up"], check=True)
    back = wait_for(lambda: status(bonded, "node1").returncode == 0, LACP_WAIT)
    assert back, status(bonded, "node1").stdout
    assert interfaces(bonded.host_remote("node1"), "bond0") == {"eth1": ("up", True), "eth2": ("up", True)}


def test_down_restores_the_members_exactly(bonded):
    for host in HOSTS:
        result = apply.down(bonded.checked, host, bonded.targets[host])
        assert result.applied
        assert members_state(bonded.lab.names.host_ns(host)) == bonded.before[host], host

