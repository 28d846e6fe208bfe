"""The command line's contract: shared options, --json and -q everywhere, exit codes without collisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ovsnet.apply
from ovsnet.cli import app
from ovsnet.errors import EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_EXEC_OWN, EXIT_INTERNAL

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "topologies" / "seed.toml")
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_every_command_that_prints_has_json_and_quiet():
    commands = ["validate", "plan", "up", "down", "status", "addresses", "install", "docker-config", "graph", "verify"]
    for name in commands:
        text = run(name, "--help").stdout
        assert "--json" in text and "--quiet" in text, name
    for sub in ("up", "down", "status", "plan"):
        text = run("lab", sub, "--help").stdout
        assert "--json" in text and "--quiet" in text, sub


def test_target_options_are_the_same_on_every_host_command():
    for name in ("plan", "up", "down", "status"):
        text = run(name, "--help").stdout
        for opt in ("--db", "--netns", "--state-dir", "--resolv-conf"):
            assert opt in text, (name, opt)


def test_offline_plan_refuses_target_options_instead_of_ignoring_them():
    r = run("plan", SEED, "--host", "node1", "--offline", "--netns", "x", "--db", "unix:/nope")
    assert r.exit_code == EXIT_BAD_INPUT
    assert "--offline plans from nothing and reads no host: --db, --netns would be ignored" in r.stderr


def test_detailed_exit_code_tells_pending_changes():
    assert run("plan", SEED, "--host", "node1", "--offline").exit_code == 0
    assert run("plan", SEED, "--host", "node1", "--offline", "--detailed-exitcode", "-q").exit_code == EXIT_DRIFT


def test_lab_plan_of_a_lab_that_is_not_there_is_bad_input():
    r = run("lab", "plan", SEED, "--prefix", "ovunone", "--detailed-exitcode")
    assert r.exit_code == EXIT_BAD_INPUT
    assert "no lab ovunone at /run/ovsnet-lab/ovunone: `ovsnet lab up" in r.stderr


def test_a_bad_baseline_is_refused_before_any_ping(tmp_path):
    bad = tmp_path / "before.json"
    bad.write_text('{"pairs": "none"}')
    r = run("verify", SEED, "--lab", "--prefix", "ovunone", "--baseline", str(bad))
    assert r.exit_code == EXIT_BAD_INPUT
    assert f"--baseline {bad}: not the output of `ovsnet verify --json` (ValueError: no list of pairs)" in r.stderr


def test_validate_json_and_quiet(tmp_path):
    r = run("validate", SEED, "--json")
    assert r.exit_code == 0
    body = json.loads(r.stdout)
    assert body["valid"] is True and body["hosts"] == 2
    assert run("validate", SEED, "-q").stdout == ""
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "topologies" / "seed.toml").read_text().replace('native_vlan = "mgmt"', 'native_vlan = "nope"', 1))
    r = run("validate", str(bad), "--json")
    assert r.exit_code == EXIT_BAD_INPUT
    body = json.loads(r.stdout)
    assert body["valid"] is False
    assert [(f["path"], f["severity"]) for f in body["findings"]] == [("hosts.node1.uplinks[0].native_vlan", "error")]
    assert "no VLAN named 'nope'" in body["findings"][0]["message"]


def test_graph_and_addresses_as_data():
    g = json.loads(run("graph", SEED, "--json").stdout)
    kinds = {n["kind"] for n in g["nodes"]}
    assert {"ovs_bridge", "linux_bridge", "nic", "internal"} <= kinds
    rows = json.loads(run("addresses", SEED, "--json").stdout)
    assert {(r["host"], r["vlan"]) for r in rows} == {("node1", "web"), ("node1", "db"), ("node2", "web"), ("node2", "db")}


def test_a_bug_is_exit_70_with_a_message_not_a_traceback(monkeypatch):
    def broken(*_args, **_kw):
        raise KeyError("oops")

    monkeypatch.setattr(ovsnet.apply, "plan_live", broken)
    r = run("plan", SEED, "--host", "node1", "--db", "unix:/nope")
    assert r.exit_code == EXIT_INTERNAL
    assert "internal error (a bug; please report it with this line): KeyError: 'oops'" in r.stderr
    assert "Traceback" not in r.stderr


def test_lab_exec_uses_its_own_codes_for_its_own_errors(tmp_path):
    r = run("lab", "exec", SEED, "node1")
    assert r.exit_code == EXIT_EXEC_OWN and "give the command after --" in r.stderr
    # No such lab: ovsnet's own error, never a code the command itself could have returned.
    r = run("lab", "exec", SEED, "node1", "--prefix", "zzunit1", "--", "true")
    assert r.exit_code == EXIT_EXEC_OWN and "no lab zzunit1" in r.stderr


@pytest.mark.parametrize("args", [["up"], ["down"], ["status"]])
def test_unknown_host_is_bad_input(args):
    r = run(*args, SEED, "--host", "nodeX", "--db", "unix:/nope", "--state-dir", "/nonexistent-ovsnet-test")
    assert r.exit_code == EXIT_BAD_INPUT
    assert "no host named 'nodeX'" in r.stderr and "hosts: node1, node2" in r.stderr
