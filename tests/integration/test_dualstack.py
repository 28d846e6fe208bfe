"""Dual-stack VLANs (#12 item 3) against real OVS, real netlink, a real Docker engine and real packets.

topologies/dualstack.toml in the lab: containers on two hosts reach each
other over IPv6 (and IPv4) on the same VLAN, through the router across VLANs
where the router has an address in that family, and not where it has none;
no container address of one host's slices (either family) appears on another
host; `ovsnet verify --lab` passes in both families with the capture; the
Docker bridges hold no IPv6 address (Docker put the VLAN's router6 there).
Then the management move of a v4+v6 host (the IPv6 gateway checked by
neighbour discovery, seen on the wire) and `down` giving both families back
exactly, including the kernel's link-local addresses.

Every name starts with the run's prefix, `ods...`; every lab is destroyed,
pass or fail, and checked gone.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ovsnet import apply
from ovsnet.backends.netlink import Netlink
from ovsnet.errors import VerificationError
from ovsnet.lab import names as lab_names
from ovsnet.lab import netns, run, teardown
from ovsnet.topology import Checked, addressing, check, load_checked
from ovsnet.topology.load import parse
from tests.support.commands import ns_json, sh
from tests.support.dockerlab import docker_processes, missing_for_engine
from tests.support.labhost import namespaces

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
DUALSTACK = ROOT / "topologies" / "dualstack.toml"
OVSNET = [sys.executable, "-m", "ovsnet"]
IMAGE = "local/busybox:1"
PROCESS_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn")


def new_prefix() -> str:
    return netns.unique_prefix("ods")[:7]


@dataclass
class DualLab:
    checked: Checked
    lab: lab_names.Lab
    prefix: str
    clients: dict  # host -> docker.DockerClient of its lab dockerd


@pytest.fixture(scope="module")
def dlab():
    missing = missing_for_engine(("nsenter",))
    if missing:
        pytest.fail(f"the dual-stack lab needs a real engine and busybox: {missing}")
    import docker

    checked = load_checked(DUALSTACK)
    prefix = new_prefix()
    lab_dir = lab_names.default_lab_dir(prefix)
    clients: dict = {}
    try:
        lab = run.up(checked, prefix, docker=True)
        for host, target in lab_names.targets(lab).items():
            clients[host] = docker.DockerClient(base_url=target.docker_host, timeout=60)
        yield DualLab(checked, lab, prefix, clients)
    finally:
        for c in clients.values():
            c.close()
        teardown.destroy(prefix)
        assert netns.listed(f"{prefix}-") == []
        assert docker_processes(f"/{prefix}-") == []
        assert not lab_dir.exists()


@pytest.fixture(scope="module")
def containers(dlab):
    """One container per Docker network of each host (web and db on node1 and node2), removed at the end."""
    made = {}
    try:
        for host in ("node1", "node2"):
            for net in ("web", "db"):
                c = dlab.clients[host].containers.run(IMAGE, ["sleep", "600"], name=f"{dlab.prefix}-{net}-{host}",
                                                      network=net, detach=True, labels={"ods-test": dlab.prefix})
                c.reload()
                made[(net, host)] = c
        yield made
    finally:
        for c in made.values():
            c.remove(force=True)


def addresses_of(c, net: str) -> tuple[str, str]:
    """A container's IPv4 and IPv6 address on one network, as Docker's IPAM gave them."""
    attach = c.attrs["NetworkSettings"]["Networks"][net]
    return attach["IPAddress"], attach["GlobalIPv6Address"]


def reaches(c, address: str) -> bool:
    family = ["-6"] if ":" in address else []
    # busybox ping: two echoes, each waited for up to 2 s.
    code, _ = c.exec_run(["ping", *family, "-c", "2", "-W", "2", address])
    return code == 0


def reaches_again(c, address: str) -> bool:
    """A reply is conclusive, one silence under load is not: up to three tries."""
    return any(reaches(c, address) for _ in range(3))


# --- containers across hosts, both families ------------------------------------------------------


def test_containers_get_an_address_of_each_family_in_their_own_hosts_slices_only(dlab, containers):
    topo = dlab.checked.topology
    for (net, host), c in containers.items():
        v4, v6 = addresses_of(c, net)
        assert v4 and v6, f"{c.name}: {v4!r} {v6!r}"
        for version, addr in ((4, v4), (6, v6)):
            mine = addressing.family_slice(topo, host, net, version)
            assert mine is not None and ipaddress.ip_address(addr) in mine.network, f"{c.name} {addr} not in {mine}"
            for other in ("node1", "node2"):
                if other != host:
                    theirs = addressing.family_slice(topo, other, net, version)
                    assert ipaddress.ip_address(addr) not in theirs.network, f"{c.name} {addr} is in {other}'s slice {theirs.network}"


def test_no_address_of_one_hosts_slices_appears_on_another_host(dlab, containers):
    """Every container of every engine (probes included, if any ran): its addresses lie in its own host's slices."""
    topo = dlab.checked.topology
    slices = {(h, v, s.network.version): s.network for h in topo.hosts for v in topo.vlans for s in addressing.slices_of(topo, h, v)}
    seen = 0
    for host, client in dlab.clients.items():
        for c in client.containers.list(all=True):
            for net, attach in c.attrs["NetworkSettings"]["Networks"].items():
                for addr in (attach.get("IPAddress"), attach.get("GlobalIPv6Address")):
                    if not addr:
                        continue
                    ip = ipaddress.ip_address(addr)
                    holders = {h for (h, v, version), n in slices.items() if version == ip.version and ip in n}
                    assert holders == {host}, f"{c.name} on {host} holds {addr}, in the slices of {holders or 'no host'}"
                    seen += 1
    assert seen >= 8  # four containers, two families each


