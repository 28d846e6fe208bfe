"""Fixtures the unit tests of the command line share."""

from __future__ import annotations

import pytest

import ovsnet.apply
from ovsnet.apply import Result
from ovsnet.apply.target import Target
from ovsnet.plan.model import Plan


@pytest.fixture
def seen(monkeypatch) -> list[Target]:
    """Stand in for up and down: record the Target the CLI built, change nothing."""
    targets: list[Target] = []

    def fake(checked, host, target, *rest, **kw):
        targets.append(target)
        return Result(Plan("seed", host, ()), (), 0.0)

    monkeypatch.setattr(ovsnet.apply, "up", fake)
    monkeypatch.setattr(ovsnet.apply, "down", fake)
    return targets
