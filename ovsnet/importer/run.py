"""`ovsnet import`: read a host, describe it, settle its address slices, check the whole file.

`read` is the I/O (the readers `plan` uses); `settle` is pure: it turns a
snapshot into the file's text and proves the text is a valid topology,
alone or together with the file it is added to. Docker's ip_range of each
network is kept: when the address plan of the file would give the host
another slice, the range is pinned (`ip_range = ...`), since a different
slice would have `up` recreate the network.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, replace
from typing import Any

from ovsnet.apply.live import Live
from ovsnet.apply.target import Target
from ovsnet.current import Current, OvsState
from ovsnet.errors import BackendError, UsageError
from ovsnet.importer import write
from ovsnet.importer.describe import Imported, describe
from ovsnet.topology import Checked, addressing, check
from ovsnet.topology.load import parse
from ovsnet.topology.model import DockerBridge, Host, IPNetwork, Topology


@dataclass(frozen=True)
class Into:
    """The existing file a host is added to."""

    text: str
    source: str


@dataclass(frozen=True)
class ImportResult:
    text: str  # the whole file to write
    checked: Checked  # that file, loaded and validated
    imported: Imported
    host: Host  # as written (with any pinned ip_range)
    left_out: tuple[str, ...]  # what the file does not say, for stderr


def read(target: Target) -> tuple[Current, list[str]]:
    """The host as `plan` reads it, Docker included; OVSDB may be absent (a flat host has no OVS)."""
    live = Live(target)
    notes: list[str] = []
    try:
        try:
            ovs = live.ovsdb.read()
        except BackendError as exc:
            ovs = OvsState()
            notes.append(f"OVSDB was not read ({exc}): no OVS bridge is imported")
        current = replace(live.read(frozenset({"docker"})), ovs=ovs)
        if current.docker is None:
            notes.append(f"Docker was not read ({live.docker_error}): no Docker network is imported")
    finally:
        live.close()
    return current, notes


def settle(host: str, current: Current, into: Into | None = None, name: str | None = None,
           source: str = "<import>", notes: tuple[str, ...] = ()) -> ImportResult:
    """The file's text for this snapshot, validated; ConfigError with every finding when it cannot be valid."""
    raw: dict[str, Any] = {}
    if into is not None:
        raw = _raw(into)
        hosts = raw.get("hosts")
        if isinstance(hosts, dict) and host in hosts:
            raise UsageError(f"{into.source} already has a host named {host}; import it under another --host name, or remove it first")
        source = into.source
    try:
        imp = describe(host, current, write.known_vlans(raw))
    except UsageError as exc:
        # Nothing to import, and a backend that did not answer may be why: say both.
        raise UsageError("; ".join([str(exc), *notes])) from None
    left = list(notes) + list(imp.left_out)
    file_name = _file_name(imp, into, raw, name, source, left)

    def compose(h: Host) -> str:
        if into is not None:
            return write.add_to(into.text, imp, h)
        return write.new_file(imp, h, file_name, "given with --name" if name else "from ovsnet's marks on the host")

    h = imp.host
    # The address plan of the file, before pinning: a new file's is known
    # without reading it back; an existing file must be read for its hosts.
    vlans = {v.name: v for v in imp.vlans.values()}
    topo = Topology(file_name or "topology", vlans, {h.name: h}, source=source) if into is None else parse(compose(h), source)
    h = _pin(imp, h, topo, left)
    text = compose(h)
    topo = parse(text, source)
    _flat_slice(imp, h, topo, left)
    return ImportResult(text, check(topo), imp, h, tuple(left))


def _raw(into: Into) -> dict[str, Any]:
    try:
        return tomllib.loads(into.text)
    except tomllib.TOMLDecodeError:
        parse(into.text, into.source)  # raises the ConfigError that says where
        raise


