"""The VM scenarios' timings (tests/support/vms.py), printed at the end of the run."""

from __future__ import annotations

import pytest

from tests.support.vms import TIMINGS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("VM test bed timings")
    for (module, what), secs in TIMINGS.items():
        terminalreporter.write_line(f"{module}: {what}" + (f": {secs:.1f} s" if secs else ""))
