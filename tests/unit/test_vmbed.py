"""The VM test bed's protocol clients and wiring (vagrant/vmbed) without a VM:
a fake guest agent and a fake QMP monitor on unix sockets, and the cables'
MACs, ports and QEMU arguments."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.vms import Agent, Bed, Cable, HarnessError, Qmp


class FakeServer:
    """A unix socket that accepts one client and answers each JSON line with
    respond(message): the lines to send back, a number among them a pause."""

    def __init__(self, path: Path, respond: Callable[[dict], list[bytes | float]], greeting: bytes = b""):
        self.path, self.respond, self.greeting = path, respond, greeting
        self.received: list[dict] = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(str(path))
        self.srv.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.srv.accept()
        with conn:
            if self.greeting:
                conn.sendall(self.greeting)
            buf = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.replace(b"\xff", b"").strip()
                    if not line:
                        continue
                    msg = json.loads(line)
                    self.received.append(msg)
                    for out in self.respond(msg):
                        if isinstance(out, float):
                            time.sleep(out)
                        else:
                            conn.sendall(out)

    def close(self) -> None:
        self.srv.close()


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "s.sock"


def test_agent_sync_skips_stale_replies_and_runs_a_command(sock_path: Path) -> None:
    """An agent that first answers old requests (as after a reboot, or a timed-out
    call) and only answers syncs from the third one on: wait_ready returns on the
    reply to its latest sync, and the next call pairs with its own reply."""
    syncs = []

    def respond(msg: dict) -> list[bytes | float]:
        if msg["execute"] == "guest-sync-delimited":
            syncs.append(msg["arguments"]["id"])
            if len(syncs) < 2:
                return []  # the guest is still booting: no answer
            # A stale reply first, the sync's own a moment later: a client that took
            # the first for its sync would read the second as guest-exec's reply.
            stale = json.dumps({"return": {"pid": 99}}).encode() + b"\n"
            return [stale, 0.3, b"\xff" + json.dumps({"return": msg["arguments"]["id"]}).encode() + b"\n"]
        if msg["execute"] == "guest-exec":
            return [json.dumps({"return": {"pid": 7}}).encode() + b"\n"]
        if msg["execute"] == "guest-exec-status":
            out = "aGVsbG8K"  # base64 of "hello\n"
            return [json.dumps({"return": {"exited": True, "exitcode": 0, "out-data": out}}).encode() + b"\n"]
        return [json.dumps({"error": {"desc": "unknown"}}).encode() + b"\n"]

    srv = FakeServer(sock_path, respond)
    agent = Agent(str(sock_path), "fake")
    try:
        agent.wait_ready(15)
        r = agent.run("echo hello", 10)
    finally:
        agent.close()
        srv.close()
    assert len(syncs) == 2 and syncs[1] == syncs[0] + 1
    assert (r.code, r.out, r.ok) == (0, "hello\n", True)
    assert [m["execute"] for m in srv.received[-2:]] == ["guest-exec", "guest-exec-status"]
    assert srv.received[-2]["arguments"]["arg"][:3] == ["-k", "5", "10"]


def test_agent_gives_up_at_its_deadline(sock_path: Path) -> None:
    srv = FakeServer(sock_path, lambda msg: [])
    agent = Agent(str(sock_path), "silent")
    try:
        with pytest.raises(HarnessError, match="silent: the guest agent did not answer within 1 s"):
            agent.wait_ready(1)
    finally:
        agent.close()
        srv.close()


def test_qmp_negotiates_skips_events_and_sets_a_link(sock_path: Path) -> None:
    def respond(msg: dict) -> list[bytes | float]:
        if msg["execute"] == "set_link" and msg["arguments"]["name"] == "nope":
            return [json.dumps({"error": {"class": "DeviceNotFound", "desc": "Device 'nope' not found"}}).encode() + b"\n"]
        event = json.dumps({"event": "NIC_RX_FILTER_CHANGED", "data": {}}).encode() + b"\n"
        return [event, json.dumps({"return": {}}).encode() + b"\n"]

    srv = FakeServer(sock_path, respond, greeting=json.dumps({"QMP": {"version": {}, "capabilities": []}}).encode() + b"\n")
    qmp = Qmp(str(sock_path), "fake")
    try:
        qmp.set_link("trunk2", up=False)
        with pytest.raises(HarnessError, match="fake: QMP set_link: Device 'nope' not found"):
            qmp.set_link("nope", up=True)
    finally:
        qmp.close()
        srv.close()
    assert srv.received[0] == {"execute": "qmp_capabilities"}
    assert srv.received[1] == {"execute": "set_link", "arguments": {"name": "trunk2", "up": False}}


def test_cables_give_each_vm_its_nics_in_order(tmp_path: Path) -> None:
    image = tmp_path / "image"
    image.mkdir()
    (image / "cmdline").write_text("root=LABEL=x\n")
    bed = Bed(image, tmp_path / "work", ("node2", "node1"),
              (Cable("trunk", "node2", "node1"), Cable("trunk2", "node2", "node1")), captures=[("node1", "trunk")])
    n1, n2 = bed["node1"], bed["node2"]
    # The trunk keeps the MACs of the Vagrantfile; the second cable's byte skips 01 (the management NIC's).
    assert [(n.netdev, n.mac) for n in n1.nics] == [("trunk", "52:54:00:0a:00:11"), ("trunk2", "52:54:00:0a:02:11")]
    assert [n.mac for n in n2.nics] == ["52:54:00:0a:00:12", "52:54:00:0a:02:12"]
    assert n1.mgmt_mac == "52:54:00:0a:01:11"
    # Each cable's two ends point at each other's UDP port.
    for a, b in zip(n1.nics, n2.nics):
        mine_a, peer_a = a.socket.split(",")[1].split(":")[-1], a.socket.split(",")[0].split(":")[-1]
        mine_b, peer_b = b.socket.split(",")[1].split(":")[-1], b.socket.split(",")[0].split(":")[-1]
        assert (mine_a, peer_a) == (peer_b, mine_b) and mine_a != mine_b
    argv = " ".join(n1.argv(None))
    assert "-no-reboot" not in argv  # a guest reboot must keep QEMU (and the -snapshot overlay)
    assert argv.index("netdev=mgmt") < argv.index("netdev=trunk,") < argv.index("netdev=trunk2,")  # eth0, eth1, eth2
    assert f"filter-dump,id=cap-trunk,netdev=trunk,file={n1.capture_path('trunk')}" in argv
    assert f"hostfwd=tcp:127.0.0.1:{n1.ssh_port}-:22" in argv
    assert f"unix:{bed.work / 'node1.qmp'},server=on,wait=off" in argv
    with pytest.raises(HarnessError, match="cable loop: node1 and node1 must be two of"):
        Bed(image, tmp_path / "w2", ("node1", "node2"), (Cable("loop", "node1", "node1"),))
