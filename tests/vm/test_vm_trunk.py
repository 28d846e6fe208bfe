"""The two-VM trunk test (vagrant/qemu-test.sh) as a pytest test, so its result
shows in pytest's summary.

It boots two QEMU VMs under software emulation (about 4 to 6 minutes with the
guest image cached, plus about 3 minutes to build the image the first time),
so it runs only when OVSNET_VM_TESTS=1 (CI sets it through .ci/vm). The
harness's own output is streamed as it runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "vagrant" / "qemu-test.sh"
ENABLED = os.environ.get("OVSNET_VM_TESTS") in ("1", "all")


@pytest.mark.skipif(not ENABLED, reason="boots two QEMU VMs (minutes under emulation); set OVSNET_VM_TESTS=1")
def test_two_vms_trunked(capsys: pytest.CaptureFixture[str]) -> None:
    # Asked for explicitly: a missing tool is a failure, not a skip.
    assert os.geteuid() == 0, "the VM test needs root (debootstrap, mke2fs -d)"
    missing = [t for t in ("qemu-system-x86_64", "debootstrap", "mke2fs", "tcpdump") if shutil.which(t) is None]
    assert not missing, f"the VM test needs {', '.join(missing)}: run .ci/vm, or apt-get install qemu-system-x86 debootstrap e2fsprogs tcpdump"

    tail: list[str] = []
    with capsys.disabled():
        sys.stdout.write("\n")
        proc = subprocess.Popen(["bash", str(HARNESS)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            tail = (tail + [line.rstrip("\n")])[-40:]
        code = proc.wait(timeout=60)
    assert code == 0, "the two-VM trunk test failed:\n" + "\n".join(tail)
