"""`ovsnet verify`: real traffic through a lab (or from this host), judged by ovsnet.verify.

In a lab, every station (a test endpoint in its own namespace, or a host's own
address in the host's namespace) pings the others' addresses with
`ip netns exec NS ping`, many at once (a bounded thread pool of subprocesses).
While the pings run, tcpdump listens on every trunk (the switch's port towards
each host, or a host NIC on a direct cable) and on every endpoint's host-side
port; what it printed is checked afterwards (see ovsnet/verify.py).

Above verify.MAX_FULL_STATIONS stations the pairs are sampled
(verify.choose_pairs). Pairs that should reach but did not are pinged once
more, longer, before they count as mismatches: a reply is conclusive, a
silence under load is not.

Without a lab (`verify_host`) this machine pings every station from its own
network namespace, and the row compared is that of the station(s) whose
address it holds. No captures there.

With probes (ovsnet/probes.py), a container per Docker network joins the
stations; its pings are the host's ping entering the container's namespace by
path (`nsenter --net=/proc/PID/ns/net`), through the same runner. In a lab its
host-side veth is captured like an endpoint's port.
"""

from __future__ import annotations

import ipaddress
import json
import re
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Hashable, Mapping, Sequence

from ovsnet import verify
from ovsnet.topology import graph
from ovsnet import probes as probes_mod
from ovsnet.errors import BackendError, UsageError
from ovsnet.topology.graph import Expect
from ovsnet.lab import netns
from ovsnet.lab.build import Lab, LabNames
from ovsnet.topology import Checked
from ovsnet.topology.model import Attach, Host, Layout, Topology

PING = ("ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1")
PING_AGAIN = ("ping", "-n", "-q", "-c", "3", "-i", "0.3", "-W", "2")
DEFAULT_CONCURRENCY = 32
RETRIES = 2  # extra rounds for pairs that should reach and did not
CAPTURE_READY_TIMEOUT = 15.0
CAPTURE_STOP_TIMEOUT = 5.0
CAPTURE_SETTLE = 0.3  # seconds after the last ping before the captures stop
SNAPLEN = "256"
_RECEIVED = re.compile(r"(\d+) (?:packets )?received")

Report = Callable[[str], None]


# --- pings -----------------------------------------------------------------------------


def ping_argv(namespace: str | None, address: str, again: bool = False) -> list[str]:
    """ping in a named lab namespace, in a namespace given by path (a probe container's
    /proc/PID/ns/net, which has no name for `ip netns exec`), or here (None)."""
    ping = [*(PING_AGAIN if again else PING), address]
    if not namespace:
        return ping
    if namespace.startswith("/"):
        return ["nsenter", f"--net={namespace}", "--", *ping]
    return ["ip", "netns", "exec", namespace, *ping]


def replied(stdout: str) -> bool:
    """Whether ping's summary counts any reply (ICMP errors such as "net unreachable" are not)."""
    m = _RECEIVED.search(stdout)
    return bool(m and int(m.group(1)) > 0)


def _ping(argv: list[str]) -> bool:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False
    return replied(proc.stdout)


# --- the kernel's neighbour table ----------------------------------------------------------
#
# The ARP table is ONE table for the whole machine, all network namespaces
# included (net.ipv4.neigh.default.gc_thresh1/2/3: 128/512/1024 by default).
# Every same-subnet ping creates an entry in its source and one in its target;
# the kernel's forced garbage collection only frees entries older than 5 s, and
# once more than gc_thresh3 are younger than that, neighbour creation fails
# everywhere on the machine ("sendmsg: No buffer space available", ARP never
# sent): a 200-endpoint lab pinging at full speed overflowed it. So pings are
# paced by what they cost in entries (a token bucket refilled at what forced GC
# can recycle, (gc_thresh3 - gc_thresh2) / 5 s, and credited with what flushing
# a finished source frees); while the table holds more than gc_thresh2 + 60 % of
# that span, no ping starts and the targets' namespaces are flushed (their
# entries are kept fresh by the pings, so GC cannot take them). The lab's
# namespaces are flushed before and after, giving the budget back.

NEIGH_SYSCTL = Path("/proc/sys/net/ipv4/neigh/default")
ARP_STATS = Path("/proc/net/stat/arp_cache")
NEIGH_GC_AGE = 5.0  # seconds: younger entries survive forced GC
NEIGH_SHARE = 0.6  # of the span above gc_thresh2 verify may fill, leaving room for the machine and other labs
PING_COST = {Expect.SAME_VLAN: 2.0, Expect.ROUTED: 1.0, Expect.BLOCKED: 0.25}  # new entries per ping


