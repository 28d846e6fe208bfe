"""Many netlink requests in few system calls: the `ip -batch` of ovsnet.

ovsnet.backends.rtnl encodes the messages; they go out on one raw
NETLINK_ROUTE socket in chunks, and every message's ack (requested with
NLM_F_ACK) is read back and matched to its op by sequence number. The kernel
handles the messages of a chunk in order, one by one, exactly as if they had
been sent separately, so ordering and per-op errors are preserved.

Links are addressed by name (the kernel looks up IFLA_IFNAME itself); only
IFLA_MASTER and addresses/routes need an index, so a link created earlier in
the same batch is flushed before such a request and its index looked up once.
"""

from __future__ import annotations

import errno
import socket
import struct
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ovsnet.backends import rtnl
from ovsnet.ops import (
    NlAddAddress,
    NlCreateBridge,
    NlCreateVeth,
    NlDeleteLink,
    NlDelAddress,
    NlDelRoute,
    NlOp,
    NlReplaceRoute,
    NlSetLink,
)

CHUNK_BYTES = 32 * 1024  # well under the default socket buffers, acks included
SOCKET_BUFFER = 1 << 20


@dataclass
class _Sent:
    group: int
    op: NlOp
    creates: str | None = None  # the link this message creates, if it is a create


@dataclass
class Outcome:
    """What happened to each group (one change's ops) of a batch."""

    ok: set[int] = field(default_factory=set)  # every message of the group acked
    touched: set[int] = field(default_factory=set)  # at least one message acked
    failed: dict[int, tuple[NlOp, int]] = field(default_factory=dict)  # group -> (op, errno)
    created_then_failed: list[str] = field(default_factory=list)  # links to remove again


