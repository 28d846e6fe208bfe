"""Open vSwitch failing under ovsnet: ovsdb-server restarted mid-apply, ovs-vswitchd stopped,
ovsdb-server absent from the start.

Every test dumps the foreign objects (an OVS bridge with two ports, a Linux
bridge, addresses, routes) before and after: whatever the fault, they must
not change.
"""

from __future__ import annotations

import dataclasses
import signal
import time

import pytest
from hardening_kit import (
    LONG,
    assert_nothing_of_ours,
    assert_same,
    daemon_pid,
    foreign_snapshot,
    host_snapshot,
    kill_ovsdb_server,
    restart_ovsdb_server,
    start_ovsdb_server,
)

from ovsnet import apply
from ovsnet.plan.model import Phase

pytestmark = pytest.mark.root


def _target(h, **kw):
    return dataclasses.replace(h.target, gateway_timeout=30.0, **kw)


@pytest.mark.parametrize(
    "when,sig",
    [
        # After the first Linux change: the OVSDB transaction has yet to be sent.
        ("before-transaction", signal.SIGKILL),
        pytest.param("before-transaction", signal.SIGTERM, marks=pytest.mark.skipif(not LONG, reason="OVSNET_LONG=1")),
        # After the transaction committed: the uplink phase and the final read-back follow.
        ("after-transaction", signal.SIGKILL),
    ],
)
def test_ovsdb_server_restarted_in_the_middle_of_an_apply(host, when, sig):
    """The IDL reconnects: the apply completes and verifies, or rolls back whole."""
    h = host
    checked = h.checked()
    before = host_snapshot(h)
    foreign = foreign_snapshot(h)
    restarted = []
    old_pid = daemon_pid(h.ovs, "ovsdb-server")

    def hook(change):
        if restarted:
            return
        if (when == "before-transaction" and change.phase is Phase.LINUX) or (when == "after-transaction" and change.phase is Phase.UPLINK):
            restart_ovsdb_server(h.ovs, sig)
            restarted.append(change.resource)

    outcome = None
    try:
        apply.up(checked, "node1", _target(h), apply.UpOptions(after_change=hook))
        outcome = "applied"
    except apply.ApplyFailed as exc:
        outcome = f"rolled back: {exc}"
        assert not exc.undo_errors, exc
        assert_same(before, host_snapshot(h), "rolled back after the ovsdb-server restart")
    assert restarted, "the hook never ran"
    assert daemon_pid(h.ovs, "ovsdb-server") not in (None, old_pid)
    print(f"\novsdb-server restarted ({signal.Signals(sig).name}) after {restarted[0]}: {outcome}")
    assert outcome == "applied", outcome
    assert apply.drift(checked, "node1", h.target).empty
    assert h.cli("status").returncode == 0
    assert_same(foreign, foreign_snapshot(h), "ovsdb-server restart")
    apply.down(checked, "node1", h.target)
    assert_same(before, host_snapshot(h), "down after the ovsdb-server restart")
    assert_nothing_of_ours(h)


def test_ovs_vswitchd_stopped_times_out_clearly_and_rolls_back(host):
    """The transaction commits but is never applied: a clear timeout, everything undone."""
    h = host
    checked = h.checked()
    before = host_snapshot(h)
    foreign = foreign_snapshot(h, vswitchd_restarted=True)
    h.ovs.stop_vswitchd()
    # Without ovs-vswitchd its ports lose PROMISC: that is the baseline now.
    stopped = host_snapshot(h)
    assert stopped["ovs"] == before["ovs"]
    try:
        t0 = time.monotonic()
        with pytest.raises(apply.ApplyFailed) as err:
            apply.up(checked, "node1", _target(h, ovs_timeout=2.0))
        took = time.monotonic() - t0
        msg = str(err.value)
        assert err.value.exit_code == 4
        assert "ovs-vswitchd" in msg and "cur_cfg" in msg and "is ovs-vswitchd running?" in msg, msg
        assert "rolled back" in msg and not err.value.undo_errors, msg
        assert took < 30, took
        # OVSDB: the rows were taken out again (the undo does not wait for vswitchd).
        assert_same(stopped, host_snapshot(h), "vswitchd stopped")
        assert h.state_files() == []
    finally:
        h.ovs.start_vswitchd()
    assert_same(foreign, foreign_snapshot(h, vswitchd_restarted=True), "vswitchd stopped and started again")
    # With the switch back, a plain up converges and down restores.
    apply.up(checked, "node1", _target(h))
    assert apply.drift(checked, "node1", h.target).empty
    apply.down(checked, "node1", h.target)
    assert_nothing_of_ours(h)


@pytest.mark.skipif(not LONG, reason="OVSNET_LONG=1: the CLI waits its full 10 s OVS timeout")
def test_ovs_vswitchd_stopped_cli_exit_4(host):
    h = host
    h.ovs.stop_vswitchd()
    try:
        before = host_snapshot(h)
        r = h.cli("up")
        assert r.returncode == 4, (r.returncode, r.stderr)
        assert "is ovs-vswitchd running?" in r.stderr and "rolled back" in r.stderr, r.stderr
        assert_same(before, host_snapshot(h), "vswitchd stopped (CLI)")
    finally:
        h.ovs.start_vswitchd()


def test_ovsdb_server_absent_from_the_start(host):
    """Exit 3, a message naming the socket, nothing changed; the same for status and down."""
    h = host
    before = host_snapshot(h)
    foreign = foreign_snapshot(h, vswitchd_restarted=True)
    sock = str(h.ovs.rundir / "db.sock")
    h.ovs.stop_vswitchd()
    kill_ovsdb_server(h.ovs, signal.SIGTERM)
    stopped = host_snapshot(h, with_ovs=False)  # without the switch its ports lose PROMISC
    try:
        for verb in ("up", "status", "down", "plan") if LONG else ("up", "down"):
            r = h.cli(verb)
            assert r.returncode == 3, (verb, r.returncode, r.stdout, r.stderr)
            assert "cannot reach ovsdb-server" in r.stderr and sock in r.stderr, (verb, r.stderr)
            assert len(r.stderr.strip().splitlines()) <= 3, r.stderr
        # A socket path that never existed.
        missing = str(h.workdir / "no-such-dir" / "db.sock")
        r = h.cli("up", "--db", f"unix:{missing}")
        assert r.returncode == 3 and missing in r.stderr, r.stderr
        # A remote that is not even an OVSDB remote.
        r = h.cli("up", "--db", "bogus:remote")
        assert r.returncode == 3 and "invalid OVSDB remote" in r.stderr, r.stderr
        assert_same(stopped, host_snapshot(h, with_ovs=False), "ovsdb-server absent")
        assert h.state_files() == []
    finally:
        start_ovsdb_server(h.ovs)
        h.ovs.start_vswitchd()
    assert host_snapshot(h)["ovs"] == before["ovs"]
    assert_same(foreign, foreign_snapshot(h, vswitchd_restarted=True), "ovsdb-server absent, then back")