@pytest.mark.parametrize("family", [4, 6])
def test_same_vlan_across_hosts_routed_where_routed_and_blocked_where_not(dlab, containers, family):
    i = 0 if family == 4 else 1
    web1, web2 = containers[("web", "node1")], containers[("web", "node2")]
    db1, db2 = containers[("db", "node1")], containers[("db", "node2")]
    node2 = {4: "192.168.10.12", 6: "fd00:10::12"}[family]
    # Same VLAN, across both trunks and the switch.
    assert reaches_again(web1, addresses_of(web2, "web")[i])
    assert reaches_again(db2, addresses_of(db1, "db")[i])
    # web and mgmt are routed in both families: a web container reaches the other host's own address.
    assert reaches_again(web1, node2)
    # db has no router address in either family: nothing outside it, and nothing reaches it.
    assert not reaches(db1, node2)
    assert not reaches(web1, addresses_of(db2, "db")[i])
    assert not reaches(db1, addresses_of(web2, "web")[i])


def test_docker_bridges_hold_no_ipv6_address_and_the_hosts_are_in_sync(dlab):
    for host, target in lab_names.targets(dlab.lab).items():
        ns = dlab.lab.names.host_ns(host)
        for bridge in ("br-web", "br-db"):
            # Docker put router6 (or its own gateway) and fe80::1 there; ovsnet turned IPv6 off.
            assert not any(a.get("addr_info") for a in ns_json(ns, "-6", "addr", "show", "dev", bridge))
            assert sh("ip", "netns", "exec", ns, "cat", f"/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6").strip() == "1"
            assert not [r for r in ns_json(ns, "-6", "route") if r.get("dev") == bridge]
        assert apply.drift(dlab.checked, host, target).empty