class Batch:
    def __init__(self, sock: socket.socket, index_of: Callable[[str], int]):
        self.sock = sock
        self.index_of = index_of
        self.seq = 1
        self.pending: list[tuple[bytes, _Sent]] = []
        self.created_unflushed: set[str] = set()
        self.outcome = Outcome()
        self.stopped = False

    # --- encoding ---------------------------------------------------------

    def add(self, group: int, op: NlOp) -> None:
        """Queue an op's messages; flushes first when it needs an index not known yet."""
        if _index_needs(op) & self.created_unflushed:
            self.flush()
        if self.stopped:
            return
        msgs: list[tuple[bytes, str | None]] = []  # (message, name it creates)
        if isinstance(op, NlCreateBridge):
            msgs.append((rtnl.new_bridge(op.name), op.name))
            # MTU in a separate set: only then does the bridge keep it instead
            # of following its ports' MTUs.
            if op.mtu is not None or op.alias is not None:
                msgs.append((rtnl.set_link(op.name, mtu=op.mtu, alias=op.alias), None))
        elif isinstance(op, NlCreateVeth):
            msgs.append((rtnl.new_veth(op.name, op.peer, op.mtu), op.name))
            if op.alias is not None:
                # The kernel ignores IFLA_IFALIAS in a create request.
                msgs.append((rtnl.set_link(op.name, alias=op.alias), None))
                msgs.append((rtnl.set_link(op.peer, alias=op.alias), None))
        elif isinstance(op, NlSetLink):
            master = None
            if op.master is not None:
                master = self.index_of(op.master) if op.master else 0
            if op.up is None and op.mtu is None and master is None and op.alias is None:
                return
            msgs.append((rtnl.set_link(op.name, op.up, op.mtu, master, op.alias), None))
        elif isinstance(op, NlDeleteLink):
            msgs.append((rtnl.del_link(op.name), None))
        elif isinstance(op, (NlAddAddress, NlDelAddress)):
            msgs.append((rtnl.address(isinstance(op, NlAddAddress), self.index_of(op.ifname), op.cidr), None))
        elif isinstance(op, NlReplaceRoute):
            from ovsnet.backends.netlink import proto_number

            msgs.append((rtnl.route(True, op.dst, self.index_of(op.ifname), op.gateway, op.metric, proto_number(op.proto)), None))
        elif isinstance(op, NlDelRoute):
            msgs.append((rtnl.route(False, op.dst, self.index_of(op.ifname), op.gateway, op.metric, 0), None))
        else:
            raise TypeError(f"not a netlink op: {op!r}")
        for raw, created in msgs:
            self.pending.append((raw, _Sent(group, op, created)))
            if created:
                self.created_unflushed.add(created)

    # --- sending ------------------------------------------------------------

    def flush(self) -> None:
        """Send what is queued, chunk by chunk; stop after the first chunk with an error."""
        queue, self.pending = self.pending, []
        self.created_unflushed.clear()
        i = 0
        while i < len(queue) and not self.stopped:
            chunk: list[tuple[bytes, _Sent]] = []
            size = 0
            while i < len(queue) and (not chunk or size + len(queue[i][0]) <= CHUNK_BYTES):
                chunk.append(queue[i])
                size += len(queue[i][0])
                i += 1
            self._send_chunk(chunk)
        # What was never sent is neither ok nor touched: the caller does not undo it.

    def _send_chunk(self, chunk: list[tuple[bytes, _Sent]]) -> None:
        by_seq: dict[int, _Sent] = {}
        out = bytearray()
        for raw, sent in chunk:
            msg = bytearray(raw)
            struct.pack_into("=I", msg, 8, self.seq)  # our own sequence numbers
            by_seq[self.seq] = sent
            self.seq += 1
            out += msg
        self.sock.sendall(bytes(out))
        status: dict[int, int] = {}
        while len(status) < len(by_seq):
            data = self.sock.recv(SOCKET_BUFFER)
            for mtype, _flags, seq, payload in rtnl.messages(data):
                if mtype == rtnl.NLMSG_ERROR and seq in by_seq:
                    code = -struct.unpack_from("=i", payload, 0)[0]
                    if code == errno.ENODEV and isinstance(by_seq[seq].op, NlDeleteLink):
                        code = 0  # already gone: the end state a delete asks for
                    status[seq] = code
        o = self.outcome
        group_msgs: dict[int, list[int]] = {}
        for seq, sent in by_seq.items():
            group_msgs.setdefault(sent.group, []).append(seq)
        for group, seqs in group_msgs.items():
            codes = [status[s] for s in seqs]
            if any(c == 0 for c in codes):
                o.touched.add(group)
            bad = next((s for s in seqs if status[s] != 0), None)
            if bad is None:
                if group not in o.failed:
                    o.ok.add(group)
                continue
            o.ok.discard(group)
            o.failed.setdefault(group, (by_seq[bad].op, status[bad]))
            created = [by_seq[s].creates for s in seqs if by_seq[s].creates and status[s] == 0]
            o.created_then_failed += created
            self.stopped = True


def _index_needs(op: NlOp) -> set[str]:
    if isinstance(op, NlSetLink) and op.master:
        return {op.master}
    if isinstance(op, (NlAddAddress, NlDelAddress, NlReplaceRoute, NlDelRoute)):
        return {op.ifname}
    return set()


def open_socket(netns: str | None) -> socket.socket:
    """A raw rtnetlink socket in the namespace (it stays there for its life)."""
    if netns:
        from pyroute2 import netns as pr_netns

        sock = pr_netns.create_socket(netns, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE, flags=0)
    else:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    sock.bind((0, 0))
    return sock


def run(sock: socket.socket, groups: Sequence[Sequence[NlOp]], index_of: Callable[[str], int]) -> Outcome:
    batch = Batch(sock, index_of)
    for g, ops in enumerate(groups):
        for op in ops:
            try:
                batch.add(g, op)
            except LookupError:
                # An index that cannot be found (a master that does not exist):
                # the op fails like the kernel would have failed it.
                batch.flush()
                batch.outcome.failed.setdefault(g, (op, errno.ENODEV))
                batch.outcome.ok.discard(g)
                batch.stopped = True
            if batch.stopped:
                break
        if batch.stopped:
            break
    batch.flush()
    return batch.outcome
