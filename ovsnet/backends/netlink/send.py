"""The one netlink write path: every request of `up`, `down`, rollback and the lab goes through here.

Each op encodes its own requests (ovsnet.backends.netlink.ops); the sender
sends one request, reads its ack (NLM_F_ACK), and only then encodes and
sends the next, stopping at the first error. So nothing runs after a
failure: when a create fails, its follow-ups never touch whatever holds the
name; when the management address cannot be added, the NIC keeps its own.

Why not pipeline many requests per system call: measured on this project's
machine (2026-11-30, load 5.9), 2,000 requests (1,000 bridges created, then
set up with MTU and alias) took 0.73 s sent one by one and 1.07 s sent in
32 KiB chunks; rtnetlink handles a request inside sendmsg, so its ack is
already queued when the call returns, and the kernel's own work dominates.
The speed of ovsnet's writes comes from the encoder (codec.py), not from
batching.
"""

from __future__ import annotations

import errno
import socket
import struct
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ovsnet.backends.netlink import codec
from ovsnet.backends.netlink.ops import NlOp

SOCKET_BUFFER = 1 << 20
SEQ_BASE = 1


@dataclass
class Outcome:
    """What happened to the groups (one change's ops each) sent so far."""

    ok: list[int] = field(default_factory=list)  # every request of the group acked, in order
    failed: tuple[int, NlOp, int] | None = None  # (group, op, errno) of the request that failed
    touched: bool = False  # the failed group had requests acked before the failure
    created_then_failed: list[str] = field(default_factory=list)  # links its creates made: remove again


class Sender:
    def __init__(self, sock: socket.socket, index_of: Callable[[str], int]):
        self.sock = sock
        self.index_of = index_of
        self.seq = SEQ_BASE
        self.outcome = Outcome()

    def run(self, groups: Sequence[Sequence[NlOp]], on_group: Callable[[int], None] | None = None) -> Outcome:
        """Send every group's ops in order; on_group(i) once group i is done. Stops at the first error.

        If on_group raises, the exception goes to the caller, and `outcome`
        still says what the kernel did (so it can be undone).
        """
        for g, ops in enumerate(groups):
            created: list[str] = []
            acked = 0
            for op in ops:
                try:
                    messages = op.messages(self.index_of)
                except LookupError:
                    # An index that cannot be found (a master that does not exist):
                    # the op fails as the kernel would have failed it.
                    self._fail(g, op, errno.ENODEV, acked, created)
                    return self.outcome
                for raw, creates in messages:
                    code = self._send(raw)
                    if code in op.absent_is_done:
                        code = 0  # already gone: the end state a delete asks for
                    if code:
                        self._fail(g, op, code, acked, created)
                        return self.outcome
                    acked += 1
                    if creates:
                        created.append(creates)
            self.outcome.ok.append(g)
            if on_group is not None:
                on_group(g)
        return self.outcome

    def _fail(self, group: int, op: NlOp, code: int, acked: int, created: list[str]) -> None:
        self.outcome.failed = (group, op, code)
        self.outcome.touched = acked > 0
        self.outcome.created_then_failed = created

    def _send(self, raw: bytes) -> int:
        """Send one request; its errno from the ack (0: done)."""
        msg = bytearray(raw)
        seq = self.seq
        self.seq += 1
        struct.pack_into("=I", msg, 8, seq)  # our own sequence numbers
        self.sock.sendall(bytes(msg))
        while True:
            data = self.sock.recv(SOCKET_BUFFER)
            for mtype, _flags, got, payload in codec.messages(data):
                if mtype == codec.NLMSG_ERROR and got == seq:
                    return -struct.unpack_from("=i", payload, 0)[0]


def open_socket(netns: str | None) -> socket.socket:
    """A raw rtnetlink socket in the namespace (it stays there for its life)."""
    from ovsnet.backends.netns import socket_in

    sock = socket_in(netns, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    sock.bind((0, 0))
    return sock