def test_docker_putting_its_ipv6_gateway_back_is_drift_that_up_repairs(dlab):
    host, ns = "node2", dlab.lab.names.host_ns("node2")
    target = lab_names.targets(dlab.lab)[host]
    # What a restarted dockerd does to the bridge of an IPv6 network.
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.br-web.disable_ipv6=0")
    sh("ip", "-n", ns, "addr", "add", "fd00:100::1/64", "dev", "br-web", "nodad")
    drift = apply.drift(dlab.checked, host, target)
    assert [c.line() for c in drift.changes] == ["modify  link:br-web  IPv6 on -> IPv6 off"]
    assert "fd00:100::1/64" in drift.changes[0].reason
    # The sysctl is written by a thread inside the host's namespace: no process is started for it.
    started: list[str] = []
    watching = [True]
    sys.addaudithook(lambda event, args: started.append(event) if watching[0] and event.startswith(PROCESS_EVENTS) else None)
    subprocess.run(["true"], check=True)
    assert started, "the audit hook sees a process start"
    started.clear()
    try:
        apply.up(dlab.checked, host, target)
    finally:
        watching[0] = False
    assert started == []
    assert not any(a.get("addr_info") for a in ns_json(ns, "-6", "addr", "show", "dev", "br-web"))
    assert apply.drift(dlab.checked, host, target).empty


# --- verify, both families, with the capture --------------------------------------------------------


