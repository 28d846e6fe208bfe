"""What the VM scenarios (tests/vm) share: the test bed library (vagrant/vmbed)
on the import path, the gate (OVSNET_VM_TESTS=1), the check that this machine
can run VMs, a two-VM bed, and each scenario's time for the summary that
tests/vm/conftest.py prints at the end of the run.

A scenario module makes its own bed (its VMs are its own to reboot and break)
with `two_vm_bed` in a module-scoped fixture, and times each scenario with
`timed`."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "vagrant") not in sys.path:
    sys.path.insert(0, str(REPO / "vagrant"))

from vmbed import Agent, Bed, Cable, HarnessError, Qmp, Vm, find_image, log  # noqa: E402

# What a scenario module needs from the library, from here: this module puts
# vagrant/ on the import path first.
__all__ = ["ALL", "ALL_REASON", "ENABLED", "LEVEL", "SKIP_REASON", "TIMINGS", "Agent", "Bed", "Cable", "HarnessError", "Qmp", "Vm", "log", "require_vm_tools", "timed", "two_vm_bed"]

# OVSNET_VM_TESTS=1: the scenarios that fit CI's budget (see .ci/run); =all: every scenario.
LEVEL = os.environ.get("OVSNET_VM_TESTS", "")
ENABLED = LEVEL in ("1", "all")
ALL = LEVEL == "all"
SKIP_REASON = "boots QEMU VMs (minutes under emulation); set OVSNET_VM_TESTS=1 (CI's set) or =all"
ALL_REASON = "beyond CI's time budget: runs with OVSNET_VM_TESTS=all"
TOOLS = ("qemu-system-x86_64", "debootstrap", "mke2fs", "tcpdump", "ssh", "ssh-keygen")

# (module, what) -> seconds, for the summary at the end of the session.
TIMINGS: dict[tuple[str, str], float] = {}


def require_vm_tools() -> None:
    # Asked for explicitly (OVSNET_VM_TESTS=1): a missing tool is a failure, not a skip.
    assert os.geteuid() == 0, "the VM tests need root (debootstrap, mke2fs -d)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    assert not missing, (f"the VM tests need {', '.join(missing)}: run .ci/vm, or apt-get install "
                         "qemu-system-x86 debootstrap e2fsprogs tcpdump openssh-client")


@contextmanager
def timed(module: str, what: str) -> Iterator[None]:
    t = time.monotonic()
    try:
        yield
    finally:
        TIMINGS[(module, what)] = time.monotonic() - t


@contextmanager
def two_vm_bed(module: str, failed: Callable[[], bool], captures: Sequence[tuple[str, str]] = ()) -> Iterator[Bed]:
    """node2 and node1 of vagrant/topology.toml, joined by two cables (trunk: eth1,
    trunk2: eth2), booted, the tree at /ovsnet, SSH set up for root and vagrant;
    captures: (host, cable) pairs whose frames QEMU records (Vm.capture_path).
    The work directory (consoles, ssh_config, captures) is kept when failed()
    says so at the end, or with OVSNET_VM_KEEP=1. OVSNET_VM_IMAGE names an image
    directory to use instead of build-box.sh's cache."""
    require_vm_tools()
    image = find_image(os.environ.get("OVSNET_VM_IMAGE"))
    work = Path(tempfile.mkdtemp(prefix=f"ovsnet-vm-{module}."))
    bed = Bed(image, work, ("node2", "node1"), (Cable("trunk", "node2", "node1"), Cable("trunk2", "node2", "node1")), captures)
    broken = False
    try:
        bed.boot()
        bed.setup_ssh()
        yield bed
    except BaseException:
        broken = True
        raise
    finally:
        bed.stop()
        for k, v in bed.timings.items():
            TIMINGS[(module, k)] = v
        if broken or failed() or os.environ.get("OVSNET_VM_KEEP") == "1":
            TIMINGS[(module, f"work directory kept: {work}")] = 0.0
        else:
            bed.remove_work()
