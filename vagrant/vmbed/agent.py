"""A client for the QEMU guest agent (qemu-ga) on the VM's virtio-serial port:
run a command in the guest with a timeout, start one without waiting for it,
and find the agent again after the guest rebooted."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass

from .channel import JsonChannel
from .log import HarnessError

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Result:
    """What a guest command did. code 124: the guest's `timeout` killed it."""

    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def text(self) -> str:
        return (self.out + self.err).strip()


class Agent:
    def __init__(self, path: str, name: str):
        self.name = name
        self.chan = JsonChannel(path, f"{name}: guest agent")
        # One request at a time: replies carry no id, so they pair with requests by order.
        self.lock = threading.Lock()
        self._sync_id = int(time.time()) % 100000 * 10

    def wait_ready(self, timeout: float) -> None:
        """Until the agent answers a guest-sync-delimited with our number. Also the way
        back in step after a reboot or a timed-out call: every reply to an earlier request
        comes before the one to this sync, and is dropped with it."""
        deadline = time.monotonic() + timeout
        with self.lock:
            if not self.chan.connected:
                self.chan.connect(deadline)
            pause = 3.0
            n = self._sync_id
            while True:
                # A request sent before the agent runs waits in the socket and is
                # answered when it starts, so a slow boot needs few of them: the pause
                # grows, and a full buffer means wait, not send.
                if self.chan.writable():
                    self._sync_id += 1
                    n = self._sync_id
                    # 0xFF first: it resets the agent's parser if a reboot cut a request in half.
                    self.chan.send_raw(b"\xff" + json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": n}}).encode() + b"\n")
                retry = min(time.monotonic() + pause, deadline)
                pause = min(pause * 1.5, 10.0)
                try:
                    while True:
                        if self.chan.read(retry).get("return") == n:
                            self.chan.drop_buffer()
                            return
                except TimeoutError:
                    pass
                except HarnessError:
                    # QEMU closed our end (it should not across a guest reboot): connect again.
                    self.chan.close()
                    self.chan.connect(deadline)
                if time.monotonic() >= deadline:
                    raise HarnessError(f"{self.name}: the guest agent did not answer within {timeout:.0f} s")

    def call(self, execute: str, arguments: dict | None = None, timeout: float = 30) -> object:
        msg: dict = {"execute": execute}
        if arguments is not None:
            msg["arguments"] = arguments
        with self.lock:
            self.chan.send(msg)
            try:
                reply = self.chan.read(time.monotonic() + timeout)
            except TimeoutError:
                raise HarnessError(f"{self.name}: no answer to {execute} within {timeout:.0f} s") from None
        if "error" in reply:
            raise HarnessError(f"{self.name}: {execute}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def spawn(self, argv: list[str], env: dict[str, str] | None = None) -> int:
        """Start argv in the guest and return its pid at once, without its output (a reboot:
        the agent may be gone before the command ends)."""
        ret = self.call("guest-exec", {"path": argv[0], "arg": argv[1:], "env": _env(env), "capture-output": False})
        return int(ret["pid"])  # type: ignore[index]

    def run(self, script: str, timeout: float = 120, env: dict[str, str] | None = None,
            cancel: threading.Event | None = None) -> Result:
        """Run a bash script in the guest. The guest kills it at timeout (exit 124); setting
        cancel makes the harness stop waiting for it."""
        ret = self.call("guest-exec", {
            "path": "/usr/bin/timeout",
            "arg": ["-k", "5", str(int(timeout)), "/bin/bash", "-c", script],
            "env": _env(env),
            "capture-output": True,
        })
        pid = ret["pid"]  # type: ignore[index]
        deadline = time.monotonic() + timeout + 20
        delay = 0.2
        while True:
            st = self.call("guest-exec-status", {"pid": pid})
            assert isinstance(st, dict)
            if st.get("exited"):
                out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
                err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")
                code = st.get("exitcode", -st.get("signal", 0) or 255)
                if code == 124:
                    err += f"\n(timed out after {timeout:.0f} s in the guest)"
                return Result(code, out, err)
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.name}: command did not finish within {timeout:.0f} s: {script[:80]}")
            if cancel is not None and cancel.is_set():
                raise HarnessError(f"{self.name}: stopped waiting (another VM failed): {script[:80]}")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def close(self) -> None:
        self.chan.close()


def _env(extra: dict[str, str] | None) -> list[str]:
    base = {"PATH": GUEST_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    return [f"{k}={v}" for k, v in {**base, **(extra or {})}.items()]
