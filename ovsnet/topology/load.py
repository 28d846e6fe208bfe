"""topology.toml to the model, with every error located by its key path and line.

Loading never stops at the first problem: each bad key becomes a Finding
and the whole file is read, so a person fixes everything in one pass. The
jobs live in their own modules: convert (one value to a typed value), reader
(one table's keys to findings), sections (each section into the model),
positions (the TOML scanner that gives every key path its line) and
duplicates (TOML syntax errors, and a key or table defined twice).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from ovsnet.errors import ConfigError, Finding
from ovsnet.topology.convert import NAME_RE, as_name, as_str, quoted, type_name
from ovsnet.topology.duplicates import syntax_finding
from ovsnet.topology.model import Host, Topology, VerifySettings
from ovsnet.topology.positions import Positions, remember
from ovsnet.topology.reader import MISSING, Reader
from ovsnet.topology.sections import load_endpoints, load_host, load_lab, load_router, load_verify, load_vlans

__all__ = ["MAX_FILE_BYTES", "load", "parse", "quoted"]

MAX_FILE_BYTES = 4 * 1024 * 1024
BOM = "\ufeff"
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
        raise ConfigError(source, [syntax_finding(exc, text)]) from None
    r = Reader()
    top = r.table(data, "", _TOP_KEYS) or {}
    default_name = Path(source).stem if source and not source.startswith("<") else "topology"
    name = r.get(top, "", "name", as_name, None) or (default_name if NAME_RE.match(default_name) else "topology")
    r.get(top, "", "description", as_str, "")
    vlans = load_vlans(r, top.get("vlans", {}))
    hosts: dict[str, Host] = {}
    raw_hosts = top.get("hosts", MISSING)
    if raw_hosts is MISSING:
        r.error("hosts", "the topology has no hosts", "add at least one [hosts.NAME] table")
    elif not isinstance(raw_hosts, dict):
        r.error("hosts", f"expected a table, got {type_name(raw_hosts)}", "write each host as [hosts.NAME]")
    else:
        for hname, body in raw_hosts.items():
            host = load_host(r, hname, body)
            if host:
                hosts[hname] = host
    router = load_router(r, top["router"]) if "router" in top else None
    endpoints = load_endpoints(r, top["endpoints"]) if "endpoints" in top else []
    lab = load_lab(r, top["lab"]) if "lab" in top else None
    verify = load_verify(r, top["verify"]) if "verify" in top else VerifySettings()
    if r.findings:
        raise ConfigError(source, Positions(text).locate(r.findings))
    topo = Topology(name, vlans, hosts, router, tuple(endpoints), lab, source, verify)
    remember(topo, text)  # validation's findings are located later, from the same text
    return topo


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
