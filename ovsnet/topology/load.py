"""topology.toml to the model, with every error located by its key path.

Loading never stops at the first problem: each bad key becomes a Finding
and the whole file is read, so a person fixes everything in one pass.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from ovsnet.errors import ConfigError, Finding
from ovsnet.topology.model import (
    DEFAULT_MTU,
    DEFAULT_OVSDB,
    AccessPort,
    Attach,
    Cable,
    CableEnd,
    Datapath,
    DockerBridge,
    Endpoint,
    FlatBridge,
    Host,
    LabSpec,
    Layout,
    Management,
    OvsBridgeSpec,
    Router,
    Topology,
    Uplink,
    VerifySettings,
    Vlan,
)

T = TypeVar("T")
_MISSING = object()
# Names of VLANs, hosts and endpoints end up in Docker network names, lab
# namespace names and OVSDB external_ids: keep them to a safe alphabet.
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
_NAME_HINT = "use letters, digits, '-', '_' or '.', starting with a letter, at most 63 characters"
MAX_FILE_BYTES = 4 * 1024 * 1024


class _Invalid(Exception):
    """Raised by a converter; the reader turns it into a Finding."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


def quoted(text: str, limit: int = 60) -> str:
    """A value for an error message: quoted, and cut short when huge."""
    if len(text) <= limit:
        return f"'{text}'"
    return f"'{text[:limit]}...' ({len(text)} characters)"


def _type_name(value: Any) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "known keys: " + ", ".join(sorted(choices)) if choices else ""


# --- converters: raw TOML value -> typed value, or _Invalid ----------------


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_type_name(value)}", 'quote it: key = "value"')
    return value


def as_name(value: Any) -> str:
    text = as_str(value)
    if not _NAME_RE.match(text):
        raise _Invalid(f"{quoted(text)} is not a usable name", _NAME_HINT)
    return text


def as_ifname(value: Any) -> str:
    # The kernel's rules (15 bytes, no '/', ':', whitespace) are checked by
    # validation so they are reported with the object that owns the name.
    text = as_str(value)
    if not text:
        raise _Invalid("interface name is empty", "give the interface's name, e.g. \"eth1\"")
    return text


def as_int(lo: int, hi: int) -> Callable[[Any], int]:
    def conv(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"expected an integer from {lo} to {hi}, got {_type_name(value)}")
        if not lo <= value <= hi:
            raise _Invalid(f"{value} is out of range", f"use an integer from {lo} to {hi}")
        return value

    return conv


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_type_name(value)}")
    return value


def as_enum(enum_cls: type) -> Callable[[Any], Any]:
    choices = [m.value for m in enum_cls]

    def conv(value: Any):
        text = as_str(value)
        try:
            return enum_cls(text)
        except ValueError:
            raise _Invalid(f"{quoted(text)} is not one of {', '.join(choices)}", _suggest(text, choices)) from None

    return conv


def as_ip(value: Any):
    text = as_str(value)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise _Invalid(f"{quoted(text)} is not an IP address", 'write it like "192.0.2.1" or "2001:db8::1"') from None


def as_iface_addr(value: Any):
    text = as_str(value)
    if "/" not in text:
        raise _Invalid(f"{quoted(text)} has no prefix length", f'write it with its prefix, e.g. "{text[:40]}/24"')
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        raise _Invalid(f"{quoted(text)} is not an address with prefix", 'write it like "192.0.2.10/24"') from None


def as_network(value: Any):
    text = as_str(value)
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        try:
            iface = ipaddress.ip_interface(text)
        except ValueError:
            raise _Invalid(f"{quoted(text)} is not a subnet", 'write it like "10.100.0.0/24"') from None
        raise _Invalid(f"{quoted(text)} has host bits set", f'did you mean "{iface.network}"?') from None


# Docker's reference grammar (distribution/reference): an optional registry
# (it has a '.' or ':', or is "localhost"), lowercase path components, an
# optional tag and digest. Checked here so a typo is a finding with its key
# path, not an Engine API error in the middle of `verify`.
_IMAGE_DOMAIN = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$")
_IMAGE_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_IMAGE_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_IMAGE_HINT = 'write a local image reference such as "local/busybox:1" (lowercase repository, optional :tag)'


