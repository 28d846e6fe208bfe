"""`graph --live` and `import` on the command line: what they refuse, and exactly how they say it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ovsnet.cli import app
from ovsnet.errors import EXIT_BAD_INPUT

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "topologies" / "seed.toml")
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("args, message", [
    (("--host", "node1"), "ovsnet: --host name a host to read: add --live to draw what it has, or drop them to draw the file"),
    (("--db", "unix:/x", "--lab"), "ovsnet: --db, --lab name a host to read: add --live to draw what it has, or drop them to draw the file"),
    (("--live",), "ovsnet: --live reads a host: give --host NAME (with --netns/--db for a host elsewhere), or --lab for every host of the lab"),
    (("--live", "--lab", "--host", "node1", "--netns", "x"), "ovsnet: --lab reads every host of the lab: --host, --netns would be ignored; drop them, or drop --lab"),
    (("--live", "--host", "node1", "--prefix", "ab12"), "ovsnet: --prefix names a lab: use it with --lab"),
    (("--live", "--host", "node9"), "ovsnet: no host named 'node9' in " + SEED + "; hosts: node1, node2"),
])
def test_graph_refuses_what_it_would_ignore(args, message):
    r = run("graph", SEED, *args)
    assert (r.exit_code, r.stderr.strip()) == (EXIT_BAD_INPUT, message)


def test_import_never_overwrites_a_file(tmp_path):
    existing = tmp_path / "site.toml"
    existing.write_text("# mine\n")
    r = run("import", "--host", "node1", "-o", str(existing))
    assert (r.exit_code, r.stderr.strip()) == (EXIT_BAD_INPUT, f"ovsnet: {existing} exists: import writes a new file (use --into {existing} to add the host to it)")
    assert existing.read_text() == "# mine\n"


def test_import_into_a_missing_file_says_so(tmp_path):
    r = run("import", "--host", "node1", "--into", str(tmp_path / "nope.toml"))
    assert (r.exit_code, r.stderr.strip()) == (EXIT_BAD_INPUT, f"ovsnet: cannot read {tmp_path / 'nope.toml'}: No such file or directory")


def test_import_has_the_target_options_and_json():
    text = run("import", "--help").stdout
    for opt in ("--db", "--netns", "--resolv-conf", "--docker-host", "--into", "--output", "--name", "--json", "--quiet"):
        assert opt in text, opt


def test_live_graph_is_data_with_json(monkeypatch):
    # The read is replaced: what is tested is the command's wiring, not a host.
    from ovsnet.live import read
    from ovsnet.plan import planner
    from ovsnet.topology import load_checked
    from tests.support.snapshots import applied

    c = load_checked(SEED)
    cur = applied(c.topology, "node1")
    plan = planner.diff(planner.desire(c.topology, c.topology.hosts["node1"]), cur)
    monkeypatch.setattr(read, "read_host", lambda checked, host, target: (cur, plan, None))
    r = run("graph", SEED, "--live", "--host", "node1", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["graph"]["live"] is True and data["graph"]["marks"] == []
    assert {n["id"] for n in data["nodes"] if n.get("kind") == "docker_network"} == {"docker_network:node1/web", "docker_network:node1/db"}
    tree = run("graph", SEED, "--live", "--host", "node1").stdout
    assert "Drift against the file" in tree
    assert not any(f"[{word}]" in tree for word in ("MISSING", "FOREIGN", "EXTRA", "DIFFERENT"))
