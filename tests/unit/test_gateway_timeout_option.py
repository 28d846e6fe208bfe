"""`ovsnet up --gateway-timeout SECONDS`: parsed, checked, and handed to the apply as the ARP wait."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ovsnet.apply import GATEWAY_TIMEOUT_MAX, check_gateway_timeout
from ovsnet.apply.target import Target
from ovsnet.cli import app
from ovsnet.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "topologies" / "seed.toml")
runner = CliRunner()


def up(*extra: str):
    return runner.invoke(app, ["up", SEED, "--host", "node1", "--state-dir", "/nonexistent-ovsnet-test", *extra])


def test_default_is_unchanged(seen):
    result = up()
    assert result.exit_code == 0, result.stderr
    assert seen[0].gateway_timeout == Target().gateway_timeout == 5.0


@pytest.mark.parametrize("given, expected", [("1", 1.0), ("0.5", 0.5), ("30", 30.0), (str(int(GATEWAY_TIMEOUT_MAX)), GATEWAY_TIMEOUT_MAX)])
def test_a_value_reaches_the_apply(seen, given, expected):
    result = up("--gateway-timeout", given)
    assert result.exit_code == 0, result.stderr
    assert seen[0].gateway_timeout == expected


@pytest.mark.parametrize("given", ["0", "-1", "301", "1e9", "nan", "inf", "-inf"])
def test_out_of_range_is_a_usage_error_before_anything_runs(seen, given):
    result = up("--gateway-timeout", given)
    assert result.exit_code == 2
    assert seen == []
    assert "--gateway-timeout" in result.stderr and "at most 300" in result.stderr and "more than 0" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_refused_even_when_the_file_is_bad(seen, tmp_path):
    bad = tmp_path / "missing.toml"
    result = runner.invoke(app, ["up", str(bad), "--host", "node1", "--gateway-timeout", "0"])
    assert result.exit_code == 2 and "--gateway-timeout 0" in result.stderr


def test_not_a_number_is_refused_by_the_parser(seen):
    result = up("--gateway-timeout", "soon")
    assert result.exit_code == 2 and seen == []
    assert "--gateway-timeout" in result.stderr and "Traceback" not in result.stderr


def test_help_lists_the_option():
    result = runner.invoke(app, ["up", "--help"])
    assert "--gateway-timeout" in result.stdout and "SECONDS" in result.stdout


def test_check_function():
    assert check_gateway_timeout(5) == 5.0
    for bad in (0.0, -0.1, GATEWAY_TIMEOUT_MAX + 0.001, float("nan")):
        with pytest.raises(UsageError):
            check_gateway_timeout(bad)
