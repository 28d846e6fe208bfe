"""ifupdown (Debian's /etc/network/interfaces): its state file says which interfaces it brought up.

ifup records each interface it configured in /run/network/ifstate.<iface>
(ifupdown 0.8); the stanza `iface <iface> inet dhcp|static|manual` in
/etc/network/interfaces, or a file it sources, says how.
"""

from __future__ import annotations

import fnmatch
import glob
import posixpath
import re
from pathlib import Path

from ovsnet.current import HostFiles, Link
from ovsnet.managers import IFUPDOWN, Managed, under
from ovsnet.managers.handoff import Dhclient, FileEdit, Handoff, PortSpec, Program, Step, marker, safe, v6

STATE = "/run/network/ifstate.{name}"
INTERFACES = "/etc/network/interfaces"


def detect(root: Path, link: Link) -> Managed | None:
    state = under(root, STATE.format(name=link.name))
    try:
        up = state.read_text().strip()
    except OSError:
        return None
    if not up:
        return None
    method, config = stanza(root, link.name)
    if method == "manual":
        return None  # ifupdown only brings the link up (a bridge port's stanza after a handover)
    return Managed(link.name, IFUPDOWN, f"{STATE.format(name=link.name)} ({up})", method == "dhcp", config)


def stanza(root: Path, name: str) -> tuple[str | None, str | None]:
    """(method, file) of `iface NAME inet METHOD` in interfaces or the files it sources."""
    for path in _files(root):
        try:
            lines = under(root, path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split()
            if len(words) >= 4 and words[0] == "iface" and words[1] == name and words[2] == "inet":
                return words[3], path
    return None, None


def _files(root: Path) -> list[str]:
    """interfaces, then what its `source` lines name (globs, relative to the root)."""
    out = [INTERFACES]
    try:
        lines = under(root, INTERFACES).read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        words = line.split()
        if len(words) == 2 and words[0] in ("source", "source-directory"):
            pattern = words[1] if words[0] == "source" else words[1].rstrip("/") + "/*"
            for match in sorted(glob.glob(str(under(root, pattern)))):
                out.append("/" + str(Path(match).relative_to(root)))
    return out


# --- the handover ---------------------------------------------------------------------------------
#
# The NIC's stanza cannot be overridden from another file (ifupdown refuses an
# interface defined twice), so the file that holds it is rewritten: its
# `iface NIC inet static|dhcp` stanza becomes `iface NIC inet manual` (ifupdown
# still brings the link up at boot, with no address), the old lines kept above
# it as comments; every other byte of the file stays, and `down` writes the
# original back byte for byte (it is in the record). The port's stanza goes in
# /etc/network/interfaces.d/ when the interfaces file sources that directory
# (Debian's default); when it does not, it is appended to the rewritten file,
# between the same marks, and leaves with the rewrite.

PORT_DIR = "/etc/network/interfaces.d"
STANZA = ("iface", "auto", "mapping", "source", "source-directory", "rename")
SOURCE_DIRECTORY_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # what source-directory includes


def port_path(spec: PortSpec) -> str:
    return f"{PORT_DIR}/ovsnet-{safe(spec.topology)}-{safe(spec.port)}"


def sources(files: HostFiles) -> tuple[list[str], list[str]]:
    """(the files ifupdown reads: interfaces, then what it sources; the patterns it sources)."""
    out, patterns = [INTERFACES], []
    for line in (files.text(INTERFACES) or "").splitlines():
        words = line.split()
        if len(words) != 2 or words[0] not in ("source", "source-directory"):
            continue
        where = words[1] if words[1].startswith("/") else posixpath.join(posixpath.dirname(INTERFACES), words[1])
        if words[0] == "source":
            patterns.append(where)
            directory = posixpath.dirname(where)
            out += [f"{directory}/{n}" for n in files.names(directory) if fnmatch.fnmatch(f"{directory}/{n}", where)]
        else:
            directory = where.rstrip("/")
            patterns.append(f"{directory}/<source-directory>")
            out += [f"{directory}/{n}" for n in files.names(directory) if SOURCE_DIRECTORY_NAME.match(n)]
    return out, patterns


def sourced(path: str, patterns: list[str]) -> bool:
    directory, name = posixpath.split(path)
    return any(fnmatch.fnmatch(path, p) or p == f"{directory}/<source-directory>" and SOURCE_DIRECTORY_NAME.match(name) for p in patterns)


def _starts_stanza(line: str) -> bool:
    word = line.split()[0] if line.split() else ""
    return word in STANZA or word.startswith("allow-")


def rewrite(text: str, nic: str, mark: str) -> str:
    """`text` with every `iface NIC <family> <method>` stanza made `manual`, its old lines kept as comments."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        words = lines[i].split()
        if len(words) >= 4 and words[0] == "iface" and words[1] == nic and words[3] != "manual":
            j = i + 1
            while j < len(lines) and not _starts_stanza(lines[j]):
                j += 1
            # Blank lines and comments before the next stanza are that stanza's.
            while j > i + 1 and (not lines[j - 1].strip() or lines[j - 1].lstrip().startswith("#")):
                j -= 1
            out.append(mark + "\n")
            out += ["#   " + line.rstrip("\n") + "\n" for line in lines[i:j]]
            out.append(f"iface {nic} {words[2]} manual\n")
            i = j
        else:
            out.append(lines[i])
            i += 1
    body = "".join(out)
    return body if body.endswith("\n") or not body else body + "\n"


def port_stanza(spec: PortSpec) -> str:
    four = [a for a in spec.addresses if not v6(a)]
    six = [a for a in spec.addresses if v6(a)]
    lines = [marker(spec, f"the management port, handed over from {spec.nic}"), f"auto {spec.port}"]
    if spec.dhcp:
        lines += [f"iface {spec.port} inet dhcp"]
    for family, addrs in (("inet", four), ("inet6", six)):
        if not addrs or spec.dhcp and family == "inet":
            continue
        gw = next((g for g in spec.gateways if v6(g) == (family == "inet6")), None)
        dns = [d for d in spec.dns if v6(d) == (family == "inet6")]
        lines += [f"iface {spec.port} {family} static", f"    address {addrs[0]}"] + [f"    up ip addr add {a} dev {spec.port}" for a in addrs[1:]]
        lines += [f"    gateway {gw}"] if gw else []
        lines += [f"    dns-nameservers {' '.join(dns)}"] if dns else []
    return "\n".join(lines) + "\n"


def handoff(spec: PortSpec, files: HostFiles) -> Handoff:
    read, patterns = sources(files)
    holder = next((p for p in read if any(
        len(w) >= 4 and w[0] == "iface" and w[1] == spec.nic and w[3] != "manual"
        for w in (line.split() for line in (files.text(p) or "").splitlines()))), None)
    edits: list[FileEdit] = []
    notes: list[str] = []
    stanza = port_stanza(spec)
    in_dir = sourced(port_path(spec), patterns)
    if holder is not None:
        new = rewrite(files.text(holder) or "", spec.nic, marker(spec, f"{spec.nic} is a port of an Open vSwitch bridge; its stanza was"))
        if not in_dir:
            new += "\n" + stanza
            notes.append(f"{INTERFACES} does not source {PORT_DIR}: the {spec.port} stanza is added to {holder} "
                         "(the whole file is put back byte for byte by down)")
        edits.append(FileEdit(holder, new, f"ifupdown leaves {spec.nic} to OVS (its stanza made manual)"))
    if in_dir:
        edits.append(FileEdit(port_path(spec), stanza, f"ifupdown runs {spec.port}"))
    elif holder is None:
        notes.append(f"{INTERFACES} does not source {PORT_DIR} and has no stanza for {spec.nic}: no place for the {spec.port} stanza")
    take: list[Step] = [Dhclient(spec.nic, start=False)] if spec.dhcp else []
    # The port holds the address already (ovsnet moved it): ifup's `ip addr add`
    # then fails with "File exists", which is the state asked for.
    take.append(Program(("ifup", "--ignore-errors", spec.port)))
    give: list[Step] = [Dhclient(spec.port, start=False), Dhclient(spec.nic, start=True)] if spec.dhcp else []
    return Handoff(tuple(edits), tuple(take), tuple(give), None, tuple(notes), (STATE.format(name=spec.port),))