def _sysctl_int(name: str, default: int) -> int:
    try:
        return int((NEIGH_SYSCTL / name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def neigh_budget() -> tuple[float, float, int]:
    """(entries per second, burst, ceiling) for pings that must not overflow the table."""
    thresh2, thresh3 = _sysctl_int("gc_thresh2", 512), _sysctl_int("gc_thresh3", 1024)
    span = max(64, thresh3 - thresh2)
    return span / NEIGH_GC_AGE, span * NEIGH_SHARE / 2, int(thresh2 + span * NEIGH_SHARE)


def _arp_stat(name: str) -> int | None:
    try:
        head, values = ARP_STATS.read_text().splitlines()[:2]
        stats = dict(zip(head.split(), (int(v, 16) for v in values.split())))
    except (OSError, ValueError):
        return None
    return stats.get(name)


def arp_table_fulls() -> int | None:
    """The kernel's count of failed neighbour allocations (table full), machine-wide."""
    return _arp_stat("table_fulls")


def arp_entries() -> int | None:
    """Entries in the machine's ARP table, all namespaces together."""
    return _arp_stat("entries")


class Pacer:
    """A token bucket: take(n) waits until n tokens (neighbour entries) are available,
    and, with a ceiling, while the machine's ARP table holds more entries than that
    (at most MAX_CEILING_WAIT seconds: the kernel frees old entries only when new ones come)."""

    MAX_CEILING_WAIT = 2.0

    def __init__(self, rate: float, burst: float, ceiling: int | None = None,
                 relieve: Callable[[], None] | None = None):
        self.rate, self.burst, self.ceiling, self.relieve = rate, burst, ceiling, relieve
        self.relieved = 0  # times the ceiling made it flush
        self.tokens = burst
        self.last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: float) -> None:
        with self._lock:  # one waiter at a time: starts stay in order
            if self.ceiling is not None:
                deadline = time.monotonic() + self.MAX_CEILING_WAIT
                if (arp_entries() or 0) >= self.ceiling and self.relieve is not None:
                    self.relieve()  # entries kept fresh by ongoing pings: forget them
                    self.relieved += 1
                while (arp_entries() or 0) >= self.ceiling and time.monotonic() < deadline:
                    time.sleep(0.05)
            while True:
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
                self.last = now
                if self.tokens >= min(n, self.burst):
                    self.tokens -= n
                    return
                time.sleep((min(n, self.burst) - self.tokens) / self.rate)

    def give(self, n: float) -> None:
        """Entries known to be freed (a namespace flushed) come back at once."""
        with self._lock:
            self.tokens = min(self.burst, self.tokens + n)


_DELETED = re.compile(r"deleting (\d+) entries")


def flush_neighbour(namespace: str) -> int:
    """Forget one lab namespace's ARP entries; how many there were."""
    if namespace.startswith("/"):
        return 0  # a probe container's: its few entries go with it
    try:
        proc = subprocess.run(["ip", "-s", "-n", namespace, "neigh", "flush", "all"],
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return 0
    return sum(int(n) for n in _DELETED.findall(proc.stdout))


def flush_neighbours(namespaces: Sequence[str], concurrency: int = DEFAULT_CONCURRENCY) -> None:
    """Forget the lab namespaces' ARP entries (only theirs), so the machine's table has room."""

    def flush(ns: str) -> None:
        flush_neighbour(ns)

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(namespaces) or 1))) as pool:
        list(pool.map(flush, namespaces))


def run_pings(
    jobs: Mapping[Hashable, tuple[str | None, str]],
    concurrency: int = DEFAULT_CONCURRENCY,
    again: bool = False,
    pacer: Pacer | None = None,
    cost: Mapping[Hashable, float] | None = None,
) -> dict[Hashable, bool]:
    """Ping all at once, `concurrency` at a time: key -> (namespace or None, address) -> replied.

    With a pacer, each ping first takes its cost (default 2) in neighbour entries.
    """
    if not jobs:
        return {}
    keys = list(jobs)
    # With a pacer, a source namespace is flushed once its last ping is done, and the
    # entries that frees go back to the pacer.
    left: dict[str | None, int] = {}
    for k in keys:
        left[jobs[k][0]] = left.get(jobs[k][0], 0) + 1
    lock = threading.Lock()

    def one(k: Hashable) -> bool:
        ns = jobs[k][0]
        if pacer is not None:
            pacer.take((cost or {}).get(k, 2.0))
        try:
            return _ping(ping_argv(ns, jobs[k][1], again))
        finally:
            with lock:
                left[ns] -= 1
                done = left[ns] == 0
            if done and pacer is not None and ns is not None:
                pacer.give(flush_neighbour(ns))

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(keys)))) as pool:
        return dict(zip(keys, pool.map(one, keys)))


