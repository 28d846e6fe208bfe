"""The test bed's log lines, its one error type, and a list of named checks."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

T0 = time.monotonic()


def log(msg: str) -> None:
    """One line, stamped with the seconds since the harness started (VM runs are long:
    the stamps are how a reader finds where the time went)."""
    print(f"[vmbed +{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stdout, flush=True)


class HarnessError(Exception):
    """The test bed itself failed (a VM did not boot, a guest command failed or timed out)."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Checks:
    """Named pass/fail results, logged as they come; the run passes when there is at
    least one and every one passed."""

    results: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append(Check(name, ok, detail))
        log(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail and not ok else ""))
        return ok

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(c.ok for c in self.results)

    @property
    def counts(self) -> tuple[int, int]:
        passed = sum(1 for c in self.results if c.ok)
        return passed, len(self.results) - passed