def as_image_ref(value: Any) -> str:
    text = as_str(value)
    if not text:
        raise _Invalid("image reference is empty", _IMAGE_HINT)
    if len(text) > 255 or any(c.isspace() or not c.isprintable() for c in text):
        raise _Invalid(f"{quoted(text)} is not an image reference", _IMAGE_HINT)
    name, at, digest = text.partition("@")
    if at and not _IMAGE_DIGEST.match(digest):
        raise _Invalid(f"{quoted(text)} has a malformed digest", 'write it as "NAME@sha256:<64 hex digits>", or drop the digest')
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _IMAGE_TAG.match(tag):
            raise _Invalid(f"{quoted(text)} has a malformed tag {quoted(tag)}", "a tag is letters, digits, '_', '.' and '-', at most 128")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _IMAGE_DOMAIN.match(parts[0]):
            raise _Invalid(f"{quoted(text)} has a malformed registry {quoted(parts[0])}", _IMAGE_HINT)
        parts = parts[1:]
    bad = next((p for p in parts if not _IMAGE_PATH.match(p)), None)
    if bad is not None:
        hint = f'repository names are lowercase: "{text.lower()}"?' if _IMAGE_PATH.match(bad.lower()) else _IMAGE_HINT
        raise _Invalid(f"{quoted(text)} is not an image reference ({quoted(bad)} is not a repository name component)", hint)
    return text


def as_list(item: Callable[[Any], T]) -> Callable[[Any], list]:
    # Items are converted one by one by the reader so each gets its own path.
    def conv(value: Any) -> list:
        if not isinstance(value, list):
            raise _Invalid(f"expected a list, got {_type_name(value)}", 'write it as ["a", "b"]')
        return value

    conv.item = item  # type: ignore[attr-defined]
    return conv


# --- the reader --------------------------------------------------------------


class _Reader:
    def __init__(self, source: str, text: str):
        self.source = source
        self.text = text
        self.findings: list[Finding] = []
        self.vlan_names: dict[str, str] = {}  # accepted spellings -> VLAN name
        self.vlan_ids: dict[int, str] = {}

    def error(self, path: str, message: str, hint: str = "") -> None:
        self.findings.append(Finding(path, message, hint, line=self._line_of(path)))

    def _line_of(self, path: str) -> int | None:
        # tomllib keeps no positions; find the key's last component in the
        # text, which is right for the usual one-key-per-line file.
        last = re.sub(r"\[\d+\]$", "", path.rsplit(".", 1)[-1]) if path else ""
        if not last:
            return None
        pattern = re.compile(rf'^\s*(\[+[^\]]*\b{re.escape(last)}\]+|"?{re.escape(last)}"?\s*=)', re.M)
        match = pattern.search(self.text)
        return self.text.count("\n", 0, match.start()) + 1 if match else None

    def table(self, value: Any, path: str, known: tuple[str, ...]) -> dict | None:
        if not isinstance(value, dict):
            self.error(path, f"expected a table, got {_type_name(value)}", f"write it as [{path}]")
            return None
        for key in value:
            if key not in known:
                self.error(_join(path, key), f"unknown key '{key}'", _suggest(key, list(known)))
        return value

    def get(self, tbl: dict, path: str, key: str, conv: Callable[[Any], T], default: Any = _MISSING) -> T:
        """Convert tbl[key]; on a problem record it and return the default (or None)."""
        full = _join(path, key)
        if key not in tbl:
            if default is _MISSING:
                self.error(full, f"missing required key '{key}'")
                return None  # type: ignore[return-value]
            return default
        try:
            value = conv(tbl[key])
        except _Invalid as exc:
            self.error(full, exc.message, exc.hint)
            return None if default is _MISSING else default  # type: ignore[return-value]
        item = getattr(conv, "item", None)
        if item is not None:
            out = []
            for i, raw in enumerate(value):
                try:
                    out.append(item(raw))
                except _Invalid as exc:
                    self.error(f"{full}[{i}]", exc.message, exc.hint)
            return out  # type: ignore[return-value]
        return value

    def as_vlan(self, value: Any) -> str:
        """A VLAN reference: its name, or its numeric id."""
        if isinstance(value, bool):
            raise _Invalid("expected a VLAN name or id, got true/false")
        if isinstance(value, int):
            if value in self.vlan_ids:
                return self.vlan_ids[value]
            raise _Invalid(f"no VLAN with id {value}", f"declare it under [vlans.NAME] with id = {value}")
        text = as_str(value)
        if text in self.vlan_names:
            return self.vlan_names[text]
        raise _Invalid(f"no VLAN named {quoted(text)}", _suggest(text, list(self.vlan_names)) or "declare it under [vlans.NAME]")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- sections ----------------------------------------------------------------