def ping_pairs(
    pairs: Sequence[tuple[str, str]],
    where: Mapping[str, str | None],
    address: Mapping[str, str],
    expected: Mapping[tuple[str, str], Expect],
    concurrency: int = DEFAULT_CONCURRENCY,
    retries: int = RETRIES,
    pacer: Pacer | None = None,
    between: Callable[[], None] = lambda: None,
) -> tuple[dict[tuple[str, str], bool], list[int]]:
    """Every pair once; then up to `retries` more rounds, longer and fewer at a time, of the
    pairs that should reach and did not. A reply is conclusive, a silence under load is not
    (an ARP request lost on a busy machine costs the whole first ping). `between` runs
    before each extra round.

    Returns what was seen, and how many pairs each extra round pinged again.
    """
    cost = {p: PING_COST[expected[p]] for p in pairs}
    seen: dict[tuple[str, str], bool] = run_pings(  # type: ignore[assignment]
        {p: (where[p[0]], address[p[1]]) for p in pairs}, concurrency, pacer=pacer, cost=cost)  # type: ignore[arg-type]
    rounds = []
    for n in range(retries):
        again = [p for p in pairs if not seen[p] and expected[p] in verify.REACHABLE]
        if not again:
            break
        rounds.append(len(again))
        between()
        slower = max(4, concurrency // (2 * (n + 1)))
        seen.update(run_pings({p: (where[p[0]], address[p[1]]) for p in again}, slower, again=True,  # type: ignore[arg-type]
                              pacer=pacer, cost=cost))  # type: ignore[arg-type]
    return seen, rounds


# --- captures -------------------------------------------------------------------------------


class Captures:
    """tcpdump on every capture point: started (and listening) on enter, stopped on exit, whatever happens."""

    def __init__(self, points: Sequence[verify.CapturePoint], workdir: Path):
        self.points = list(points)
        self.workdir = workdir
        self._procs: list[tuple[verify.CapturePoint, subprocess.Popen, Path, Path]] = []
        self.text: dict[verify.CapturePoint, str] = {}
        self.dropped: dict[verify.CapturePoint, int] = {}

    def __enter__(self) -> Captures:
        try:
            for i, point in enumerate(self.points):
                out, err = self.workdir / f"cap{i}.txt", self.workdir / f"cap{i}.err"
                with open(out, "w") as fo, open(err, "w") as fe:
                    proc = subprocess.Popen(
                        ["ip", "netns", "exec", point.namespace, "tcpdump", "-e", "-nn", "-l",
                         "--immediate-mode", "-s", SNAPLEN, "-i", point.interface],
                        stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                    )
                self._procs.append((point, proc, out, err))
            self._wait_listening()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + CAPTURE_READY_TIMEOUT
        waiting = list(self._procs)
        while waiting:
            still = []
            for point, proc, _out, err in waiting:
                text = err.read_text(errors="replace")
                if "listening on" in text:
                    continue
                if proc.poll() is not None:
                    raise BackendError(f"verify: tcpdump on {point.where} ({point.namespace}) exited: {text.strip()}")
                still.append((point, proc, _out, err))
            waiting = still
            if waiting and time.monotonic() > deadline:
                raise BackendError(
                    f"verify: tcpdump not listening after {CAPTURE_READY_TIMEOUT:g} s on "
                    + ", ".join(p.where for p, *_ in waiting[:5])
                )
            if waiting:
                time.sleep(0.02)

    def _stop(self) -> None:
        for _point, proc, _out, _err in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + CAPTURE_STOP_TIMEOUT
        for point, proc, out, err in self._procs:
            try:
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            try:
                self.text[point] = out.read_text(errors="replace")
                m = re.search(r"(\d+) packets? dropped by kernel", err.read_text(errors="replace"))
                self.dropped[point] = int(m.group(1)) if m else 0
            except OSError:
                self.text.setdefault(point, "")
        self._procs = []


# --- what the lab looks like -------------------------------------------------------------


def _ip_json(namespace: str, *args: str) -> list[dict]:
    proc = subprocess.run(["ip", "-j", "-n", namespace, *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise BackendError(f"verify: ip -n {namespace} {' '.join(args)}: {proc.stderr.strip()}")
    return json.loads(proc.stdout or "[]")


def _mac_of_address(namespace: str, address: str) -> str | None:
    ip = address.split("/", 1)[0]
    for link in _ip_json(namespace, "addr", "show"):
        if any(a.get("local") == ip for a in link.get("addr_info", [])):
            return link.get("address")
    return None


def _vlan_ids(topo: Topology) -> dict[str, int]:
    return {v.name: v.id for v in topo.vlans.values()}


def _nic_vlans(topo: Topology, host: Host, nic: str) -> tuple[frozenset[int | None], int | None]:
    """VLANs a host NIC carries and its native one (a flat NIC: its one segment, untagged)."""
    ids = _vlan_ids(topo)
    up = next((u for u in host.uplinks if u.nic == nic), None)
    if up is not None:
        native = ids[up.native_vlan] if up.native_vlan else None
        return frozenset(ids[v] for v in up.vlans) | ({native} if native is not None else frozenset()), native
    seg = ids[host.flat.vlan] if host.flat and host.flat.vlan else None
    return frozenset({seg}), seg


def _attach(topo: Topology) -> dict[str, str]:
    out = {}
    for ep in topo.endpoints:
        host = topo.hosts.get(ep.host)
        if host is not None and host.layout is Layout.FLAT:
            out[ep.name] = "flat"
        else:
            out[ep.name] = "ovs" if ep.attach is Attach.OVS else "docker"
    return out


def _required(
    near: frozenset[str],
    far: frozenset[str] | None,
    allowed: frozenset[int | None],
    pairs: Sequence[tuple[str, str]],
    by_name: Mapping[str, verify.Peer],
    expected: Mapping[tuple[str, str], Expect],
) -> frozenset[int | None]:
    """VLANs whose frames from `near` stations the probes must have sent across this trunk."""
    need: set[int | None] = set()
    for a, b in pairs:
        exp = expected[(a, b)]
        if exp not in verify.REACHABLE:
            continue
        for x, y in ((by_name[a], by_name[b]), (by_name[b], by_name[a])):
            if x.host not in near or x.vlan not in allowed:
                continue
            crosses = exp is Expect.ROUTED or y.host not in near
            if far is not None:
                crosses = crosses and y.host in far
            if crosses:
                need.add(x.vlan)
    return frozenset(need)


def capture_points(
    lab: Lab,
    stations: Sequence[verify.Peer],
    pairs: Sequence[tuple[str, str]],
    expected: Mapping[tuple[str, str], Expect],
    endpoints: set[str] | None = None,
) -> list[verify.CapturePoint]:
    """Every trunk (switch port towards a host, or a host NIC on a direct cable), and the
    host-side port of every endpoint (or of those in `endpoints`)."""
    topo, names = lab.topology, lab.names
    by_name = {s.name: s for s in stations}
    points = []
    for end, port in lab.switch_ports.items():
        host, _, nic = end.partition(":")
        allowed, native = _nic_vlans(topo, topo.hosts[host], nic)
        near = frozenset({host})
        flat = topo.hosts[host].layout is Layout.FLAT
        points.append(verify.CapturePoint(
            node=names.switch or "switch", namespace=names.switch_ns, interface=port, role="access" if flat else "trunk",
            vlans=allowed, native=native, near=near,
            required=_required(near, None, allowed, pairs, by_name, expected),
        ))
    switch = topo.lab.switch if topo.lab else None
    for cable in topo.lab.cables if topo.lab else ():
        a, b = cable.a, cable.b
        if switch in (a.node, b.node) or a.node not in topo.hosts or b.node not in topo.hosts or not a.nic:
            continue
        allowed, native = _nic_vlans(topo, topo.hosts[a.node], a.nic)
        near = frozenset({a.node})
        points.append(verify.CapturePoint(
            node=a.node, namespace=names.host_ns(a.node), interface=a.nic, role="trunk",
            vlans=allowed, native=native, near=near,
            required=_required(near, frozenset({b.node}), allowed, pairs, by_name, expected),
        ))
    ids = _vlan_ids(topo)
    for ep in topo.endpoints:
        if endpoints is not None and ep.name not in endpoints:
            continue
        points.append(verify.CapturePoint(
            node=ep.host, namespace=names.host_ns(ep.host), interface=names.endpoint_link(ep.name),
            role="endpoint", vlans=frozenset({ids[ep.vlan]}), native=ids[ep.vlan], owner=ep.name,
        ))
    return points


def _routed_vlans(topo: Topology) -> list[int]:
    if not (topo.router and topo.lab and topo.lab.switch):
        return []
    return [topo.vlans[v].id for v in topo.router.vlans]


def _macs(lab: Lab, stations: Sequence[verify.Peer], where: Mapping[str, str], concurrency: int) -> dict[str, verify.MacOwner]:
    """MAC -> owner, for every station and router leg; read from the lab's namespaces."""
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(stations) or 1))) as pool:
        found = list(pool.map(lambda s: _mac_of_address(where[s.name], s.address), stations))
    out: dict[str, verify.MacOwner] = {}
    for s, mac in zip(stations, found):
        if mac:
            out[mac] = verify.MacOwner(s.name, s.vlan, s.host)
    routed = _routed_vlans(lab.topology)
    if routed and lab.names.router:
        links = {link["ifname"]: link.get("address") for link in _ip_json(lab.names.router_ns, "link", "show")}
        for vid in routed:
            mac = links.get(LabNames.router_leg(vid))
            if mac:
                out[mac] = verify.MacOwner(f"router:{lab.names.router}/v{vid}", vid, lab.names.router, router=True)
    return out