def _file_name(imp: Imported, into: Into | None, raw: dict[str, Any], name: str | None, source: str, left: list[str]) -> str | None:
    if into is None:
        return name or imp.topology
    if name:
        raise UsageError("--name names a new file: with --into the file keeps its own name")
    from pathlib import Path

    named = raw.get("name") if isinstance(raw.get("name"), str) else Path(source).stem
    if imp.topology and imp.topology != named:
        left.append(f"the host's objects carry ovsnet's marks of topology {imp.topology}, and this file is {named}: "
                    "to this file they are not ovsnet's, and `up --adopt` takes them over")
    return None


def _slices(topo: Topology) -> dict[tuple[str, str, str], addressing.Slice]:
    """Every slice of the file, of both families: (host, VLAN, key suffix) -> slice."""
    slices, _ = addressing.plan(topo)
    out = {(h, v, ""): s for (h, v), s in slices.items()}
    out.update({(h, v, "6"): s for (h, v), s in addressing.plan6(topo).items()})
    return out


def _with_range(d: DockerBridge, suffix: str, net: IPNetwork | None) -> DockerBridge:
    return replace(d, ip_range6=net) if suffix == "6" else replace(d, ip_range=net)


def _pin(imp: Imported, h: Host, topo: Topology, left: list[str]) -> Host:
    """Pin each Docker network's ranges (each family's) where the address plan would hand this host another slice."""
    slices = _slices(topo)
    docker = list(h.docker)
    pinned: dict[tuple[int, str], str] = {}
    for i, d in enumerate(docker):
        vlan = topo.vlans.get(d.vlan)
        if not d.network or vlan is None:
            continue
        for st in vlan.stacks:
            # Docker's ranges are read by family; the file's keys by suffix (an IPv6-only VLAN's is ip_range).
            actual = (imp.ranges6 if st.version == 6 else imp.ranges).get(d.bridge)
            if actual is None:
                continue
            planned = slices.get((h.name, d.vlan, st.suffix))
            if planned is None or str(planned.network) != actual:
                docker[i] = _with_range(docker[i], st.suffix, ipaddress.ip_network(actual))
                pinned[(i, st.suffix)] = actual
    if not pinned:
        return h
    others = {k: s.network for k, s in slices.items() if k[0] != h.name}
    _, findings = addressing.plan(replace(topo, hosts={**topo.hosts, h.name: replace(h, docker=tuple(docker))}))
    for (i, suffix), actual in pinned.items():
        why = [f.message for f in findings if f.path.startswith(f"hosts.{h.name}.docker[{i}]")]
        if why:
            docker[i] = _with_range(docker[i], suffix, h.docker[i].explicit(suffix))
            left.append(f"Docker network {h.docker[i].network} hands out {actual}, which cannot be this host's slice in the file "
                        f"({'; '.join(why)}): the file gives it the address plan's slice, and up --adopt would recreate the network")
    final = replace(h, docker=tuple(docker))
    after = _slices(replace(topo, hosts={**topo.hosts, h.name: final}))
    moved = [f"{k[0]} on VLAN {k[1]} ({net} -> {after[k].network})" for k, net in others.items() if k in after and after[k].network != net]
    if moved:
        raise UsageError(f"pinning host {h.name}'s Docker ranges would move other hosts' slices: {', '.join(moved)}; "
                         "import this host into a file of its own, or give it ip_range values by hand")
    return final


def _flat_slice(imp: Imported, h: Host, topo: Topology, left: list[str]) -> None:
    if h.flat is None or not h.flat.vlan or h.flat.bridge not in imp.ranges:
        return
    slices, _ = addressing.plan(topo)
    planned = slices.get((h.name, h.flat.vlan))
    actual = imp.ranges[h.flat.bridge]
    if planned is None or str(planned.network) != actual:
        left.append(f"dockerd on {h.flat.bridge} hands out {actual} (--fixed-cidr), but this host's slice in the file is "
                    f"{planned.network if planned else 'none'}: a flat host cannot pin its range; "
                    f"`ovsnet docker-config FILE --host {h.name}` prints the daemon.json that matches the file")

