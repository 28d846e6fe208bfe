"""The host's files ovsnet reads and writes: the nameservers of its resolv.conf.

Only the `nameserver` lines change; search domains and options stay as they
are. With a network namespace target the files are the namespace's own
(/etc/netns/NAME/..., the iproute2 convention), never the machine's.
"""

from __future__ import annotations

import os
from pathlib import Path

from ovsnet.errors import BackendError


def read_nameservers(path: str) -> tuple[str, ...] | None:
    """The nameservers listed, or None when the file does not exist."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BackendError(f"cannot read {path}: {exc.strerror}") from None
    return tuple(line.split()[1] for line in text.splitlines() if line.split()[:1] == ["nameserver"] and len(line.split()) > 1)


def write_nameservers(path: str, servers: tuple[str, ...]) -> None:
    p = Path(path)
    try:
        text = p.read_text() if p.exists() else ""
        old = text.splitlines()
        new = [f"nameserver {s}" for s in servers]
        # The new servers take the place of the first old one, so writing the
        # old servers back gives the file back as it was, line for line.
        out: list[str] = []
        for line in old:
            if line.split()[:1] == ["nameserver"]:
                out += new
                new = []
            else:
                out.append(line)
        lines = out + new
        # Byte for byte on the way back: an empty file stays empty, a last line without
        # its newline keeps going without one.
        body = "\n".join(lines) + ("\n" if lines and (text.endswith("\n") or not text) else "")
        # resolv.conf is often a symlink (systemd-resolved); write through it.
        real = p.resolve()
        tmp = real.with_name(f".{real.name}.ovsnet")
        tmp.write_text(body)
        os.replace(tmp, real)
    except OSError as exc:
        raise BackendError(f"cannot write {path}: {exc.strerror}") from None


class Files:
    """The files of one target host (see ovsnet.apply.target.Target)."""

    def __init__(self, resolv_conf: str):
        self.resolv_conf = resolv_conf

    def nameservers(self) -> tuple[str, ...] | None:
        return read_nameservers(self.resolv_conf)

    def write_nameservers(self, servers: tuple[str, ...]) -> None:
        write_nameservers(self.resolv_conf, servers)
