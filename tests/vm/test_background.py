"""Waits for the VM tests (and the DHCP lease test) started in the background
(OVSNET_VM_TESTS=background, see tests/support/vm_background.py) and passes
or fails with them."""

from __future__ import annotations

import time

import pytest

from tests.support import vm_background

pytestmark = [pytest.mark.vm, pytest.mark.skipif(not vm_background.BACKGROUND,
                                                 reason="waits for the VM tests started in the background (OVSNET_VM_TESTS=background)")]
# The VM tests alone take 10 to 20 minutes under emulation; beside the lab tests, longer.
WAIT = 45 * 60


def test_vm_tests_run_in_the_background_pass(request, capsys):
    child = request.config.stash.get(vm_background.KEY, None)
    assert child is not None, "OVSNET_VM_TESTS=background, but the VM tests were not started (see tests/conftest.py)"
    waited = time.monotonic()
    try:
        code = child.proc.wait(timeout=WAIT)
    except Exception:
        vm_background.stop(request.config)
        raise
    text = child.log.read_text(errors="replace")
    tail = "\n".join(text.splitlines()[-60:])
    with capsys.disabled():
        print(f"\nVM tests (background, niced): started {time.monotonic() - child.started:.0f} s ago, "
              f"waited for {time.monotonic() - waited:.0f} s after the other tests; log {child.log}\n{tail}")
    assert code == 0, f"the VM tests failed (exit {code}); log {child.log}:\n{tail}"
