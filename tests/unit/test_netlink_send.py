"""The one netlink sender, against a stand-in socket that acknowledges like the kernel.

Pure logic: what is sent, in what order, where it stops, what it reports.
The real kernel is in tests/integration/test_netlink_backend.py.
"""

from __future__ import annotations

import errno
import struct

import pytest

from ovsnet.backends.netlink import codec
from ovsnet.backends.netlink.ops import (
    NlAddAddress,
    NlDelAddress,
    NlDeleteLink,
    NlSetLink,
)
from ovsnet.backends.netlink.send import Sender
from ovsnet.kinds.linux_bridge import NlCreateBridge


class FakeKernel:
    """Acks every request; `refuse` maps an index in the sending order to an errno."""

    def __init__(self, refuse: dict[int, int] | None = None):
        self.refuse = refuse or {}
        self.sent: list[bytes] = []
        self._acks: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        seq = struct.unpack_from("=I", data, 8)[0]
        code = self.refuse.get(len(self.sent), 0)
        self.sent.append(data)
        ack = struct.pack("=i", -code) + data[:16]
        self._acks.append(struct.pack("=IHHII", 16 + len(ack), codec.NLMSG_ERROR, 0, seq, 0) + ack)

    def recv(self, _size: int) -> bytes:
        return self._acks.pop(0)

    def names(self) -> list[str]:
        """The IFLA_IFNAME or the type of each request sent, for readable asserts."""
        out = []
        for raw in self.sent:
            mtype = struct.unpack_from("=H", raw, 4)[0]
            if mtype in (codec.RTM_NEWLINK, codec.RTM_DELLINK):
                attrs = codec.attrs(memoryview(raw)[16:], 16)
                out.append(("del " if mtype == codec.RTM_DELLINK else "link ") + bytes(attrs[codec.IFLA_IFNAME]).rstrip(b"\0").decode())
            else:
                out.append({codec.RTM_NEWADDR: "addr+", codec.RTM_DELADDR: "addr-"}.get(mtype, str(mtype)))
        return out


INDEX = {"br0": 5, "mgmt0": 9, "eth1": 3}

GROUPS = [
    [NlCreateBridge("br0", 1500, "ovsnet:t:docker-bridge"), NlSetLink("br0", up=True)],
    [NlSetLink("mgmt0", up=True)],
    [NlAddAddress("mgmt0", "192.0.2.11/24")],
    [NlDelAddress("eth1", "192.0.2.11/24")],
]


def test_everything_in_order_with_our_sequence_numbers():
    k = FakeKernel()
    seen = []
    out = Sender(k, INDEX.__getitem__).run(GROUPS, seen.append)
    assert out.ok == [0, 1, 2, 3] and out.failed is None
    assert seen == [0, 1, 2, 3]
    assert k.names() == ["link br0", "link br0", "link br0", "link mgmt0", "addr+", "addr-"]
    seqs = [struct.unpack_from("=I", raw, 8)[0] for raw in k.sent]
    assert seqs == sorted(set(seqs))


def test_nothing_runs_after_a_refusal():
    # The address cannot be added to the management port: the NIC must keep its own.
    k = FakeKernel({4: errno.EEXIST})
    out = Sender(k, INDEX.__getitem__).run(GROUPS)
    assert out.ok == [0, 1]
    assert out.failed is not None and out.failed[0] == 2 and out.failed[2] == errno.EEXIST
    assert "addr-" not in k.names()


def test_a_create_whose_follow_up_fails_is_reported_for_removal():
    k = FakeKernel({1: errno.EINVAL})  # the MTU/alias set after the create
    out = Sender(k, INDEX.__getitem__).run(GROUPS)
    assert out.ok == [] and out.failed is not None and out.failed[0] == 0
    assert out.created_then_failed == ["br0"] and out.touched
    assert k.names() == ["link br0", "link br0"]


def test_a_failed_create_sends_none_of_its_follow_ups():
    # EEXIST on the create: whatever holds the name is not ours, and is not touched.
    k = FakeKernel({0: errno.EEXIST})
    out = Sender(k, INDEX.__getitem__).run(GROUPS)
    assert out.failed is not None and out.failed[0] == 0 and not out.touched and out.created_then_failed == []
    assert k.names() == ["link br0"]


def test_deleting_what_is_gone_is_done():
    k = FakeKernel({0: errno.ENODEV})
    out = Sender(k, INDEX.__getitem__).run([[NlDeleteLink("old0")], [NlSetLink("br0", up=True)]])
    assert out.ok == [0, 1] and out.failed is None


def test_an_unknown_link_fails_like_the_kernel_would():
    k = FakeKernel()
    out = Sender(k, INDEX.__getitem__).run([[NlSetLink("br0", up=True)], [NlSetLink("x0", master="ghost0")]])
    assert out.ok == [0] and out.failed is not None and out.failed[2] == errno.ENODEV
    assert NlSetLink("x0", master="ghost0").explain(errno.ENODEV) == "no link named x0 (No such device)"


def test_a_listener_that_raises_stops_the_run_and_the_outcome_says_what_was_done():
    k = FakeKernel()
    s = Sender(k, INDEX.__getitem__)

    def boom(g: int) -> None:
        if g == 1:
            raise RuntimeError("injected")

    with pytest.raises(RuntimeError, match="injected"):
        s.run(GROUPS, boom)
    assert s.outcome.ok == [0, 1]
    assert k.names() == ["link br0", "link br0", "link br0", "link mgmt0"]