def _subnets(topo: Topology, stations: Sequence[verify.Peer]) -> verify.Subnets:
    nets: list[tuple[str, int | None]] = [(str(v.subnet), v.id) for v in topo.vlans.values() if v.subnet is not None]
    nets += [(str(ipaddress.ip_interface(s.address).network), s.vlan) for s in stations]
    return verify.Subnets(set(nets))


# --- verify ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    stations: tuple[verify.Peer, ...]
    expected: dict[tuple[str, str], Expect]
    pairs: list[tuple[str, str]]
    sampled: bool


def plan(
    checked: Checked,
    all_pairs: bool = False,
    max_full: int = verify.MAX_FULL_STATIONS,
    probes: Sequence[probes_mod.Probe] = (),
) -> Plan:
    """Stations, expected matrix and pairs; probes are stations too, expected of as endpoints."""
    topo, g = checked.topology, checked.graph
    if probes:
        topo = probes_mod.with_probes(topo, probes)
        g = graph.build(topo)
    sts = graph.stations(topo, g)
    expected = graph.expected(topo, g)
    stations = verify.peers(sts, _attach(topo), {p.name: p.spec.network for p in probes})
    pairs, sampled = verify.choose_pairs(stations, expected, all_pairs, max_full)
    return Plan(stations, expected, pairs, sampled)


