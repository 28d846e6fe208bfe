"""The linters CI holds the code to: ruff (pyflakes, import order, bugbear, the shell rules) and mypy.

Configured in pyproject.toml; run here so that the README's one test command
covers them, and a change that breaks either fails CI like any other test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_ruff_is_clean():
    r = _run("ruff", "check", "--no-cache", "ovsnet", "tests", "bench", "ansible")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean_on_the_product():
    r = _run("mypy", "--no-incremental")
    assert r.returncode == 0, r.stdout + r.stderr
