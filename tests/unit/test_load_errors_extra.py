"""Read errors a person makes with an editor: a byte-order mark, a table or key written twice."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ovsnet.cli import app
from ovsnet.errors import ConfigError
from ovsnet.topology.load import load, parse
from ovsnet.topology.positions import definitions

ROOT = Path(__file__).resolve().parents[2]
SEED_TEXT = (ROOT / "topologies" / "seed.toml").read_text()
SEED_LINES = SEED_TEXT.splitlines()
TOPOLOGIES = sorted((ROOT / "topologies").glob("*.toml"))


def line_of(text: str, occurrence: int = 0) -> int:
    """1-based line number of the occurrence-th line equal to text in the seed."""
    hits = [i + 1 for i, line in enumerate(SEED_LINES) if line == text]
    return hits[occurrence]


def only_finding(text: str, source: str = "t.toml"):
    with pytest.raises(ConfigError) as exc:
        parse(text, source)
    assert len(exc.value.findings) == 1, exc.value.findings
    return exc.value.findings[0]


# --- byte-order marks -----------------------------------------------------------


def test_utf8_bom_is_named_with_the_fix(tmp_path):
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + SEED_TEXT.encode())
    with pytest.raises(ConfigError) as exc:
        load(p)
    (f,) = exc.value.findings
    assert "byte-order mark (BOM)" in f.message
    assert f.hint == "save it as UTF-8 without BOM"
    assert "Invalid statement" not in f.message
    assert f.render(str(p)).startswith(f"{p}:1:1: error: the file starts with a UTF-8 byte-order mark")


def test_utf8_bom_is_refused_by_parse_too():
    f = only_finding("\ufeff" + SEED_TEXT)
    assert "UTF-8 byte-order mark" in f.message and "without BOM" in f.hint


def test_a_bom_later_in_the_file_is_left_to_the_toml_parser():
    f = only_finding(SEED_TEXT.replace('name = "seed"', 'name = "seed"\n\ufeff', 1))
    assert f.message.startswith("TOML syntax")


def test_utf16_is_named_with_the_fix(tmp_path):
    for encoding in ("utf-16", "utf-16-be"):
        p = tmp_path / f"{encoding}.toml"
        data = SEED_TEXT.encode(encoding)
        p.write_bytes(data if data.startswith((b"\xff\xfe", b"\xfe\xff")) else b"\xfe\xff" + data)
        with pytest.raises(ConfigError) as exc:
            load(p)
        (f,) = exc.value.findings
        assert "UTF-16" in f.message and "UTF-8" in f.hint, f


def test_cli_names_the_file_and_the_bom(tmp_path):
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + SEED_TEXT.encode())
    result = CliRunner().invoke(app, ["validate", str(p)])
    assert result.exit_code == 2
    assert f"{p}:1:1: error: the file starts with a UTF-8 byte-order mark (BOM) (save it as UTF-8 without BOM)" in result.stderr
    assert "nothing was changed" in result.stderr and "Traceback" not in result.stderr


# --- duplicates -----------------------------------------------------------------------


def test_duplicate_host_table_names_the_table_both_lines_and_the_fix():
    first = line_of("[hosts.node1]")
    text = SEED_TEXT + '\n[hosts.node1]\ndocker_required = true\n'
    second = len(SEED_LINES) + 2
    f = only_finding(text)
    assert f.path == "hosts.node1"
    assert f.line == second
    assert f.message == f"TOML syntax: table [hosts.node1] is declared twice (lines {first} and {second})"
    assert f.hint == "merge the two [hosts.node1] tables into one, keeping each key once"
    assert f.render("t.toml").startswith(f"t.toml:{second}:")


def test_duplicate_key_names_the_key_path_and_both_lines():
    first = line_of("id = 100")
    text = SEED_TEXT.replace("id = 100\n", "id = 100\nsubnet = \"10.100.0.0/24\"\n", 1)
    f = only_finding(text)
    assert f.path == "vlans.web.subnet"
    assert f.message == f"TOML syntax: key vlans.web.subnet is set twice (lines {first + 1} and {first + 2})"
    assert f.hint == "delete one of the two lines"


def test_duplicate_key_in_an_array_of_tables_names_the_element():
    # The second uplink-less docker entry of node1 gets its bridge twice.
    text = SEED_TEXT.replace('bridge = "br-db"\nvlan = "db"\n', 'bridge = "br-db"\nvlan = "db"\nbridge = "br-x"\n', 1)
    f = only_finding(text)
    assert f.path == "hosts.node1.docker[1].bridge"
    assert "is set twice" in f.message


def test_duplicate_key_in_an_inline_table():
    text = SEED_TEXT.replace('bridge = { name = "br-ovs", datapath = "system" }', 'bridge = { name = "br-ovs", name = "br-x" }', 1)
    f = only_finding(text)
    line = line_of('bridge = { name = "br-ovs", datapath = "system" }')
    assert f.path == "hosts.node1.bridge.name"
    assert f.message == f"TOML syntax: key hosts.node1.bridge.name is set twice (both at line {line})"
    assert f.hint == "keep name once in that inline table"


def test_a_value_and_a_table_of_one_name():
    bridge_line = line_of('bridge = { name = "br-ovs", datapath = "system" }')
    text = SEED_TEXT + '\n[hosts.node1.bridge]\nname = "br-x"\n'
    f = only_finding(text)
    assert f.path == "hosts.node1.bridge"
    assert f"as a value (bridge = ...) at line {bridge_line}" in f.message
    assert f"as the table [hosts.node1.bridge] at line {len(SEED_LINES) + 2}" in f.message
    assert "merge" in f.hint and "rename" in f.hint


def test_a_dotted_key_into_a_declared_table():
    text = SEED_TEXT.replace('name = "seed"\n', 'name = "seed"\nvlans.web.mtu = 9000\n', 1)
    # The dotted key comes first here, so the later [vlans.web] header is the clash.
    f = only_finding(text)
    assert f.path == "vlans.web"
    assert "dotted key vlans.web.mtu at line" in f.message and "[vlans.web]" in f.message


def test_table_and_array_of_tables_of_one_name():
    text = SEED_TEXT.replace("[[hosts.node1.uplinks]]", "[hosts.node1.uplinks]", 1)
    # [hosts.node1.uplinks] once as a table is legal TOML (a wrong type for ovsnet);
    # a second header of the other kind is the clash.
    text += "\n[[hosts.node1.uplinks]]\nnic = \"eth2\"\nvlans = [\"web\"]\n"
    f = only_finding(text)
    assert f.path == "hosts.node1.uplinks"
    assert "both as a table [hosts.node1.uplinks] and as an array of tables [[hosts.node1.uplinks]]" in f.message


def test_strings_that_look_like_headers_do_not_confuse_the_scan():
    text = SEED_TEXT.replace('name = "seed"\n', 'name = "seed"\ndescription = """\n[hosts.node1]\nid = 1 # \\"""\n"""\n', 1)
    text += "\n[vlans.db]\nid = 201\n"
    f = only_finding(text)
    assert f.path == "vlans.db"
    assert f"lines {line_of('[vlans.db]') + 4} and" in f.message


