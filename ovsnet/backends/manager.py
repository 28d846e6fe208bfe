"""A network manager's side of a handover: its configuration files and its own programs.

The handovers (ovsnet.kinds.handover) write systemd-networkd, NetworkManager
or ifupdown configuration and then ask the manager to read it again
(`networkctl reload`, `nmcli general reload`, `ifup`). Both go through the
plan as ops of this one backend, so a change can say "write these files,
then reload" and its undo "put them back, then reload" in order. Files are
written whole (a temporary file renamed over the old one: a manager reading
at that moment sees the old or the new text, never half), with the mode
given, under the target's root. Programs get an argument list, never a
shell (ovsnet.backends.processes). The host is also a dhclient backend: an
ifupdown handover stops and starts the NIC's DHCP client the way the
dhclient handover does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from ovsnet.backends import processes
from ovsnet.backends.dhcp import Dhclient
from ovsnet.errors import BackendError
from ovsnet.managers import under


class ManagerHost(Dhclient):
    """The files and programs of one target host (its root, its namespace)."""

    def write_file(self, path: str, text: str | None, mode: int | None) -> None:
        """`path` holds `text` exactly (None: the file does not exist); mode None keeps the
        file's own permissions (0644 for a new file)."""
        real = under(self.root, path)
        try:
            if text is None:
                real.unlink(missing_ok=True)
                return
            if mode is None:
                mode = real.stat().st_mode & 0o7777 if real.exists() else 0o644
            real.parent.mkdir(parents=True, exist_ok=True)
            tmp = real.with_name(f".{real.name}.ovsnet")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, mode)  # the umask may have taken bits away
            os.replace(tmp, real)
        except OSError as exc:
            raise BackendError(f"cannot write {path}: {exc.strerror}") from None

    def run(self, argv: tuple[str, ...]) -> None:
        processes.run(argv, self.netns)


@dataclass(frozen=True)
class WriteFile:
    path: str
    text: str | None  # None: remove it
    mode: int | None = None  # None: as the file is (0644 when new)
    backend: ClassVar[str] = "manager"

    def run(self, host: ManagerHost) -> None:
        host.write_file(self.path, self.text, self.mode)

    def describe(self) -> str:
        return f"remove {self.path}" if self.text is None else f"write {self.path} ({len(self.text)} bytes)"


@dataclass(frozen=True)
class RunProgram:
    argv: tuple[str, ...]
    backend: ClassVar[str] = "manager"

    def run(self, host: ManagerHost) -> None:
        host.run(self.argv)

    def describe(self) -> str:
        return "run " + " ".join(self.argv)


@dataclass(frozen=True)
class DhclientRun:
    """Start, or stop keeping its lease, the DHCP client of an interface (ifupdown's dhclient)."""

    iface: str
    start: bool
    backend: ClassVar[str] = "manager"

    def run(self, host: ManagerHost) -> None:
        if self.start:
            host.start(self.iface)
        else:
            host.stop(self.iface)

    def describe(self) -> str:
        return f"{'start' if self.start else 'stop'} the DHCP client of {self.iface}"