def _load_vlans(r: _Reader, raw: Any) -> dict[str, Vlan]:
    vlans: dict[str, Vlan] = {}
    if not isinstance(raw, dict):
        r.error("vlans", f"expected a table, got {_type_name(raw)}", "write each VLAN as [vlans.NAME]")
        return vlans
    for name, body in raw.items():
        path = f"vlans.{name}"
        try:
            as_name(name)
        except _Invalid as exc:
            r.error(path, f"VLAN name: {exc.message}", exc.hint)
            continue
        b = r.table(body, path, ("id", "subnet", "router", "mtu", "host_slice", "description"))
        if b is None:
            continue
        vid = r.get(b, path, "id", as_int(1, 4094))
        subnet = r.get(b, path, "subnet", as_network, None)
        router = r.get(b, path, "router", as_ip, None)
        mtu = r.get(b, path, "mtu", as_int(68, 65535), DEFAULT_MTU)
        host_slice = r.get(b, path, "host_slice", as_int(1, 128), None)
        r.get(b, path, "description", as_str, "")
        if vid is None:
            continue
        vlans[name] = Vlan(name, vid, subnet, router, mtu, host_slice)
        r.vlan_names[name] = name
        r.vlan_names.setdefault(str(vid), name)
        # Duplicate ids are a validation finding; the first keeps the lookup.
        r.vlan_ids.setdefault(vid, name)
    return vlans


_HOST_KEYS = ("layout", "ovsdb", "docker_host", "docker_required", "bridge", "uplinks", "management", "docker", "access_ports", "flat", "description")


def _load_host(r: _Reader, name: str, body: Any) -> Host | None:
    path = f"hosts.{name}"
    try:
        as_name(name)
    except _Invalid as exc:
        r.error(path, f"host name: {exc.message}", exc.hint)
        return None
    b = r.table(body, path, _HOST_KEYS)
    if b is None:
        return None
    r.get(b, path, "description", as_str, "")
    layout = r.get(b, path, "layout", as_enum(Layout), Layout.VLAN) or Layout.VLAN
    ovsdb = r.get(b, path, "ovsdb", as_str, DEFAULT_OVSDB) or DEFAULT_OVSDB
    docker_host = r.get(b, path, "docker_host", as_str, None)
    docker_required = r.get(b, path, "docker_required", as_bool, False)

    bridge = OvsBridgeSpec()
    if "bridge" in b:
        bp = f"{path}.bridge"
        if isinstance(b["bridge"], str):  # shorthand: bridge = "br-ovs"
            bridge = OvsBridgeSpec(name=r.get(b, path, "bridge", as_ifname, "br-ovs") or "br-ovs")
        else:
            bt = r.table(b["bridge"], bp, ("name", "datapath"))
            if bt is not None:
                bridge = OvsBridgeSpec(
                    name=r.get(bt, bp, "name", as_ifname, "br-ovs") or "br-ovs",
                    datapath=r.get(bt, bp, "datapath", as_enum(Datapath), Datapath.SYSTEM) or Datapath.SYSTEM,
                )

    uplinks = []
    for i, raw in enumerate(r.get(b, path, "uplinks", as_list(lambda v: v), []) or []):
        up = _load_uplink(r, f"{path}.uplinks[{i}]", raw)
        if up:
            uplinks.append(up)

    management = None
    if "management" in b:
        management = _load_management(r, f"{path}.management", b["management"])

    docker = []
    for i, raw in enumerate(r.get(b, path, "docker", as_list(lambda v: v), []) or []):
        d = _load_docker(r, f"{path}.docker[{i}]", raw)
        if d:
            docker.append(d)

    access = []
    for i, raw in enumerate(r.get(b, path, "access_ports", as_list(lambda v: v), []) or []):
        ap = f"{path}.access_ports[{i}]"
        t = r.table(raw, ap, ("interface", "vlan"))
        if t is None:
            continue
        iface = r.get(t, ap, "interface", as_ifname)
        vlan = r.get(t, ap, "vlan", r.as_vlan)
        if iface and vlan:
            access.append(AccessPort(iface, vlan))

    flat = None
    if "flat" in b:
        fp = f"{path}.flat"
        ft = r.table(b["flat"], fp, ("bridge", "nic", "vlan", "network"))
        if ft is not None:
            fbridge = r.get(ft, fp, "bridge", as_ifname, "br0")
            fnic = r.get(ft, fp, "nic", as_ifname)
            fvlan = r.get(ft, fp, "vlan", r.as_vlan, None)
            fnet = r.get(ft, fp, "network", as_name, None)
            if fbridge and fnic:
                flat = FlatBridge(fbridge, fnic, fvlan, fnet)
    if layout is Layout.FLAT and flat is None and "flat" not in b:
        r.error(path, "layout = \"flat\" needs a [" + path + ".flat] table", 'add bridge = "br0" and nic = "eth0" there')
    if layout is Layout.VLAN and "flat" in b:
        r.error(f"{path}.flat", "a [flat] table on a host with layout \"vlan\"", 'set layout = "flat" or remove the table')

    return Host(
        name=name,
        layout=layout,
        ovsdb=ovsdb,
        docker_host=docker_host,
        docker_required=bool(docker_required),
        bridge=bridge,
        uplinks=tuple(uplinks),
        management=management,
        docker=tuple(docker),
        access_ports=tuple(access),
        flat=flat,
    )


