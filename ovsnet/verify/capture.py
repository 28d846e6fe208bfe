"""tcpdump in a lab while verify's pings run: where to listen, and who sends what.

tcpdump listens on every trunk (the switch's port towards each host, or a
host NIC on a direct cable) and on every endpoint's host-side port (and each
probe container's host-side veth); what it printed is checked afterwards by
verify/frames.py, against the MAC addresses read here from the lab.
"""

from __future__ import annotations

import ipaddress
import json
import re
import signal
import subprocess
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping, Sequence

from ovsnet.errors import BackendError
from ovsnet.lab.names import Lab, LabNames
from ovsnet.topology.graph import Expect
from ovsnet.topology.model import Host, Layout, Topology
from ovsnet.verify import containers
from ovsnet.verify.frames import CapturePoint, MacOwner, Subnets
from ovsnet.verify.matrix import REACHABLE, Peer, vlan_ids

CAPTURE_READY_TIMEOUT = 15.0
CAPTURE_STOP_TIMEOUT = 5.0
CAPTURE_SETTLE = 0.3  # seconds after the last ping before the captures stop
SNAPLEN = "256"


class Captures:
    """tcpdump on every capture point: started (and listening) on enter, stopped on exit, whatever happens."""

    def __init__(self, points: Sequence[CapturePoint], workdir: Path):
        self.points = list(points)
        self.workdir = workdir
        self._procs: list[tuple[CapturePoint, subprocess.Popen, Path, Path]] = []
        self.text: dict[CapturePoint, str] = {}
        self.dropped: dict[CapturePoint, int] = {}

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


def _nic_vlans(topo: Topology, host: Host, nic: str) -> tuple[frozenset[int | None], int | None]:
    """VLANs a host NIC carries and its native one (a flat NIC: its one segment, untagged)."""
    ids = vlan_ids(topo)
    up = host.uplink_of(nic)
    if up is not None:
        native = ids[up.native_vlan] if up.native_vlan else None
        return frozenset(ids[v] for v in up.vlans) | ({native} if native is not None else frozenset()), native
    seg = ids[host.flat.vlan] if host.flat and host.flat.vlan else None
    return frozenset({seg}), seg


def _bond(host: Host, nic: str) -> str | None:
    """"node1:bond0" for a member of a bond, whose members share its traffic; else None."""
    up = host.uplink_of(nic)
    return f"{host.name}:{up.bond.name}" if up is not None and up.bond is not None else None


def _required(
    near: frozenset[str],
    far: frozenset[str] | None,
    allowed: frozenset[int | None],
    pairs: Sequence[tuple[str, str]],
    by_name: Mapping[str, Peer],
    expected: Mapping[tuple[str, str], Expect],
) -> frozenset[int | None]:
    """VLANs whose frames from `near` stations the probes must have sent across this trunk."""
    need: set[int | None] = set()
    for a, b in pairs:
        exp = expected[(a, b)]
        if exp not in REACHABLE:
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


Matrix = tuple[Sequence[Peer], Sequence[tuple[str, str]], Mapping[tuple[str, str], Expect]]


def capture_points(
    lab: Lab,
    stations: Sequence[Peer],
    pairs: Sequence[tuple[str, str]],
    expected: Mapping[tuple[str, str], Expect],
    endpoints: set[str] | None = None,
    ipv6: Matrix | None = None,
) -> list[CapturePoint]:
    """Every trunk (switch port towards a host, or a host NIC on a direct cable), and the
    host-side port of every endpoint (or of those in `endpoints`). With `ipv6` (a dual-stack
    run's IPv6 stations, pairs and expectations) trunks also say which VLANs' ICMPv6 echoes must cross."""
    topo, names = lab.topology, lab.names
    by_name = {s.name: s for s in stations}
    stations6, pairs6, expected6 = ipv6 if ipv6 is not None else ((), (), {})
    by_name6 = {s.name: s for s in stations6}
    points = []
    for end, port in lab.switch_ports.items():
        host, _, nic = end.partition(":")
        allowed, native = _nic_vlans(topo, topo.hosts[host], nic)
        near = frozenset({host})
        flat = topo.hosts[host].layout is Layout.FLAT
        points.append(CapturePoint(
            node=names.switch or "switch", namespace=names.switch_ns, interface=port, role="access" if flat else "trunk",
            vlans=allowed, native=native, near=near,
            required=_required(near, None, allowed, pairs, by_name, expected), bundle=_bond(topo.hosts[host], nic),
            required6=_required(near, None, allowed, pairs6, by_name6, expected6),
        ))
    switch = topo.lab.switch if topo.lab else None
    for cable in topo.lab.cables if topo.lab else ():
        a, b = cable.a, cable.b
        if switch in (a.node, b.node) or a.node not in topo.hosts or b.node not in topo.hosts or not a.nic:
            continue
        allowed, native = _nic_vlans(topo, topo.hosts[a.node], a.nic)
        near = frozenset({a.node})
        points.append(CapturePoint(
            node=a.node, namespace=names.host_ns(a.node), interface=a.nic, role="trunk",
            vlans=allowed, native=native, near=near,
            required=_required(near, frozenset({b.node}), allowed, pairs, by_name, expected), bundle=_bond(topo.hosts[a.node], a.nic),
            required6=_required(near, frozenset({b.node}), allowed, pairs6, by_name6, expected6),
        ))
    ids = vlan_ids(topo)
    for ep in topo.endpoints:
        if endpoints is not None and ep.name not in endpoints:
            continue
        points.append(CapturePoint(
            node=ep.host, namespace=names.host_ns(ep.host), interface=names.endpoint_link(ep.name),
            role="endpoint", vlans=frozenset({ids[ep.vlan]}), native=ids[ep.vlan], owner=ep.name,
        ))
    return points


def _routed_vlans(topo: Topology) -> list[int]:
    if not (topo.router and topo.lab and topo.lab.switch):
        return []
    return [topo.vlans[v].id for v in topo.router.vlans]


def mac_owners(lab: Lab, stations: Sequence[Peer], where: Mapping[str, str], concurrency: int) -> dict[str, MacOwner]:
    """MAC -> owner, for every station and router leg; read from the lab's namespaces."""
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(stations) or 1))) as pool:
        found = list(pool.map(lambda s: _mac_of_address(where[s.name], s.address), stations))
    out: dict[str, MacOwner] = {}
    for s, mac in zip(stations, found):
        if mac:
            out[mac] = MacOwner(s.name, s.vlan, s.host)
    routed = _routed_vlans(lab.topology)
    if routed and lab.names.router:
        links = {link["ifname"]: link.get("address") for link in _ip_json(lab.names.router_ns, "link", "show")}
        for vid in routed:
            mac = links.get(LabNames.router_leg(vid))
            if mac:
                out[mac] = MacOwner(f"router:{lab.names.router}/v{vid}", vid, lab.names.router, router=True)
    return out


def station_subnets(topo: Topology, stations: Sequence[Peer]) -> Subnets:
    nets: list[tuple[str, int | None]] = [(str(n), v.id) for v in topo.vlans.values() for n in v.subnets]
    nets += [(str(ipaddress.ip_interface(s.address).network), s.vlan) for s in stations]
    return Subnets(set(nets))


def _peer_index(probe: containers.Probe) -> int | None:
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


def probe_ports(lab: Lab, probes: Sequence[containers.Probe]) -> dict[str, str]:
    """Probe name -> its host-side veth in the lab host's namespace (those that could be found)."""
    from ovsnet.backends.netlink import Netlink

    by_host: dict[str, list[containers.Probe]] = defaultdict(list)
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
