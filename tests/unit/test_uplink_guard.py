"""The SSH guard of `up`: never move a NIC an SSH session runs over, unless told.

The rule is checked with stand-ins for the route lookup and the kernel's list
of sshd connections: the integration tests (test_ssh_guard.py) cover both
for real, with sshd, an SSH client and sudo in namespaces; moving this
machine's own NIC to test it is exactly what must not happen.
"""

from __future__ import annotations

import pytest

from ovsnet.apply.guard import check_uplink_move
from ovsnet.backends.sessions import Session
from ovsnet.errors import RefusedError
from ovsnet.plan.model import Plan


class _Route:
    def __init__(self, via: str | None, by: dict[str, str] | None = None):
        self.via = via
        self.by = by or {}
        self.asked: list[str] = []

    def route_to(self, ip: str) -> str | None:
        self.asked.append(ip)
        return self.by.get(ip, self.via)


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


def test_a_session_the_kernel_reports_blocks_without_any_environment(monkeypatch):
    """sudo dropped SSH_CONNECTION; the kernel still lists sshd's connection."""
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    b = _Route("eth1")
    seen = [Session("198.51.100.9", 40022, "192.0.2.11", 22)]
    with pytest.raises(RefusedError, match="an SSH session from 198.51.100.9 .port 40022. to 192.0.2.11 runs over eth1"):
        check_uplink_move(b, PLAN, allow=False, in_namespace=False, sessions=lambda: seen)
    # Inside a namespace the caller's own SSH_CONNECTION is not that namespace's, the kernel's list is.
    monkeypatch.setenv("SSH_CONNECTION", "198.51.100.7 50022 192.0.2.11 22")
    with pytest.raises(RefusedError, match="198.51.100.9"):
        check_uplink_move(_Route("eth1", {"198.51.100.7": "eth0"}), PLAN, allow=False, in_namespace=True, sessions=lambda: seen)
    check_uplink_move(b, PLAN, allow=True, in_namespace=False, sessions=lambda: seen)


def test_sessions_over_other_nics_are_fine():
    seen = [Session("10.0.0.5", 50000, "10.0.0.2", 22), Session("10.0.0.6", 50001, "10.0.0.2", 2222)]
    b = _Route("eth0")
    check_uplink_move(b, PLAN, allow=False, in_namespace=True, sessions=lambda: seen)
    assert b.asked == ["10.0.0.5", "10.0.0.6"]