def _load_uplink(r: _Reader, path: str, raw: Any) -> Uplink | None:
    t = r.table(raw, path, ("nic", "vlans", "native_vlan", "mtu"))
    if t is None:
        return None
    nic = r.get(t, path, "nic", as_ifname)
    vlans = r.get(t, path, "vlans", as_list(r.as_vlan))
    native = r.get(t, path, "native_vlan", r.as_vlan, None)
    mtu = r.get(t, path, "mtu", as_int(68, 65535), None)
    if vlans is not None and not vlans and "vlans" in t:
        r.error(f"{path}.vlans", "a trunk carrying no VLAN", "list the VLANs this NIC carries")
    if nic is None or vlans is None:
        return None
    return Uplink(nic, tuple(vlans), native, mtu)


def _load_management(r: _Reader, path: str, raw: Any) -> Management | None:
    t = r.table(raw, path, ("addresses", "gateway", "dns", "vlan", "port", "from_nic"))
    if t is None:
        return None
    addresses = r.get(t, path, "addresses", as_list(as_iface_addr))
    gateway = r.get(t, path, "gateway", as_ip, None)
    dns = r.get(t, path, "dns", as_list(as_ip), [])
    vlan = r.get(t, path, "vlan", r.as_vlan, None)
    port = r.get(t, path, "port", as_ifname, "mgmt0")
    from_nic = r.get(t, path, "from_nic", as_ifname, None)
    if addresses is None:
        return None
    if not addresses and "addresses" in t:
        r.error(f"{path}.addresses", "no address given", 'list the host\'s own addresses, e.g. ["192.0.2.11/24"]')
    return Management(tuple(addresses), gateway, tuple(dns or ()), vlan, port or "mgmt0", from_nic)


def _load_docker(r: _Reader, path: str, raw: Any) -> DockerBridge | None:
    t = r.table(raw, path, ("bridge", "vlan", "network", "ip_range", "mtu", "patch_ovs", "patch_bridge"))
    if t is None:
        return None
    bridge = r.get(t, path, "bridge", as_ifname)
    vlan = r.get(t, path, "vlan", r.as_vlan)
    network = r.get(t, path, "network", as_name, None)
    ip_range = r.get(t, path, "ip_range", as_network, None)
    mtu = r.get(t, path, "mtu", as_int(68, 65535), None)
    if bridge is None or vlan is None:
        return None
    # Named after the bridge, not the VLAN, so moving a bridge to another VLAN
    # re-tags its port instead of renaming it.
    patch_ovs = r.get(t, path, "patch_ovs", as_ifname, f"ovs-{bridge}") or f"ovs-{bridge}"
    patch_bridge = r.get(t, path, "patch_bridge", as_ifname, f"lnx-{bridge}") or f"lnx-{bridge}"
    return DockerBridge(bridge, vlan, patch_ovs, patch_bridge, network, ip_range, mtu)


