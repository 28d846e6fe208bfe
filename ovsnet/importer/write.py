"""An imported host as topology TOML: a file of its own, or tables added to an existing file.

Only what differs from the documented defaults is written (docs/topology.md),
in the order the docs list the keys; each guess is a comment at its place.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from ovsnet.importer.describe import Imported
from ovsnet.importer.facts import Note
from ovsnet.topology.model import DEFAULT_MTU, Host, LacpTime, Layout, Vlan

HEADER = """\
# Written by `ovsnet import --host {host}`: what the host has, as a topology file.
# Check every "guessed" comment. `ovsnet plan FILE --host {host}` on this host
# should then only find objects to adopt, and `ovsnet up FILE --host {host} --adopt`
# takes them over without changing the network."""
SEPARATOR = "# --- host {host}, added by `ovsnet import --host {host}` ---"


def value(v: Any) -> str:
    """A TOML value: strings in basic quotes (JSON's escapes are TOML's), lists, integers, booleans."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)


class _Lines:
    def __init__(self, notes: Iterable[Note]):
        self.out: list[str] = []
        self.notes: dict[str, list[str]] = {}
        for n in notes:
            self.notes.setdefault(n.path, []).append(n.text)

    def comment(self, path: str) -> str:
        texts = self.notes.pop(path, [])
        return f"  # {'; '.join(texts)}" if texts else ""

    def table(self, header: str, path: str) -> None:
        if self.out and self.out[-1] != "":
            self.out.append("")
        self.out.append(header + self.comment(path))

    def key(self, path: str, key: str, v: Any) -> None:
        self.out.append(f"{key} = {value(v)}{self.comment(f'{path}.{key}')}")


def vlan_lines(lines: _Lines, v: Vlan) -> None:
    path = f"vlans.{v.name}"
    lines.table(f"[{path}]", path)
    lines.key(path, "id", v.id)
    if v.subnet is not None:
        lines.key(path, "subnet", str(v.subnet))
    if v.router is not None:
        lines.key(path, "router", str(v.router))
    if v.mtu != DEFAULT_MTU:
        lines.key(path, "mtu", v.mtu)
    if v.host_slice is not None:
        lines.key(path, "host_slice", v.host_slice)
    if v.subnet6 is not None:
        lines.key(path, "subnet6", str(v.subnet6))
    if v.router6 is not None:
        lines.key(path, "router6", str(v.router6))
    if v.host_slice6 is not None:
        lines.key(path, "host_slice6", v.host_slice6)


def host_lines(lines: _Lines, h: Host) -> None:
    path = f"hosts.{h.name}"
    lines.table(f"[{path}]", path)
    if h.layout is Layout.FLAT:
        lines.key(path, "layout", "flat")
    else:
        lines.out.append(f'bridge = {{ name = {value(h.bridge.name)}, datapath = {value(h.bridge.datapath.value)} }}')
    for i, up in enumerate(h.uplinks):
        p = f"{path}.uplinks[{i}]"
        lines.table(f"[[{path}.uplinks]]", p)
        if up.bond is None:
            lines.key(p, "nic", up.nic)
        else:
            lines.key(p, "nics", list(up.bond.nics))
            lines.key(p, "bond", up.bond.name)
            lines.key(p, "bond_mode", up.bond.mode.value)
            lines.key(p, "lacp", up.bond.lacp.value)
            if up.bond.lacp_time is not LacpTime.SLOW:
                lines.key(p, "lacp_time", up.bond.lacp_time.value)
        lines.key(p, "vlans", list(up.vlans))
        if up.native_vlan:
            lines.key(p, "native_vlan", up.native_vlan)
        if up.mtu is not None:
            lines.key(p, "mtu", up.mtu)
    m = h.management
    if m is not None:
        p = f"{path}.management"
        lines.table(f"[{p}]", p)
        if h.layout is Layout.VLAN:
            lines.key(p, "port", m.port)
        lines.key(p, "addresses", [str(a) for a in m.addresses])
        if m.gateway is not None:
            lines.key(p, "gateway", str(m.gateway))
        if m.gateway6 is not None:
            lines.key(p, "gateway6", str(m.gateway6))
        if m.dns:
            lines.key(p, "dns", [str(d) for d in m.dns])
        if m.vlan:
            lines.key(p, "vlan", m.vlan)
    for i, d in enumerate(h.docker):
        p = f"{path}.docker[{i}]"
        lines.table(f"[[{path}.docker]]", p)
        lines.key(p, "bridge", d.bridge)
        lines.key(p, "vlan", d.vlan)
        if d.network:
            lines.key(p, "network", d.network)
        if d.ip_range is not None:
            lines.key(p, "ip_range", str(d.ip_range))
        if d.ip_range6 is not None:
            lines.key(p, "ip_range6", str(d.ip_range6))
        if d.mtu is not None:
            lines.key(p, "mtu", d.mtu)
        if d.patch_ovs != f"ovs-{d.bridge}":
            lines.key(p, "patch_ovs", d.patch_ovs)
        if d.patch_bridge != f"lnx-{d.bridge}":
            lines.key(p, "patch_bridge", d.patch_bridge)
    for i, ap in enumerate(h.access_ports):
        p = f"{path}.access_ports[{i}]"
        lines.table(f"[[{path}.access_ports]]", p)
        lines.key(p, "interface", ap.interface)
        lines.key(p, "vlan", ap.vlan)
    if h.flat is not None:
        p = f"{path}.flat"
        lines.table(f"[{p}]", p)
        lines.key(p, "bridge", h.flat.bridge)
        lines.key(p, "nic", h.flat.nic)
        if h.flat.vlan:
            lines.key(p, "vlan", h.flat.vlan)


def _body(imp: Imported, host: Host, notes: Iterable[Note]) -> _Lines:
    lines = _Lines(notes)
    for vid in sorted(imp.new_vlans):
        vlan_lines(lines, imp.vlans[vid])
    host_lines(lines, host)
    return lines


def _leftover_comments(lines: _Lines) -> list[str]:
    # Guesses whose key was not written (or that are about the host as a whole) still get said.
    return [f"# {text}" for texts in lines.notes.values() for text in texts]


def new_file(imp: Imported, host: Host, name: str | None, name_from: str) -> str:
    """A whole topology file holding this one host."""
    body = _body(imp, host, imp.guesses)
    out = [HEADER.format(host=host.name), *_leftover_comments(body)]
    if name:
        out.append(f"name = {value(name)}  # {name_from}")
    return "\n".join(out + [""] + body.out) + "\n"


def add_to(text: str, imp: Imported, host: Host) -> str:
    """The existing file's text with this host (and the VLANs it adds) appended: nothing before it changes."""
    body = _body(imp, host, imp.guesses)
    head = text if text.endswith("\n") else text + "\n"
    return head + "\n" + "\n".join([SEPARATOR.format(host=host.name), *_leftover_comments(body), *body.out]) + "\n"


