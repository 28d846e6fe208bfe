"""Probe containers for `ovsnet verify`: real Docker containers as stations.

For each Docker network that ovsnet creates (a Docker bridge with `network`),
verify may start one short-lived container from the topology's
`[verify] probe_image`, attached to that network only, and put it in the
reachability matrix like a test endpoint: its address is the one Docker's
IPAM gave it (which must lie in the host's slice), and what it should reach
is computed by the same graph code, from a copy of the topology in which the
probes are endpoints on their network's bridge.

Nothing runs inside a probe but `sleep`: pings from it are the host's own
ping entering its network namespace (`/proc/PID/ns/net`), so the image needs
no tools, and the same ping runner serves lab namespaces and containers.

A probe carries labels naming ovsnet, the topology and the verify run that
started it (boot id, pid and start time of the process, and a random run id),
so that every probe is removed at the end by label, whatever went wrong, and
a later verify removes what a killed one left (see `is_stale`). A probe also
ends by itself: `sleep` runs for LIFETIME seconds and Docker auto-removes it.

This module talks to Docker only through ovsnet.backends.docker (the Engine
API), imported lazily.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Collection, Mapping, Sequence

from ovsnet import procs
from ovsnet.errors import BackendError, UsageError
from ovsnet.kinds import Settings
from ovsnet.kinds.docker_network import DockerNetworks
from ovsnet.topology.model import Attach, Endpoint, Topology

if TYPE_CHECKING:
    from ovsnet.backends.docker import Container

PROBE_LABEL = "org.ovsnet.probe"  # value: the topology's name
OWNER_LABEL = "org.ovsnet.probe.owner"  # value: "<boot id>:<pid>:<start time>:<run id>"
HOST_LABEL = "org.ovsnet.probe.host"
NETWORK_LABEL = "org.ovsnet.probe.network"
LIFETIME = 1800  # seconds a probe lives at most; longer than any verify
COMMAND = ("sleep", str(LIFETIME))
MAX_PARALLEL = 8
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ProbeSpec:
    """One Docker network of one host, to get a probe."""

    host: str
    network: str
    vlan: str  # the VLAN's name
    bridge: str
    ip_range: str | None  # the host's slice of the VLAN, where Docker must pick the address
    ip_range6: str | None = None  # its IPv6 slice, on a network with IPv6
    ipv6: bool = False  # the network has IPv6: the probe must get an IPv6 address too
    ipv4: bool = True  # False: an IPv6-only VLAN (Docker's own IPv4 address is no station)

    @property
    def name(self) -> str:
        return station_name(self.host, self.network)


@dataclass(frozen=True)
class Probe:
    """A started probe container."""

    spec: ProbeSpec
    container_id: str
    container_name: str
    address: str  # "10.100.0.64/24", from Docker's IPAM
    mac: str | None
    pid: int
    image: str
    address6: str | None = None  # "fd00:100::ff4d:0:0:0/64", on a network with IPv6

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def host(self) -> str:
        return self.spec.host

    @property
    def netns(self) -> str:
        """Its network namespace as a path: what ping is run in (nsenter --net=PATH)."""
        return f"/proc/{self.pid}/ns/net"

    @property
    def ip(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def in_slice(self) -> bool:
        return self.in_slice_of(4) and self.in_slice_of(6)

    def address_of(self, family: int) -> str | None:
        return self.address6 if family == 6 else self.address

    def slice_of(self, family: int) -> str | None:
        return self.spec.ip_range6 if family == 6 else self.spec.ip_range

    def in_slice_of(self, family: int) -> bool:
        """Whether Docker gave it an address of this family inside the host's slice (no slice: any address)."""
        address, slice_ = self.address_of(family), self.slice_of(family)
        if not slice_:
            return True
        return address is not None and ipaddress.ip_interface(address).ip in ipaddress.ip_network(slice_)


def station_name(host: str, network: str) -> str:
    # '@' never appears in a topology name, so a probe cannot clash with an
    # endpoint or a host; it reads "the web probe at node1".
    return f"{network}@{host}"


def specs(topo: Topology, hosts: Collection[str] | None = None) -> list[ProbeSpec]:
    """A probe per Docker network ovsnet creates, of every host (or of `hosts`), in topology order."""
    out = []
    for host in topo.hosts.values():
        if hosts is not None and host.name not in hosts:
            continue
        for net in DockerNetworks().desire(topo, host, Settings()):
            v6 = net.subnet6 is not None
            out.append(ProbeSpec(host.name, net.name, net.vlan, net.bridge, net.ip_range, net.ip_range6, v6, net.subnet is not None or not v6))
    return out


