"""A client for QEMU's monitor protocol (QMP) on the VM's control socket: what the
host can do to a running VM from outside it (take a NIC's link down and up)."""

from __future__ import annotations

import threading
import time

from .channel import JsonChannel
from .log import HarnessError


class Qmp:
    def __init__(self, path: str, name: str):
        self.name = name
        self.chan = JsonChannel(path, f"{name}: QMP")
        self.lock = threading.Lock()

    def _open(self, deadline: float) -> None:
        """Connect, read the greeting, leave capabilities negotiation mode."""
        self.chan.connect(deadline)
        try:
            greeting = self.chan.read(deadline)
            if "QMP" not in greeting:
                raise HarnessError(f"{self.name}: QMP greeting expected, got {greeting}")
            self.chan.send({"execute": "qmp_capabilities"})
            self._reply(deadline, "qmp_capabilities")
        except TimeoutError:
            raise HarnessError(f"{self.name}: QMP did not greet within the time left") from None

    def _reply(self, deadline: float, what: str) -> object:
        # Events (NIC_RX_FILTER_CHANGED, RESET, ...) come between replies: skip them.
        while True:
            msg = self.chan.read(deadline)
            if "event" in msg:
                continue
            if "error" in msg:
                raise HarnessError(f"{self.name}: QMP {what}: {msg['error'].get('desc', msg['error'])}")
            return msg.get("return")

    def command(self, execute: str, arguments: dict | None = None, timeout: float = 10) -> object:
        deadline = time.monotonic() + timeout
        with self.lock:
            if not self.chan.connected:
                self._open(deadline)
            msg: dict = {"execute": execute}
            if arguments is not None:
                msg["arguments"] = arguments
            self.chan.send(msg)
            try:
                return self._reply(deadline, execute)
            except TimeoutError:
                self.chan.close()  # a late reply would pair with the next command
                raise HarnessError(f"{self.name}: QMP {execute}: no answer within {timeout:.0f} s") from None

    def set_link(self, netdev: str, up: bool) -> None:
        """The link of a -netdev and of the guest NIC on it: down, the guest sees no
        carrier and QEMU drops every frame either way (a pulled cable, on this end)."""
        self.command("set_link", {"name": netdev, "up": up})

    def close(self) -> None:
        self.chan.close()
