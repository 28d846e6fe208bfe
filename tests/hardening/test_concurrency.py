"""Two runs on one host at once: `up` with `up`, `up` with `down`.

One flock per host serialises them: the second fails at once with the lock
message (exit 6, naming the holder's pid) or, with --wait, waits its turn.
To make "at once" certain rather than likely, the first run is frozen with
SIGSTOP while it holds the lock (mid-apply), the second is started, then the
first is let go with SIGCONT. A free-running race of real subprocesses is
tried as well; whatever its interleaving, the end state must be one of the
two consistent ones: fully applied (status exit 0) or fully removed (the
host as before).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hardening_kit import (
    LONG,
    OVSNET,
    ROOT,
    assert_nothing_of_ours,
    assert_same,
    foreign_snapshot,
    host_snapshot,
)

from ovsnet.apply import record

pytestmark = pytest.mark.root

LOCK_MSG = "another ovsnet run (pid {pid}) is applying to host node1; wait for it, or pass --wait SECONDS"


def _lock_path(h) -> Path:
    return record.path_for(h.target.state_dir, h.topology_name, "node1").with_suffix(".lock")


def _spawn(h, verb: str, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("OVSNET_TEST_CRASH_AFTER", "OVSNET_STATE_DIR")}
    return subprocess.Popen([OVSNET, verb, str(h.topo_file), *h.where, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)


def _finish(p: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return p.returncode, out, err


def _holds_lock(h, pid: int) -> bool:
    try:
        return _lock_path(h).read_text().strip() == str(pid) and _locked(h)
    except FileNotFoundError:
        return False


def _locked(h) -> bool:
    fd = os.open(_lock_path(h), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _frozen_holder(h, verb: str, *args: str) -> subprocess.Popen:
    """Start `ovsnet VERB`, SIGSTOP it as soon as it holds the host's lock."""
    for _attempt in range(5):
        p = _spawn(h, verb, *args)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            if _holds_lock(h, p.pid):
                os.kill(p.pid, signal.SIGSTOP)
                return p
            time.sleep(0.005)
        # It finished before we could catch it holding the lock: undo and try again.
        _finish(p)
        if verb == "up":
            assert _run(h, "down")[0] == 0
    raise AssertionError(f"never caught `ovsnet {verb}` holding the lock")


def _run(h, verb: str, *args: str) -> tuple[int, str, str]:
    return _finish(_spawn(h, verb, *args))


def _refused_then_queued(h, holder: subprocess.Popen, verb: str, *args: str) -> subprocess.Popen:
    """While the frozen `holder` keeps the lock: `ovsnet VERB` fails at once naming it, and
    `ovsnet VERB --wait` is started to queue behind it.

    The holder is let go even if that fails: left stopped, it would keep the
    lock and the fixture's `down` would never get it."""
    try:
        rc, out, err = _run(h, verb)
        assert rc == 6 and LOCK_MSG.format(pid=holder.pid) in err, (rc, out, err)
        waiter = _spawn(h, verb, "--wait", "60", *args)
        time.sleep(0.5)
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    return waiter


def test_lock_held_by_another_process_fails_clearly_or_waits(host):
    h = host
    before = host_snapshot(h)
    _lock_path(h).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_lock_path(h), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        rc, _, err = _run(h, "up")
        assert rc == 6 and LOCK_MSG.format(pid=os.getpid()) in err, (rc, err)
        if LONG:
            t0 = time.monotonic()
            rc, _, err = _run(h, "up", "--wait", "1")
            assert rc == 6 and time.monotonic() - t0 >= 1.0, (rc, err)
            rc, _, err = _run(h, "down")
            assert rc == 6 and "another ovsnet run" in err
        assert_same(before, host_snapshot(h), "locked out")
        waiter = _spawn(h, "up", "--wait", "60")
        time.sleep(1.5)
        assert waiter.poll() is None, "did not wait for the lock"
    finally:
        os.close(fd)  # releases the flock
    rc, out, err = _finish(waiter)
    assert rc == 0 and "changes applied and verified" in out, (rc, out, err)
    assert _run(h, "status")[0] == 0
    assert _run(h, "down")[0] == 0
    assert_same(before, host_snapshot(h))


def test_two_ups_at_once_one_applies_the_other_fails_or_waits(host):
    h = host
    before = host_snapshot(h)
    foreign = foreign_snapshot(h, full=before)
    first = _frozen_holder(h, "up", "--json")
    waiter = _refused_then_queued(h, first, "up", "--json")
    rc1, out1, err1 = _finish(first)
    rc2, out2, err2 = _finish(waiter)
    assert rc1 == 0, err1
    assert rc2 == 0, err2
    # The first applied everything; the second found nothing left to do.
    assert json.loads(out1)["applied"] > 0 and json.loads(out2)["applied"] == 0
    assert _run(h, "status")[0] == 0
    assert_same(foreign, foreign_snapshot(h))
    assert _run(h, "down")[0] == 0
    assert_same(before, host_snapshot(h))


def test_up_racing_down_one_wins_and_the_state_is_consistent(host):
    h = host
    before = host_snapshot(h)
    up = _frozen_holder(h, "up")
    down = _refused_then_queued(h, up, "down")
    assert _finish(up)[0] == 0
    rc, out, err = _finish(down)
    assert rc == 0 and "changes applied" in out, (rc, out, err)
    assert_same(before, host_snapshot(h), "up, then the waiting down")
    assert_nothing_of_ours(h)
    if not LONG:
        return
    # And the other way round: down holds the lock (nothing to do), up waits.
    assert _run(h, "up")[0] == 0
    down = _frozen_holder(h, "down")
    up = _refused_then_queued(h, down, "up")
    assert _finish(down)[0] == 0
    assert _finish(up)[0] == 0
    assert _run(h, "status")[0] == 0
    assert _run(h, "down")[0] == 0
    assert_same(before, host_snapshot(h))


@pytest.mark.skipif(not LONG, reason="OVSNET_LONG=1: free-running races (the frozen-holder tests above are the deterministic ones)")
def test_free_running_races_end_consistent(host):
    """No freezing: start the pair together and check the end state, whatever the order."""
    h = host
    before = host_snapshot(h)
    foreign = foreign_snapshot(h, full=before)
    outcomes = []
    for pair in (("up", "up"), ("up", "down"), ("down", "up")):
        if pair[0] == "down":
            assert _run(h, "up")[0] == 0
        procs = [_spawn(h, verb) for verb in pair]
        results = [_finish(p) for p in procs]
        codes = [r[0] for r in results]
        for (rc, _, err), p in zip(results, procs):
            assert rc in (0, 6), (pair, rc, err)
            if rc == 6:
                assert "another ovsnet run (pid " in err
        assert 0 in codes, (pair, results)
        outcomes.append((pair, tuple(codes)))
        status = _run(h, "status")[0]
        if status == 0:
            pass  # fully applied
        else:
            assert_same(before, host_snapshot(h), f"race {pair}: neither applied nor removed")
        assert_same(foreign, foreign_snapshot(h), f"race {pair}")
        _run(h, "down")
        assert_same(before, host_snapshot(h))
    print(f"\nfree-running races (verbs, exit codes): {outcomes}")