def _load_router(r: _Reader, raw: Any) -> Router | None:
    t = r.table(raw, "router", ("name", "vlans"))
    if t is None:
        return None
    name = r.get(t, "router", "name", as_name, "router") or "router"
    vlans = r.get(t, "router", "vlans", as_list(r.as_vlan))
    if vlans is None:
        return None
    return Router(name, tuple(vlans))


def _load_endpoints(r: _Reader, raw: Any) -> list[Endpoint]:
    out = []
    if not isinstance(raw, list):
        r.error("endpoints", f"expected a list of tables, got {_type_name(raw)}", "write each as [[endpoints]]")
        return out
    for i, item in enumerate(raw):
        path = f"endpoints[{i}]"
        t = r.table(item, path, ("name", "host", "vlan", "address", "attach"))
        if t is None:
            continue
        name = r.get(t, path, "name", as_name)
        host = r.get(t, path, "host", as_name)
        vlan = r.get(t, path, "vlan", r.as_vlan)
        address = r.get(t, path, "address", as_iface_addr)
        attach = r.get(t, path, "attach", as_enum(Attach), Attach.DOCKER)
        if None not in (name, host, vlan, address, attach):
            out.append(Endpoint(name, host, vlan, address, attach))
    return out


def _parse_end(value: Any) -> CableEnd:
    text = as_str(value)
    node, sep, nic = text.partition(":")
    if not node or (sep and not nic):
        raise _Invalid(f"{quoted(text)} is not a cable end", 'write "HOST:NIC" or the switch\'s name')
    return CableEnd(node, nic or None)


def _load_lab(r: _Reader, raw: Any) -> LabSpec | None:
    t = r.table(raw, "lab", ("switch", "cables", "datapath"))
    if t is None:
        return None
    switch = r.get(t, "lab", "switch", as_name, None)
    datapath = r.get(t, "lab", "datapath", as_enum(Datapath), Datapath.NETDEV) or Datapath.NETDEV
    cables = []
    for i, item in enumerate(r.get(t, "lab", "cables", as_list(lambda v: v), []) or []):
        path = f"lab.cables[{i}]"
        ct = r.table(item, path, ("ends",))
        if ct is None:
            continue
        ends = r.get(ct, path, "ends", as_list(_parse_end))
        if ends is None:
            continue
        if len(ends) != 2:
            r.error(f"{path}.ends", f"a cable has two ends, got {len(ends)}", 'write ends = ["node1:eth1", "switch"]')
            continue
        cables.append(Cable(ends[0], ends[1]))
    return LabSpec(switch, tuple(cables), datapath)


def _load_verify(r: _Reader, raw: Any) -> VerifySettings:
    t = r.table(raw, "verify", ("probe_image",))
    if t is None:
        return VerifySettings()
    return VerifySettings(probe_image=r.get(t, "verify", "probe_image", as_image_ref, None))


_TOP_KEYS = ("name", "description", "vlans", "hosts", "router", "endpoints", "lab", "verify")


def parse(text: str, source: str = "<string>") -> Topology:
    """Parse topology text; raise ConfigError carrying every finding."""
    if text.startswith(BOM):
        # tomllib takes the BOM for a stray character ("Invalid statement" at
        # 1:1). Refused rather than stripped: other TOML tools refuse it too,
        # and the file would only work with ovsnet.
        raise ConfigError(source, [Finding("", "the file starts with a UTF-8 byte-order mark (BOM)", "save it as UTF-8 without BOM", line=1, column=1)])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [_syntax_finding(exc, text)]) from None
    r = _Reader(source, text)
    top = r.table(data, "", _TOP_KEYS) or {}
    default_name = Path(source).stem if source and not source.startswith("<") else "topology"
    name = r.get(top, "", "name", as_name, None) or (default_name if _NAME_RE.match(default_name) else "topology")
    r.get(top, "", "description", as_str, "")
    vlans = _load_vlans(r, top.get("vlans", {}))
    hosts: dict[str, Host] = {}
    raw_hosts = top.get("hosts", _MISSING)
    if raw_hosts is _MISSING:
        r.error("hosts", "the topology has no hosts", "add at least one [hosts.NAME] table")
    elif not isinstance(raw_hosts, dict):
        r.error("hosts", f"expected a table, got {_type_name(raw_hosts)}", "write each host as [hosts.NAME]")
    else:
        for hname, body in raw_hosts.items():
            host = _load_host(r, hname, body)
            if host:
                hosts[hname] = host
    router = _load_router(r, top["router"]) if "router" in top else None
    endpoints = _load_endpoints(r, top["endpoints"]) if "endpoints" in top else []
    lab = _load_lab(r, top["lab"]) if "lab" in top else None
    verify = _load_verify(r, top["verify"]) if "verify" in top else VerifySettings()
    if r.findings:
        raise ConfigError(source, r.findings)
    return Topology(name, vlans, hosts, router, tuple(endpoints), lab, source, verify)