@pytest.mark.parametrize("index", [i for i, line in enumerate(SEED_LINES) if re.match(r"^(\[[a-z.0-9]+\]|[a-z_]+ = )", line)])
def test_every_line_of_the_seed_written_twice_is_named(index):
    """Each header or key line of the seed, repeated right after itself (a key) or at the end (a table)."""
    line = SEED_LINES[index]
    if line.startswith("["):
        text = SEED_TEXT + "\n" + line + "\n"
        second = len(SEED_LINES) + 2
    else:
        text = "\n".join(SEED_LINES[: index + 1] + [line] + SEED_LINES[index + 1:]) + "\n"
        second = index + 2
    f = only_finding(text)
    assert f.line == second
    assert f.path, f
    assert f"lines {index + 1} and {second}" in f.message, f.message
    assert "twice" in f.message


def test_the_scan_finds_every_key_tomllib_finds():
    """On valid files the scanner sees the same leaf keys as tomllib does."""

    def leaves(value, path=()):
        if isinstance(value, dict):
            for k, v in value.items():
                seg = k if re.match(r"^[A-Za-z0-9_-]+$", k) else f'"{k}"'
                yield from leaves(v, path + (seg,))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value):
                yield from leaves(v, path[:-1] + (f"{path[-1]}[{i}]",))
        else:
            yield path

    extra = 'odd = { "a b" = 1, c = [{ d = 2 }, { d = 3 }] }\nml = """\n[x]\n"""\n'
    for p in TOPOLOGIES:
        text = extra + p.read_text()
        want = set(leaves(tomllib.loads(text)))
        got = {d.path for d in definitions(text) if d.kind == "key"}
        assert want <= got, (p.name, sorted(want - got)[:5])
