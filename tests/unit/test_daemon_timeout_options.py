"""`--ovs-timeout` and `--docker-timeout`: a slow host (an emulated guest took over 10 s per call) gets the time it is given."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ovsnet.cli import app

SEED = str(Path(__file__).resolve().parents[2] / "topologies" / "seed.toml")
runner = CliRunner()


@pytest.mark.parametrize("verb", ["up", "down"])
def test_the_timeouts_reach_the_target(seen, verb):
    result = runner.invoke(app, [verb, SEED, "--host", "node1", "--state-dir", "/nonexistent-ovsnet-test",
                                 "--ovs-timeout", "60", "--docker-timeout", "120"])
    assert result.exit_code == 0, result.stderr
    assert (seen[0].ovs_timeout, seen[0].docker_timeout) == (60.0, 120.0)


def test_the_defaults_are_ten_seconds(seen):
    result = runner.invoke(app, ["up", SEED, "--host", "node1", "--state-dir", "/nonexistent-ovsnet-test"])
    assert result.exit_code == 0, result.stderr
    assert (seen[0].ovs_timeout, seen[0].docker_timeout) == (10.0, 10.0)


@pytest.mark.parametrize("option, daemon", [("--ovs-timeout", "Open vSwitch"), ("--docker-timeout", "the Docker Engine")])
@pytest.mark.parametrize("given", ["0", "-1", "601", "nan"])
def test_out_of_range_is_a_usage_error_before_anything_runs(seen, option, daemon, given):
    result = runner.invoke(app, ["up", SEED, "--host", "node1", option, given])
    assert result.exit_code == 2 and seen == []
    assert result.stderr.strip() == f"ovsnet: {option} {float(given):g}: give the seconds {daemon} may take per call, more than 0 and at most 600"


def test_offline_plan_refuses_a_timeout_it_would_ignore():
    result = runner.invoke(app, ["plan", SEED, "--host", "node1", "--offline", "--ovs-timeout", "30"])
    assert result.exit_code == 2
    assert "--offline plans from nothing and reads no host: --ovs-timeout would be ignored" in result.stderr