def test_verify_lab_passes_in_both_families_with_the_capture(dlab, containers):
    r = subprocess.run([*OVSNET, "verify", str(DUALSTACK), "--lab", "--prefix", dlab.prefix, "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    body = json.loads(r.stdout)
    assert body["ok"] and body["family"] == 4 and body["ipv6"]["family"] == 6
    # 10 stations a family (4 endpoints, 4 probe containers, 2 hosts): every ordered pair but a host to itself.
    assert body["probed"] == len(body["pairs"]) == 90
    assert body["ipv6"]["probed"] == len(body["ipv6"]["pairs"]) == 90
    assert all(":" in s["address"] for s in body["ipv6"]["stations"])
    # The probes hold an address of each family inside their host's slices.
    assert {p["name"] for p in body["ipv6"]["probes"]} == {"web@node1", "db@node1", "web@node2", "db@node2"}
    assert all(p["in_slice"] and p["slice"] for p in body["probes"] + body["ipv6"]["probes"])
    marks6 = {(p["src"], p["dst"]): p["mark"] for p in body["ipv6"]["pairs"]}
    assert marks6[("web1", "web2")] == "ok" and marks6[("web1", "node2")] == "R" and marks6[("db1", "node1")] == "--"
    assert body["findings"] == [] and body["mismatches"] == []
    trunks = [c for c in body["captures"] if c["role"] == "trunk"]
    assert len(trunks) == 2 and all(c["frames"] > 0 for c in trunks)


def test_verify_sees_ipv6_routing_break_in_the_ipv6_grid_only(dlab):
    """The router stops forwarding IPv6: the routed IPv6 pairs fail, IPv4 stays as it is."""
    from ovsnet.render.verify import render_matrix
    from ovsnet.verify.lab import verify_lab

    rt = dlab.lab.names.router_ns
    sh("ip", "netns", "exec", rt, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0")
    try:
        report = verify_lab(dlab.checked, dlab.lab, probes=False)
    finally:
        sh("ip", "netns", "exec", rt, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    assert report.ok is False and report.mismatches == (), render_matrix(report)
    assert report.ipv6 is not None
    broken = {(p.src, p.dst) for p in report.ipv6.mismatches}
    assert broken == {(a, b) for a in ("web1", "web2") for b in ("node1", "node2")} | {(b, a) for a in ("web1", "web2") for b in ("node1", "node2")}
    text = render_matrix(report)
    assert "IPv6:" in text and "MISMATCH (IPv6) web1 -> node1 (fd00:10::11)" in text
    assert text.splitlines()[-1].startswith("FAILED: 60 pairs probed (30 IPv4, 30 IPv6), 8 mismatches")


# --- the management move in both families, and down --------------------------------------------------


def host_state(ns: str) -> dict:
    """`ip -j addr` and `ip -j -4/-6 route` of the host: every address of every link, link-local ones
    included (the kernel's, never ovsnet's), with their flags, and every route of both families."""
    addrs = sorted(json.dumps({"ifname": a["ifname"], **i}, sort_keys=True) for a in ns_json(ns, "addr") for i in a.get("addr_info", []))
    routes = sorted(json.dumps(r, sort_keys=True) for fam in ("-4", "-6") for r in ns_json(ns, fam, "route"))
    return {"addrs": addrs, "routes": routes}


def settled(ns: str, timeout: float = 10.0) -> None:
    """Until no address is tentative: a real host's link-local addresses passed DAD long ago."""
    deadline = time.monotonic() + timeout
    while any(i.get("tentative") for a in ns_json(ns, "addr") for i in a.get("addr_info", [])):
        assert time.monotonic() < deadline, f"{ns}: addresses still tentative after {timeout:g} s"
        time.sleep(0.1)


def on(state: dict, ifname: str, family: str, scope: str) -> list[str]:
    return [a["local"] for a in map(json.loads, state["addrs"]) if a["ifname"] == ifname and a["family"] == family and a.get("scope") == scope]


@pytest.fixture
def fresh_lab():
    """The dual-stack lab without Docker, its hosts as fresh machines (addresses still on eth1)."""
    checked = load_checked(DUALSTACK)
    prefix = new_prefix()
    try:
        yield checked, run.up(checked, prefix, configure=False)
    finally:
        teardown.destroy(prefix)
        assert netns.listed(f"{prefix}-") == []


def capture(ns: str, iface: str) -> tuple[subprocess.Popen, Path]:
    out = Path(f"/tmp/{ns}-{iface}.pcap.txt")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-nn", "-l", "-i", iface, "icmp6"],
                            stdout=out.open("w"), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    line = ""
    while "listening on" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()
    return proc, out


def stop(proc: subprocess.Popen, out: Path) -> str:
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)
    text = out.read_text()
    out.unlink()
    return text


def test_a_v4_v6_host_moves_with_the_nd_gateway_check_and_down_restores_both_families(fresh_lab):
    checked, lab = fresh_lab
    target = lab_names.targets(lab)["node1"]
    ns = lab.names.host_ns("node1")
    settled(ns)
    before = host_state(ns)
    assert on(before, "eth1", "inet6", "global") == ["fd00:10::11"]
    link_local = on(before, "eth1", "inet6", "link")
    assert len(link_local) == 1, "the kernel gives eth1 a link-local address"

    lines: list[str] = []
    proc, out = capture(lab.names.switch_ns, lab.switch_ports["node1:eth1"])
    try:
        result = apply.up(checked, "node1", target, report=lines.append)
    finally:
        wire = stop(proc, out)
    assert "uplink: waiting for gateway fd00:10::1 to answer on mgmt0" in lines
    # Neighbour discovery on the wire: node1 asked for its IPv6 gateway, the router answered.
    assert "who has fd00:10::1" in wire and "tgt is fd00:10::1" in wire, wire[-2000:]
    addrs = {(a["ifname"], i["local"]) for a in ns_json(ns, "addr") for i in a.get("addr_info", [])}
    assert {("mgmt0", "192.168.10.11"), ("mgmt0", "fd00:10::11")} <= addrs
    assert ("eth1", "fd00:10::11") not in addrs and ("eth1", "192.168.10.11") not in addrs
    # The kernel's link-local address of eth1 stays, and no change touched a link-local address
    # (mgmt0 has the NIC's MAC, so the kernel gives it the same fe80:: address by itself).
    assert ("eth1", link_local[0]) in addrs
    assert not any("fe80" in f"{c.resource} {c.before} {c.after}" for c in result.applied)
    defaults = {(r["dst"], r.get("gateway"), r["dev"]) for fam in ("-4", "-6") for r in ns_json(ns, fam, "route") if r["dst"] == "default"}
    assert defaults == {("default", "192.168.10.1", "mgmt0"), ("default", "fd00:10::1", "mgmt0")}
    sh("ip", "netns", "exec", ns, "ping", "-6", "-c", "1", "-W", "2", "fd00:10::1")
    assert apply.drift(checked, "node1", target).empty

    apply.down(checked, "node1", target)
    after = host_state(ns)
    for key in ("addrs", "routes"):
        assert sorted(set(after[key]) ^ set(before[key])) == [], f"{key}: gone {sorted(set(before[key]) - set(after[key]))}, new {sorted(set(after[key]) - set(before[key]))}"


def test_an_ipv6_gateway_that_does_not_answer_rolls_the_move_back_in_both_families(fresh_lab):
    checked, lab = fresh_lab
    text = DUALSTACK.read_text().replace('gateway6 = "fd00:10::1"\ndns = ["192.168.10.1", "fd00:10::1"]\n\n[[hosts.node1',
                                         'gateway6 = "fd00:10::99"\ndns = ["192.168.10.1", "fd00:10::1"]\n\n[[hosts.node1', 1)
    assert "fd00:10::99" in text
    wrong = check(parse(text, str(DUALSTACK)))
    target = replace(lab_names.targets(lab)["node1"], gateway_timeout=2.0)
    ns = lab.names.host_ns("node1")
    settled(ns)
    before = host_state(ns)
    with pytest.raises(apply.ApplyFailed, match="gateway fd00:10::99 did not answer on mgmt0") as err:
        apply.up(wrong, "node1", target)
    assert isinstance(err.value.cause, VerificationError)  # exit 4: not applied as asked, rolled back
    after = host_state(ns)
    for key in ("addrs", "routes"):
        assert sorted(set(after[key]) ^ set(before[key])) == [], f"{key}: gone {sorted(set(before[key]) - set(after[key]))}, new {sorted(set(after[key]) - set(before[key]))}"


def test_nd_probe_sends_a_solicitation_and_takes_only_an_advertisement():
    """The gateway check's IPv6 half, on the wire: NS out, NA back; no NA, no answer."""
    with namespaces(new_prefix()) as make:
        a, b = make("a"), make("b")
        sh("ip", "-n", a, "link", "add", "p0", "type", "veth", "peer", "name", "p1", "netns", b)
        for ns, dev, addr in ((a, "p0", "2001:db8::1/64"), (b, "p1", "2001:db8::2/64")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        proc, out = capture(a, "p0")
        try:
            with Netlink(a) as nl:
                assert nl.answers("p0", "2001:db8::2", timeout=3.0)
                assert not nl.answers("p0", "2001:db8::99", timeout=1.5)
        finally:
            wire = stop(proc, out)
    assert "neighbor solicitation, who has 2001:db8::2" in wire
    assert "neighbor advertisement, tgt is 2001:db8::2" in wire
    assert "who has 2001:db8::99" in wire and "tgt is 2001:db8::99" not in wire


def test_the_plan_of_a_fresh_host_moves_both_default_routes_and_checks_both_gateways(fresh_lab):
    checked, lab = fresh_lab
    plan = apply.plan_live(checked, "node2", lab_names.targets(lab)["node2"])
    moves = {c.resource: (c.before, c.after) for c in plan.changes if c.resource.startswith("route")}
    assert moves == {"route:default": ("via 192.168.10.1 dev eth1", "via 192.168.10.1 dev mgmt0"),
                     "route6:default": ("via fd00:10::1 dev eth1", "via fd00:10::1 dev mgmt0")}
    assert [c.describe() for c in plan.checks if "gateway" in c.describe()] == [
        "the gateway check (192.168.10.1 on mgmt0, ARP)", "the gateway check (fd00:10::1 on mgmt0, neighbour discovery)"]
    # Without a Docker engine in the lab the networks wait for a later run.
    assert any("Docker is not reachable" in n for n in plan.notes)
