"""The VM tests run beside the lab tests: OVSNET_VM_TESTS=background.

Under software emulation the VM tests spend most of their quarter of an hour
with QEMU turning guest code into host code, while the lab tests spend most
of theirs waiting on pings, timeouts and daemons. Run one after the other
they add up past CI's budget; run side by side they take about as long as
the longer of the two. So with OVSNET_VM_TESTS=background the main pytest
leaves them out of its own collection and, once it has collected, starts
them in a child pytest (with OVSNET_VM_TESTS=1) under `nice`, so that the
lab tests, whose checks have deadlines, keep the CPU whenever both want it;
tests/vm/test_background.py, collected last, waits for the child and passes
or fails with it, printing its summary.

The child also takes the one lab test that is mostly a wait on timers: the
DHCP handover waits out two 2-minute leases (dnsmasq's shortest), four of
the main run's 24 minutes, with almost no CPU (measured 2026-11-30: main run
1,427 s with it, the VM tests 986 s beside it).

Only that child is ever signalled, by its own process group, which this
module made (start_new_session), never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODE = os.environ.get("OVSNET_VM_TESTS", "")
BACKGROUND = MODE == "background"
WAITER = "test_background.py"
# What the child runs, and the main run leaves out (patterns relative to tests/).
CHILD = ("vm/test_vm_*.py", "integration/test_dhcp_handover.py")
# Lab tests have deadlines (a gateway's 5 s, a ping's loss budget): QEMU gets
# the CPU they leave, and a weight about a tenth of theirs when both want it.
NICE = 10


@dataclass
class Child:
    proc: subprocess.Popen
    log: Path
    started: float


KEY = pytest.StashKey[Child]()


def start(config: pytest.Config) -> Child:
    # Kept after the run (like the harness's own logs): the child's whole output.
    log = Path(tempfile.mkdtemp(prefix="ovsnet-vm-background.")) / "vm-tests.log"
    env = {**os.environ, "OVSNET_VM_TESTS": "1"}
    paths = sorted(str(p) for pattern in CHILD for p in (REPO / "tests").glob(pattern))
    argv = ["nice", "-n", str(NICE), sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=5", *paths]
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    child = Child(proc, log, time.monotonic())
    config.stash[KEY] = child
    return child


def stop(config: pytest.Config) -> None:
    """The main run ended before waiting for the child (interrupted, -x): end it and its QEMUs."""
    child = config.stash.get(KEY, None)
    if child is None or child.proc.poll() is not None:
        return
    try:
        os.killpg(child.proc.pid, signal.SIGTERM)
        child.proc.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(child.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.proc.wait()