def as_endpoint(probe: Probe) -> Endpoint:
    """The probe as a test endpoint: its address of each family its VLAN has."""
    addresses = ([probe.address] if probe.spec.ipv4 else []) + ([probe.address6] if probe.address6 else [])
    first, *rest = (ipaddress.ip_interface(a) for a in addresses)
    return Endpoint(probe.name, probe.host, probe.spec.vlan, first, Attach.DOCKER, rest[0] if rest else None)


def with_probes(topo: Topology, probes: Sequence[Probe]) -> Topology:
    """The topology with the probes as endpoints on their networks' bridges: the graph then
    expects of them exactly what it expects of a test endpoint there."""
    return replace(topo, endpoints=tuple(topo.endpoints) + tuple(as_endpoint(p) for p in probes))


def choose(
    mode: bool | None,
    image: str | None,
    wanted: Sequence[ProbeSpec],
    engines: Collection[str],
    no_engine: str,
) -> tuple[list[ProbeSpec], list[str]]:
    """Which probes to start, and notes on those that will not be.

    mode False: none. mode True (--probes): every wanted one, or a UsageError
    saying what is missing. mode None (the default): those the topology asks
    for (a probe image is named) on hosts whose Docker engine is there.
    `engines` are the hosts with an engine; `no_engine` says why others have none.
    """
    if mode is False:
        return [], []
    if not image:
        if mode:
            raise UsageError('--probes needs a probe image: name one in the topology, [verify] probe_image = "local/busybox:1" (see docs/topology.md)')
        return [], []
    if not wanted:
        if mode:
            raise UsageError("--probes: there is no Docker network to probe (no [[hosts.NAME.docker]] entry with a network on the hosts verified)")
        return [], []
    without = sorted({s.host for s in wanted if s.host not in engines}, key=[s.host for s in wanted].index)
    if without and mode:
        raise UsageError(f"--probes: no Docker engine for {', '.join(without)}: {no_engine}")
    notes = [f"no probe containers on {', '.join(without)}: {no_engine}"] if without else []
    return [s for s in wanted if s.host in engines], notes


# --- who started a probe, and is it still there ------------------------------------------


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return "unknown"


def owner_token(run_id: str | None = None) -> str:
    pid = os.getpid()
    return f"{_boot_id()}:{pid}:{procs.start_time(pid) or 0}:{run_id or uuid.uuid4().hex[:8]}"


def _process_alive(pid: int, start: str) -> bool:
    return procs.start_time(pid) == start


_CREATED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _created(text: str) -> datetime | None:
    # Docker writes nanoseconds ("2026-11-28T08:00:00.123456789Z"), which
    # datetime does not read: the fraction does not matter here.
    m = _CREATED.match(text)
    if not m:
        return None
    try:
        return datetime.fromisoformat(m[1] + ("+00:00" if m[2] == "Z" else m[2]))
    except ValueError:
        return None


def is_stale(
    container: Container,
    boot_id: str,
    now: datetime,
    alive: Callable[[int, str], bool] = _process_alive,
) -> bool:
    """Whether a labelled probe was left behind: not running, or its verify is gone.

    Its verify is known gone when it ran on this machine since this boot and
    that process no longer exists (a pid reused since is told apart by its
    start time). A probe started from elsewhere (a remote engine) is stale
    only once older than LIFETIME.
    """
    if not container.running:
        return True
    parts = container.labels.get(OWNER_LABEL, "").split(":")
    if len(parts) == 4 and parts[0] == boot_id and parts[1].isdigit():
        return not alive(int(parts[1]), parts[2])
    created = _created(container.created)
    return created is None or (now - created).total_seconds() > LIFETIME


# --- starting and removing ---------------------------------------------------------------------