def known_vlans(raw: Mapping[str, Any]) -> dict[int, Vlan]:
    """The VLANs of an existing file's TOML, leniently (the whole file is validated afterwards)."""
    import ipaddress

    out: dict[int, Vlan] = {}
    vlans = raw.get("vlans")
    if not isinstance(vlans, dict):
        return out
    for name, body in vlans.items():
        if not isinstance(body, dict) or not isinstance(body.get("id"), int):
            continue
        subnet, router = _lenient(body, "subnet", ipaddress.ip_network), _lenient(body, "router", ipaddress.ip_address)
        subnet6, router6 = _lenient(body, "subnet6", ipaddress.ip_network), _lenient(body, "router6", ipaddress.ip_address)
        mtu = body["mtu"] if isinstance(body.get("mtu"), int) else DEFAULT_MTU
        host_slice = body.get("host_slice") if isinstance(body.get("host_slice"), int) else None
        host_slice6 = body.get("host_slice6") if isinstance(body.get("host_slice6"), int) else None
        out.setdefault(body["id"], Vlan(name, body["id"], subnet, router, mtu, host_slice, subnet6, router6, host_slice6))
    return out


def _lenient(body: Mapping[str, Any], key: str, conv: Any) -> Any:
    """One address value of a VLAN, or None when it is missing or not one (validation says why later)."""
    try:
        return conv(body[key]) if isinstance(body.get(key), str) else None
    except ValueError:
        return None