def _syntax_finding(exc: tomllib.TOMLDecodeError, text: str = "") -> Finding:
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    line = col = None
    if match:
        line, col = int(match.group(1)), int(match.group(2))
        message = message[: match.start()].strip()
    if line is not None and message.startswith(_DUPLICATE_MESSAGES):
        try:
            found = _duplicate_finding(text, line, col)
        except Exception:  # best effort: a slip of the scanner must not hide the error itself
            found = None
        if found is not None:
            return found
        return Finding("", f"TOML syntax: {message}", "a key or table is defined twice; find its earlier definition and keep one", line=line, column=col)
    return Finding("", f"TOML syntax: {message}", "fix the TOML syntax at that place", line=line, column=col)


# --- duplicate keys and tables ---------------------------------------------------
#
# tomllib says only "Cannot declare ('hosts', 'node1') twice" or "Cannot
# overwrite a value", at the second place. To name the key and both lines, the
# text up to that line is scanned again for what each statement defines. The
# scan knows just enough TOML for that (headers, arrays of tables, dotted and
# quoted keys, strings, arrays, inline tables), and only ever reads text that
# tomllib has already parsed without error up to the failing line.

BOM = "\ufeff"
_DUPLICATE_MESSAGES = ("Cannot declare", "Cannot overwrite", "Cannot mutate", "Cannot redefine", "Duplicate inline table key")
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_KEY_RE = re.compile(rf"[ \t]*({_KEY_PART}(?:[ \t]*\.[ \t]*{_KEY_PART})*)[ \t]*")
_PART_RE = re.compile(_KEY_PART)
_BLANK_RE = re.compile(r"[ \t\r]*")
_VALUE_TOKEN_RE = re.compile(r'"""|' + r"'''" + r"""|"|'|[\[\]{},#\n]""")
_BASIC_REST_RE = re.compile(r'(?:[^"\\\n]|\\.)*"')
_BARE_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class _Definition:
    """What one header or key defines, as a key path."""

    line: int
    kind: str  # "table", "array" (a [[...]] element) or "key"
    path: tuple[str, ...]  # segments as messages show them: "uplinks[0]", '"odd key"'
    base: int  # how many leading segments name the table a key sits in
    group: int  # one per statement; an inline table's keys share their key's


def _key_parts(raw: str) -> tuple[str, ...]:
    parts = []
    for m in _PART_RE.finditer(raw):
        part = m.group(0)
        if part.startswith('"'):
            try:
                part = json.loads(part)
            except ValueError:  # a TOML-only escape (\e, \U...): the raw text names it well enough
                part = part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part if _BARE_RE.match(part) else json.dumps(part))
    return tuple(parts)


