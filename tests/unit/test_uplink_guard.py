"""The SSH guard of `up`: never move the NIC the current SSH session runs over, unless told.

The rule is checked with a stand-in for the netlink route lookup: on a real
host the lookup is `ip route get` through netlink, which the integration tests
cover; moving this machine's own NIC to test it is exactly what must not happen.
"""

from __future__ import annotations

import pytest

from ovsnet.apply.guard import check_uplink_move
from ovsnet.errors import RefusedError
from ovsnet.plan.model import Plan


class _Route:
    def __init__(self, via: str | None):
        self.via = via
        self.asked: list[str] = []

    def route_to(self, ip: str) -> str | None:
        self.asked.append(ip)
        return self.via


PLAN = Plan("t", "node1", (), moves_from=("eth1",))


def test_refuses_to_move_the_nic_of_the_ssh_session(monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.11 22")
    b = _Route("eth1")
    with pytest.raises(RefusedError, match="--allow-uplink-move"):
        check_uplink_move(b, PLAN, allow=False, in_namespace=False)
    assert b.asked == ["198.51.100.7"]


def test_allowed_when_told(monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.11 22")
    check_uplink_move(_Route("eth1"), PLAN, allow=True, in_namespace=False)


def test_other_nic_or_no_ssh_is_fine(monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.11 22")
    check_uplink_move(_Route("eth0"), PLAN, allow=False, in_namespace=False)
    monkeypatch.delenv("SSH_CONNECTION")
    b = _Route("eth1")
    check_uplink_move(b, PLAN, allow=False, in_namespace=False)
    assert b.asked == []


def test_lab_hosts_are_not_this_session(monkeypatch):
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.11 22")
    b = _Route("eth1")
    check_uplink_move(b, PLAN, allow=False, in_namespace=True)
    assert b.asked == []
