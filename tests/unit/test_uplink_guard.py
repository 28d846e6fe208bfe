"""The SSH guard of `up`: never move the NIC the current SSH session runs over, unless told.

The rule is checked with a stand-in for the netlink route lookup: on a real
host the lookup is `ip route get` through netlink, which the integration tests
cover; moving this machine's own NIC to test it is exactly what must not happen.
"""

from __future__ import annotations

import pytest

from ovsnet import apply
from ovsnet.errors import RefusedError
from ovsnet.plan import Plan
from ovsnet.statefile import SavedUplink
from ovsnet.target import Target


class _Route:
    def __init__(self, via: str | None):
        self.via = via
        self.asked: list[str] = []

    def route_to(self, ip: str) -> str | None:
        self.asked.append(ip)
        return self.via


class _Backends:
    def __init__(self, via: str | None):
        self.netlink = _Route(via)


PLAN = Plan("t", "node1", (), (), SavedUplink("eth1", ("192.0.2.11/24",), (), None))


def test_refuses_to_move_the_nic_of_the_ssh_session(monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.11 22")
    b = _Backends("eth1")
    with pytest.raises(RefusedError, match="--allow-uplink-move"):
        apply._check_uplink_move(b, PLAN, Target(), apply.UpOptions())
    assert b.netlink.asked == ["198.51.100.7"]


def test_allowed_when_told(monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.11 22")
    apply._check_uplink_move(_Backends("eth1"), PLAN, Target(), apply.UpOptions(allow_uplink_move=True))


def test_other_nic_or_no_ssh_is_fine(monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.11 22")
    apply._check_uplink_move(_Backends("eth0"), PLAN, Target(), apply.UpOptions())
    monkeypatch.delenv("SSH_CONNECTION")
    b = _Backends("eth1")
    apply._check_uplink_move(b, PLAN, Target(), apply.UpOptions())
    assert b.netlink.asked == []


def test_lab_hosts_are_not_this_session(monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.11 22")
    b = _Backends("eth1")
    apply._check_uplink_move(b, PLAN, Target(netns="lab-h1"), apply.UpOptions())
    assert b.netlink.asked == []