def _station_namespaces(lab: Lab, stations: Sequence[verify.Peer], probes: Sequence[probes_mod.Probe] = ()) -> dict[str, str]:
    names = lab.names
    by_probe = {p.name: p.netns for p in probes}
    return {
        s.name: by_probe[s.name] if s.name in by_probe else names.host_ns(s.host) if s.is_host_address else names.endpoint_ns(s.name)
        for s in stations
    }


def probe_records(topo: Topology, probes: Sequence[probes_mod.Probe]) -> list[verify.ProbeRecord]:
    ids = _vlan_ids(topo)
    return [
        verify.ProbeRecord(p.name, p.host, p.spec.network, ids[p.spec.vlan], p.address, p.spec.ip_range,
                           p.in_slice, p.container_name, p.image)
        for p in probes
    ]


def _peer_index(probe: probes_mod.Probe) -> int | None:
    """The ifindex, in its host's namespace, of the veth end facing the probe's interface.

    Read from the container's own sysfs (its mount of /sys belongs to its
    network namespace): the interface with the probe's MAC, and its iflink.
    """
    net = Path(f"/proc/{probe.pid}/root/sys/class/net")
    try:
        for dev in net.iterdir():
            if probe.mac and (dev / "address").read_text().strip().lower() == probe.mac.lower():
                return int((dev / "iflink").read_text().strip())
    except (OSError, ValueError):
        return None
    return None


def probe_ports(lab: Lab, probes: Sequence[probes_mod.Probe]) -> dict[str, str]:
    """Probe name -> its host-side veth in the lab host's namespace (those that could be found)."""
    from ovsnet.backends.netlink import Netlink

    by_host: dict[str, list[probes_mod.Probe]] = defaultdict(list)
    for p in probes:
        by_host[p.host].append(p)
    out = {}
    for host, ps in by_host.items():
        with Netlink(lab.names.host_ns(host)) as nl:
            index = {link.index: link.name for link in nl.read().links.values()}
        for p in ps:
            peer = _peer_index(p)
            if peer in index:
                out[p.name] = index[peer]
    return out