def _resolve(parts: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> tuple[str, ...]:
    """A header's path, with the index of the current element of each array of tables in it."""
    out: list[str] = []
    for part in parts:
        out.append(part)
        index = arrays.get(tuple(out))
        if index is not None:
            out[-1] = f"{part}[{index}]"
    return tuple(out)


def _definitions(text: str, stop_line: int) -> list[_Definition]:
    """What the statements starting on lines 1..stop_line define, in order."""
    defs: list[_Definition] = []
    arrays: dict[tuple[str, ...], int] = {}  # an array of tables -> index of its current element
    table: tuple[str, ...] = ()
    i, line, group, n = 0, 1, 0, len(text)
    while i < n and line <= stop_line:
        i = _BLANK_RE.match(text, i).end()  # type: ignore[union-attr]
        if i >= n:
            break
        c = text[i]
        if c == "\n":
            line, i = line + 1, i + 1
            continue
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        group += 1
        if c == "[":
            array = text.startswith("[[", i)
            k = _KEY_RE.match(text, i + (2 if array else 1))
            if k is None:
                break
            parts = _key_parts(k.group(1))
            if array:
                parent = _resolve(parts[:-1], arrays)
                key = parent + (parts[-1],)
                arrays[key] = arrays.get(key, -1) + 1
                table = parent + (f"{parts[-1]}[{arrays[key]}]",)
            else:
                table = _resolve(parts, arrays)
            defs.append(_Definition(line, "array" if array else "table", table, len(table), group))
            end = text.find("\n", k.end())
            i = n if end < 0 else end
            continue
        k = _KEY_RE.match(text, i)
        if k is None or not text.startswith("=", k.end()):
            break
        path = table + _key_parts(k.group(1))
        defs.append(_Definition(line, "key", path, len(table), group))
        i, line = _skip_value(text, k.end() + 1, line, path, defs, group)
    return defs


def _skip_value(text: str, i: int, line: int, path: tuple[str, ...], defs: list[_Definition], group: int) -> tuple[int, int]:
    """Past one value and its line; the keys of its inline tables are recorded too."""
    n = len(text)
    stack: list[_Open] = []  # the brackets open at this point
    last_key = path
    expect_key = False
    while i < n:
        if expect_key:
            expect_key = False
            k = _KEY_RE.match(text, i)
            if k is not None and text.startswith("=", k.end()) and stack and not stack[-1].array:
                last_key = stack[-1].path + _key_parts(k.group(1))
                defs.append(_Definition(line, "key", last_key, len(stack[-1].path), group))
                i = k.end() + 1
                continue
        t = _VALUE_TOKEN_RE.search(text, i)
        if t is None:
            return n, line
        tok, i = t.group(), t.end()
        if tok == "\n":
            line += 1
            if not stack:
                return i, line
        elif len(tok) == 3:  # a multi-line string
            end = text.find(tok, i)
            while tok == '"""' and end > 0 and _escaped(text, end, i):
                end = text.find(tok, end + 1)
            if end < 0:
                return n, line
            extra = 0
            while extra < 2 and text.startswith(tok[0], end + 3 + extra):
                extra += 1  # up to two quotes before the closing three are content
            end += 3 + extra
            line += text.count("\n", i, end)
            i = end
        elif tok == '"':
            m = _BASIC_REST_RE.match(text, i)
            i = m.end() if m else i
        elif tok == "'":
            end = text.find("'", i)
            i = n if end < 0 else end + 1
        elif tok == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif tok in "[{":
            # A value inside an array is named by its element: x[0], x[1].a
            where = stack[-1].element() if stack and stack[-1].array else last_key
            stack.append(_Open(tok == "[", where))
            expect_key = tok == "{"
        elif tok in "]}":
            if stack:
                stack.pop()
        elif tok == "," and stack:
            if stack[-1].array:
                stack[-1].index += 1
            else:
                expect_key = True
    return n, line


@dataclass
class _Open:
    """An array or inline table the value scan is inside of."""

    array: bool
    path: tuple[str, ...]
    index: int = 0  # arrays: the element being read

    def element(self) -> tuple[str, ...]:
        if not self.path:
            return self.path
        return self.path[:-1] + (f"{self.path[-1]}[{self.index}]",)


def _escaped(text: str, at: int, start: int) -> bool:
    k = at
    while k > start and text[k - 1] == "\\":
        k -= 1
    return (at - k) % 2 == 1


def _clash(old: _Definition, new: _Definition) -> bool:
    """Whether `new`, a later statement, defines again something `old` defined."""
    o, w = old.path, new.path
    if old.group == new.group:
        return o == w  # a key twice in one inline table
    if old.kind != "key" and new.kind != "key":
        if old.kind != new.kind:  # [a] and [[a]]: one name, two kinds of table
            return _plain(o) == _plain(w)
        return o == w
    if new.kind != "key":  # a header over a value, or over a table a dotted key made
        return len(w) > old.base and o[: len(w)] == w
    if old.kind != "key":  # a key over a declared table, or a dotted key reaching into one
        return (len(o) > new.base and w[: len(o)] == o) or (len(o) > len(w) and o[: len(w)] == w)
    return o[: len(w)] == w or w[: len(o)] == o


def _plain(path: tuple[str, ...]) -> tuple[str, ...]:
    """The path without the element index of its last segment: uplinks[1] -> uplinks."""
    if path and path[-1].endswith("]"):
        return path[:-1] + (re.sub(r"\[\d+\]$", "", path[-1]),)
    return path


def _shown(path: tuple[str, ...], limit: int = 120) -> str:
    text = ".".join(path)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _duplicate_finding(text: str, line: int, column: int | None) -> Finding | None:
    defs = _definitions(text, line)
    first_new = next((i for i, d in enumerate(defs) if d.line == line), None)
    if first_new is None:
        return None
    pair = None
    # An exact repeat is the usual mistake, so it wins over a table/value overlap.
    for exact in (True, False):
        for j in range(first_new, len(defs)):
            new = defs[j]
            old = next((o for o in reversed(defs[:j]) if (o.path == new.path) == exact and _clash(o, new)), None)
            if old is not None:
                pair = (old, new)
                break
        if pair:
            break
    if pair is None:
        name = _shown(defs[first_new].path)
        return Finding(name, f"TOML syntax: {name} is defined twice (the second time at line {line})",
                       f"find the earlier definition of {name} and keep one", line=line, column=column)
    old, new = pair
    lines = f"both at line {new.line}" if old.line == new.line else f"lines {old.line} and {new.line}"
    name = _shown(new.path)
    if old.kind != "key" and new.kind != "key" and old.kind != new.kind:
        name = _shown(_plain(new.path))
        return Finding(name, f"TOML syntax: {name} is declared both as a table [{name}] and as an array of tables [[{name}]] ({lines})",
                       f"write every [{name}] as [[{name}]] for a list of tables, or use [{name}] once", line=line, column=column)
    if old.path == new.path and old.kind != "key" and new.kind != "key":
        return Finding(name, f"TOML syntax: table [{name}] is declared twice ({lines})",
                       f"merge the two [{name}] tables into one, keeping each key once", line=line, column=column)
    if old.path == new.path and old.kind == new.kind == "key":
        fix = f"keep {new.path[-1]} once in that inline table" if old.group == new.group else "delete one of the two lines"
        return Finding(name, f"TOML syntax: key {name} is set twice ({lines})", fix, line=line, column=column)
    common = old.path if len(old.path) <= len(new.path) else new.path
    name = _shown(common)

    def as_what(d: _Definition) -> str:
        if d.kind != "key":
            return f"the table [{_shown(d.path)}] at line {d.line}"
        if d.path == common:
            return f"a value ({_shown(d.path[d.base:])} = ...) at line {d.line}"
        return f"a table, by the dotted key {_shown(d.path[d.base:])} at line {d.line}"

    return Finding(name, f"TOML syntax: {name} is defined twice: as {as_what(old)}, and as {as_what(new)}",
                   "a name is either a value or one table: merge the two into one, or rename one", line=line, column=column)


def load(path: str | Path) -> Topology:
    """Read and parse a topology file; every problem is a ConfigError."""
    p = Path(path)
    source = str(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(source, [Finding("", f"file is {size} bytes; the limit is {MAX_FILE_BYTES}", "is this the right file?")])
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, [Finding("", "no such file", "check the path")]) from None
    except IsADirectoryError:
        raise ConfigError(source, [Finding("", "is a directory, not a file", "name the topology file")]) from None
    except PermissionError:
        raise ConfigError(source, [Finding("", "permission denied", "run as a user that can read it")]) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(source, [Finding("", "the file is UTF-16 (it starts with a UTF-16 byte-order mark)", "save it as UTF-8 without BOM", line=1, column=1)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [Finding("", f"not UTF-8 text (byte {exc.start})", "save the file as UTF-8")]) from None
    try:
        return parse(text, source)
    except RecursionError:
        raise ConfigError(source, [Finding("", "nesting is too deep", "a topology needs only a few levels of tables")]) from None
