"""A JSON-lines connection to a unix socket QEMU serves: the guest agent's
chardev or the QMP monitor. Both speak one JSON object per line."""

from __future__ import annotations

import json
import select
import socket
import time

from .log import HarnessError


class JsonChannel:
    def __init__(self, path: str, label: str):
        self.path, self.label = path, label
        self.sock: socket.socket | None = None
        self.buf = b""

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def connect(self, deadline: float) -> None:
        """Connect, retrying until deadline: QEMU makes the socket a moment after it starts."""
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                self.sock, self.buf = s, b""
                return
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise HarnessError(f"{self.label}: cannot connect to {self.path}") from None
                time.sleep(0.2)

    def send(self, obj: dict) -> None:
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        if self.sock is None:
            raise HarnessError(f"{self.label}: not connected")
        self.sock.settimeout(10)
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise HarnessError(f"{self.label}: nothing reads {self.path} (its buffer is full)") from None

    def writable(self) -> bool:
        """Whether a write would not block. QEMU reads the guest agent's socket only
        while the guest has the port open: until then what we send waits in the
        socket's buffer, which holds a few dozen requests."""
        if self.sock is None:
            return False
        return bool(select.select([], [self.sock], [], 0)[1])

    def drop_buffer(self) -> None:
        self.buf = b""

    def read(self, deadline: float) -> dict:
        """The next JSON object; TimeoutError at deadline. Lines that are not JSON are
        skipped: the agent prefixes a sync reply with 0xFF, and a guest rebooting
        mid-reply can leave half a line."""
        if self.sock is None:
            raise HarnessError(f"{self.label}: not connected")
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line, self.buf = self.buf[:nl], self.buf[nl + 1 :]
                line = line.replace(b"\xff", b"").strip()
                if not line:
                    continue
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(msg, dict):
                    return msg
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(min(left, 1.0))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise HarnessError(f"{self.label}: {self.path} closed the connection")
            self.buf += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