def _lab_engines(lab: Lab) -> dict[str, str | None]:
    from ovsnet.lab import docker as lab_docker

    return {host: run.docker_host for host, run in lab_docker.runs(lab).items()}


def _with_probes(
    checked: Checked,
    engines: Mapping[str, str | None],
    probes: bool | None,
    hosts: Sequence[str] | None,
    no_engine: str,
    run: Callable[[Sequence[probes_mod.Probe], list[str]], verify.Report],
    report: Report,
    started: float,
) -> verify.Report:
    """run(probes, notes) inside a ProbeSet when probes are chosen: every probe removed after, whatever happens.

    The report's seconds then count from `started` to the last probe removed."""
    topo = checked.topology
    chosen, notes = probes_mod.choose(probes, topo.verify.probe_image, probes_mod.specs(topo, hosts), set(engines), no_engine)
    if not chosen:
        return run((), notes)
    assert topo.verify.probe_image is not None
    probe_set = probes_mod.ProbeSet(topo.name, topo.verify.probe_image, chosen, engines, report)
    with probe_set:
        result = run(tuple(probe_set.probes), notes)
    if probe_set.stale_removed:
        notes_more = [f"removed {len(probe_set.stale_removed)} probe containers left by an earlier verify"]
    else:
        notes_more = []
    return replace(
        result,
        notes=result.notes + tuple(notes_more),
        seconds=time.monotonic() - started,
        timings=(("start probes", probe_set.seconds_start), *result.timings, ("remove probes", probe_set.seconds_remove)),
    )


def verify_lab(
    checked: Checked,
    lab: Lab,
    *,
    all_pairs: bool = False,
    capture: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_full: int = verify.MAX_FULL_STATIONS,
    probes: bool | None = False,
    report: Report = lambda _m: None,
) -> verify.Report:
    """Ping every (or a sample of) station pair in the lab while capturing; the Report.

    probes: True starts a probe container per Docker network (error if the lab
    has no Docker or the image is missing), None does when the topology names
    a probe image and the lab runs Docker, False never.
    """
    started = time.monotonic()
    missing = [ns for ns in sorted(set(lab.namespaces.values())) if not netns.exists(ns)]
    if missing:
        raise UsageError(f"lab {lab.prefix} is not running (no namespace {', '.join(missing[:3])}); run `ovsnet lab up` first")
    no_engine = "the lab runs no Docker engine there (`ovsnet lab down FILE`, then `ovsnet lab up FILE --docker`)"
    return _with_probes(
        checked, _lab_engines(lab), probes, None, no_engine,
        lambda found, notes: _verify_lab(checked, lab, found, notes, all_pairs=all_pairs, capture=capture,
                                         concurrency=concurrency, max_full=max_full, report=report, started=started),
        report, started,
    )


