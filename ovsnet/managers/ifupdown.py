"""ifupdown (Debian's /etc/network/interfaces): its state file says which interfaces it brought up.

ifup records each interface it configured in /run/network/ifstate.<iface>
(ifupdown 0.8); the stanza `iface <iface> inet dhcp|static|manual` in
/etc/network/interfaces, or a file it sources, says how.
"""

from __future__ import annotations

import glob
from pathlib import Path

from ovsnet.current import Link
from ovsnet.managers import IFUPDOWN, Managed, under

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