class ProbeSet:
    """The probes of one verify run: started on enter, every one removed on exit, whatever happened.

    `engines` maps each host to its Docker daemon address (None: $DOCKER_HOST
    or the local socket). Before starting, each engine must have the image
    (else a UsageError naming it and how to make it), and stale probes left
    by earlier runs are removed.
    """

    def __init__(
        self,
        topology: str,
        image: str,
        wanted: Sequence[ProbeSpec],
        engines: Mapping[str, str | None],
        report: Progress = lambda _m: None,
    ):
        self.topology = topology
        self.image = image
        self.wanted = list(wanted)
        self.engines = {s.host: engines[s.host] for s in self.wanted}
        self.report = report
        self.token = owner_token()
        self.probes: list[Probe] = []
        self.stale_removed: list[str] = []
        self.seconds_start = 0.0
        self.seconds_remove = 0.0

    def __enter__(self) -> ProbeSet:
        t = time.monotonic()
        try:
            if self.wanted:
                self._prepare()
                self._start()
        except BaseException as exc:
            left = self._remove_all()
            if left:
                exc.add_note(f"probe containers that could not be removed: {'; '.join(left)}")
            raise
        self.seconds_start = time.monotonic() - t
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        t = time.monotonic()
        left = self._remove_all()
        self.seconds_remove = time.monotonic() - t
        if left:
            text = f"probe containers that could not be removed: {'; '.join(left)}"
            if exc is not None:
                exc.add_note(text)
            else:
                raise BackendError(f"verify: {text}; remove them by their label {PROBE_LABEL}")

    def _docker(self, url: str | None, slow: bool = False):
        from ovsnet.backends.docker import START_TIMEOUT, TIMEOUT, Docker

        return Docker(url, timeout=START_TIMEOUT if slow else TIMEOUT)

    def _urls(self) -> list[str | None]:
        return list(dict.fromkeys(self.engines.values()))

    def _prepare(self) -> None:
        """On each engine, at once: the image must be there (checked before anything starts),
        and probes left by earlier runs go."""
        from ovsnet.backends.docker import resolve_host

        boot, now = _boot_id(), datetime.now(timezone.utc)

        def one(url: str | None) -> list[str]:
            with self._docker(url) as d:
                if not d.has_image(self.image):
                    hosts = ", ".join(h for h, u in self.engines.items() if u == url)
                    raise UsageError(
                        f"probe image {self.image} (the topology's verify.probe_image) is not on the Docker engine of "
                        f"{hosts} ({resolve_host(url)}); verify never pulls images: make it there first, e.g. "
                        f"`docker import ROOTFS.tar {self.image}` with a root filesystem holding a static busybox "
                        "(a probe only runs `sleep`), or `docker tag` an image you have to that name; "
                        "in the lab, `ovsnet lab up FILE --docker` makes local/busybox:1"
                    )
                removed = []
                for c in d.containers(PROBE_LABEL):
                    if is_stale(c, boot, now):
                        d.remove_container(c.id)
                        removed.append(c.name)
                return removed

        urls = self._urls()
        with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(urls)))) as pool:
            for removed in pool.map(one, urls):
                self.stale_removed += removed
        if self.stale_removed:
            self.report(f"probes: removed {len(self.stale_removed)} left by an earlier verify ({', '.join(self.stale_removed[:5])})")

    def _start(self) -> None:
        run_id = self.token.rsplit(":", 1)[1]

        def one(spec: ProbeSpec) -> Probe:
            labels = {PROBE_LABEL: self.topology, OWNER_LABEL: self.token, HOST_LABEL: spec.host, NETWORK_LABEL: spec.network}
            name = f"ovsnet-probe-{self.topology}-{spec.host}-{spec.network}-{run_id}"
            with self._docker(self.engines[spec.host], slow=True) as d:
                c = d.run_container(self.image, COMMAND, name=name, network=spec.network, labels=labels)
            attach = c.networks.get(spec.network)
            if attach is None or not attach.ip or not c.pid or spec.ipv6 and not attach.ip6:
                missing = "IPv4" if attach is None or not attach.ip else "IPv6" if spec.ipv6 and not attach.ip6 else ""
                got = f"got no {missing} address on Docker network {spec.network}" if missing else f"is on Docker network {spec.network}"
                raise BackendError(
                    f"probe {spec.name}: container {c.name} {got}"
                    + ("" if c.pid else " (it is not running: can the image run `sleep`?)")
                )
            return Probe(spec, c.id, c.name, attach.interface, attach.mac, c.pid, self.image, attach.interface6)

        # The calls' results come back in order; a failure waits for the rest
        # (the pool's exit), so everything started is known before removal.
        with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(self.wanted)))) as pool:
            futures = [pool.submit(one, s) for s in self.wanted]
            errors = []
            for f in futures:
                try:
                    self.probes.append(f.result())
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]
        self.report(f"probes: {len(self.probes)} containers from {self.image}: "
                    + ", ".join(f"{p.name} {p.ip}" + (f" {p.address6.split('/')[0]}" if p.address6 else "") for p in self.probes))

    def _remove_all(self) -> list[str]:
        """Remove this run's probes, found by their owner label (so also those whose start
        was interrupted); what could not be removed, as text."""
        left: list[str] = []

        def sweep(url: str | None) -> None:
            try:
                # Removing a running container (kill, unmount, network teardown) is as slow as starting one.
                with self._docker(url, slow=True) as d:
                    ids = {p.container_id for p in self.probes if self.engines[p.host] == url}
                    ids |= {c.id for c in d.containers(OWNER_LABEL, self.token)}
                    for cid in ids:
                        d.remove_container(cid)
                    still = d.containers(OWNER_LABEL, self.token)
                    left.extend(f"{c.name} on {d.url}" for c in still if c.running)
            except BackendError as exc:
                left.append(str(exc))

        if not self.engines:
            return left
        with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(self._urls())))) as pool:
            list(pool.map(sweep, self._urls()))
        return left