def _verify_lab(
    checked: Checked,
    lab: Lab,
    probes: Sequence[probes_mod.Probe],
    notes: list[str],
    *,
    all_pairs: bool,
    capture: bool,
    concurrency: int,
    max_full: int,
    report: Report,
    started: float,
) -> verify.Report:
    p = plan(checked, all_pairs, max_full, probes)
    where = _station_namespaces(lab, p.stations, probes)
    address = {s.name: s.ip for s in p.stations}
    ids = _vlan_ids(checked.topology)
    timings: list[tuple[str, float]] = []
    notes = list(notes)
    captures: list[verify.CaptureResult] = []
    findings: list[verify.CaptureFinding] = []
    t = time.monotonic()
    probe_names = {pr.name for pr in probes}
    macs = _macs(lab, [s for s in p.stations if s.name not in probe_names], where, concurrency) if capture else {}
    # Sampled: the endpoint ports of the representatives only (each group's shared bridge and tag).
    ports = {s.name for s in verify.representatives(p.stations)} if p.sampled else None
    points = capture_points(lab, p.stations, p.pairs, p.expected, ports) if capture else []
    if capture and probes:
        for pr in probes:
            if pr.mac:
                macs[pr.mac.lower()] = verify.MacOwner(pr.name, ids[pr.spec.vlan], pr.host)
        found = probe_ports(lab, [pr for pr in probes if ports is None or pr.name in ports])
        for pr in probes:
            if pr.name in found:
                points.append(verify.CapturePoint(
                    node=pr.host, namespace=lab.names.host_ns(pr.host), interface=found[pr.name], role="endpoint",
                    vlans=frozenset({ids[pr.spec.vlan]}), native=ids[pr.spec.vlan], owner=pr.name,
                ))
            elif ports is None or pr.name in ports:
                notes.append(f"probe {pr.name}: its host-side port was not found; not captured")
    timings.append(("read lab", time.monotonic() - t))
    report(f"verify {checked.topology.name}: {len(p.pairs)} pairs of {len(p.stations)} stations"
           + (f" ({len(probes)} probe containers)" if probes else "")
           + (" (sampled)" if p.sampled else "") + (f", capturing on {len(points)} interfaces" if points else ""))
    # Probe containers' namespaces are paths, not lab namespaces: nothing to flush there.
    lab_ns = sorted({ns for ns in where.values() if not ns.startswith("/")} | ({lab.names.router_ns} if lab.names.router else set()))
    fulls = arp_table_fulls()
    flush_neighbours(lab_ns, concurrency)
    with tempfile.TemporaryDirectory(prefix=f"ovsnet-verify-{lab.prefix}-") as tmp:
        t = time.monotonic()
        cap = Captures(points, Path(tmp))
        with cap:
            timings.append(("start captures", time.monotonic() - t))
            t = time.monotonic()
            # The targets' tables fill up with an entry per source: flushed when the machine's is near full.
            targets = sorted({where[b] for _a, b in p.pairs} | ({lab.names.router_ns} if lab.names.router else set()))
            pacer = Pacer(*neigh_budget(), relieve=lambda: flush_neighbours(targets, concurrency))
            observed, rounds = ping_pairs(p.pairs, where, address, p.expected, concurrency,
                                          pacer=pacer, between=lambda: flush_neighbours(lab_ns, concurrency))
            timings.append(("pings", time.monotonic() - t))
            if rounds:
                notes.append(f"pinged again (up to {RETRIES} more times, longer) {rounds[0]} pairs that should reach "
                             f"and did not at first; {sum(1 for q in p.pairs if not observed[q] and p.expected[q] in verify.REACHABLE)} never did")
            time.sleep(CAPTURE_SETTLE if points else 0)
        t = time.monotonic()
        subnets = _subnets(checked.topology, p.stations)
        for point in points:
            res, found_here = verify.analyze(point, verify.parse_frames(cap.text.get(point, "")), macs, subnets)
            captures.append(res)
            findings += found_here
            if cap.dropped.get(point):
                notes.append(f"tcpdump on {point.where} dropped {cap.dropped[point]} frames")
        timings.append(("analyse captures", time.monotonic() - t))
    t = time.monotonic()
    flush_neighbours(lab_ns, concurrency)
    timings.append(("flush ARP", time.monotonic() - t))
    if pacer.relieved:
        notes.append(f"the machine's ARP table (shared by all namespaces) neared its limit: the targets' entries "
                     f"were flushed {pacer.relieved} times")
    after = arp_table_fulls()
    if fulls is not None and after is not None and after > fulls:
        notes.append(f"the machine's ARP table was full {after - fulls} times during verify (all namespaces share it: "
                     "net.ipv4.neigh.default.gc_thresh3); pings that should reach may have failed for that")
    if not capture:
        notes.append("captures skipped")
    return verify.build_report(
        checked.topology.name, p.stations, p.expected, observed,
        mode="lab", captures=captures, findings=findings, sampled=p.sampled,
        notes=notes, seconds=time.monotonic() - started, timings=timings,
        probes=probe_records(checked.topology, probes),
    )


# --- verify from this host -----------------------------------------------------------------------


def local_addresses() -> set[str]:
    """The IP addresses this process's network namespace holds (read over netlink, as `up` reads them)."""
    from ovsnet.backends.netlink import Netlink

    with Netlink() as nl:
        return {a.cidr.split("/", 1)[0] for a in nl.read().addresses}


def host_row(
    stations: Sequence[verify.Peer],
    expected: Mapping[tuple[str, str], Expect],
    mine: Sequence[verify.Peer],
) -> dict[tuple[str, str], Expect]:
    """The expected row of this host, named after its first station: reachable if any of its stations reaches."""
    own = {s.name for s in mine}
    row = {}
    for b in stations:
        if b.name in own:
            continue
        exps = [expected[(a.name, b.name)] for a in mine if (a.name, b.name) in expected]
        if not exps:
            continue
        best = Expect.SAME_VLAN if Expect.SAME_VLAN in exps else Expect.ROUTED if Expect.ROUTED in exps else Expect.BLOCKED
        row[(mine[0].name, b.name)] = best
    return row


def verify_host(
    checked: Checked,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    addresses: set[str] | None = None,
    pinger: Callable[[Mapping[Hashable, tuple[str | None, str]], int], Mapping[Hashable, bool]] | None = None,
    probes: bool | None = False,
    docker_host: str | None = None,
    report: Report = lambda _m: None,
) -> verify.Report:
    """Ping every station from this machine's own namespace; compare with its station(s)' row.

    With probes, a probe container per Docker network of this host (the host
    whose own addresses this machine holds; its Docker engine: `docker_host`,
    else the host's docker_host setting, else $DOCKER_HOST) pings every
    station too, and is pinged from here.
    """
    started = time.monotonic()
    topo = checked.topology
    p = plan(checked, all_pairs=True)
    held = local_addresses() if addresses is None else addresses
    mine = [s for s in p.stations if s.ip in held]
    if not mine:
        raise UsageError(
            f"this machine holds none of the addresses of {topo.name}'s stations "
            f"({', '.join(s.ip for s in p.stations[:6])}{', ...' if len(p.stations) > 6 else ''}); "
            "run verify on one of its hosts, or use --lab"
        )
    # Which host this is: the one whose own addresses it holds.
    hosts = list(dict.fromkeys(s.host for s in mine if s.is_host_address)) or list(dict.fromkeys(s.host for s in mine))
    engines: dict[str, str | None] = {}
    no_engine = ""
    if len(hosts) > 1:
        no_engine = f"this machine holds the addresses of several hosts ({', '.join(hosts)}): whose Docker engine is unclear"
    elif probes is not False and topo.verify.probe_image and probes_mod.specs(topo, hosts):
        from ovsnet.backends.docker import Docker

        url = docker_host or topo.hosts[hosts[0]].docker_host
        try:
            Docker(url).close()
            engines[hosts[0]] = url
        except BackendError as exc:
            if probes:
                raise  # asked for: an engine that does not answer is a backend error (exit 3)
            no_engine = str(exc)
    return _with_probes(
        checked, engines, probes, hosts, no_engine,
        lambda found, notes: _verify_host(checked, found, notes, held, concurrency, pinger, report, started),
        report, started,
    )


def _verify_host(
    checked: Checked,
    probes: Sequence[probes_mod.Probe],
    notes: list[str],
    held: set[str],
    concurrency: int,
    pinger: Callable[[Mapping[Hashable, tuple[str | None, str]], int], Mapping[Hashable, bool]] | None,
    report: Report,
    started: float,
) -> verify.Report:
    p = plan(checked, all_pairs=True, probes=probes)
    mine = [s for s in p.stations if s.ip in held and s.probe is None]
    row = host_row(p.stations, p.expected, mine)
    netns_of = {pr.name: pr.netns for pr in probes}
    # A probe's row: it pings every other station (this host's other probes included).
    probe_rows = {(a, b): e for (a, b), e in p.expected.items() if a in netns_of}
    expected = {**row, **probe_rows}
    address = {s.name: s.ip for s in p.stations}
    report(f"verify {checked.topology.name} from this host as {', '.join(s.name for s in mine)}: {len(expected)} pings"
           + (f" ({len(probe_rows)} from {len(probes)} probe containers)" if probes else ""))
    jobs: dict[Hashable, tuple[str | None, str]] = {pair: (None, address[pair[1]]) for pair in row}
    jobs.update({pair: (netns_of[pair[0]], address[pair[1]]) for pair in probe_rows})
    run = pinger or (lambda j, c: run_pings(j, c))
    seen = dict(run(jobs, concurrency))
    again = {pair: jobs[pair] for pair in expected if not seen[pair] and expected[pair] in verify.REACHABLE}
    if again and pinger is None:
        seen.update(run_pings(again, concurrency, again=True))
    plural = "es" if len(mine) > 1 else ""
    if probes:
        notes = [
            f"from this host only: the row of this host's own address{plural} ({', '.join(s.name for s in mine)}) and "
            f"those of its probe containers ({', '.join(pr.name for pr in probes)}); other hosts' probes do not exist "
            "during this run, so no pair joins two hosts' probes: run verify on each host, or use --lab; no captures",
            *notes,
        ]
    else:
        notes = [
            f"from this host only: one row (this host's own address{plural}: {', '.join(s.name for s in mine)}); "
            "containers' rows and captures need --lab",
            *notes,
        ]
    return verify.build_report(
        checked.topology.name, p.stations, expected, {k: bool(v) for k, v in seen.items()},  # type: ignore[misc]
        mode="host", notes=notes, seconds=time.monotonic() - started,
        probes=probe_records(checked.topology, probes),
    )
