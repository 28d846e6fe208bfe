"""The position scanner: every key path a finding can name maps to its exact line and column.

Expected positions are written as (line, a piece of text on that line): the
column is where that piece starts, found in the line itself, not by the
scanner.
"""

from __future__ import annotations

import gc
import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ovsnet.cli import app
from ovsnet.errors import ConfigError
from ovsnet.topology import check, positions
from ovsnet.topology.load import parse
from ovsnet.topology.positions import Positions, definitions, parent

ROOT = Path(__file__).resolve().parents[2]
SEED_TEXT = (ROOT / "topologies" / "seed.toml").read_text()
SEED_LINES = SEED_TEXT.splitlines()

TRICKY = """\
# a comment with [brackets] and [[more]] = 1
name = "x"   # [not.a.table]
[vlans.web]
id = 100
"odd key" = { a = 1, "b c" = [1, 2] }
[[hosts.node1.uplinks]]
nic = "eth1"
vlans = [
  "mgmt",  # [comment] ]
  # a whole comment line, with ] and [
  "web",
  "db"
]
[[hosts.node1.uplinks]]
nic = "eth2"
vlans = ["web"]
[hosts.node1.bridge]
name = "br-ovs"
[lab]
cables = [{ ends = ["node1:eth1", "switch"] }, { ends = ["node1:eth2", "switch"] },
  { ends = ["node2:eth1",
            "switch"] }]
description = \"\"\"
[not.a.table]
nic = "nope" \"\"\"
note = '''a ] [ { '''
switch.name = "sw"  # a dotted key
  [ 'hosts' . "node 2" ]
  id = 7
matrix = [[1, 2], [3, [4, 5]]]
[vlans.db]
id = 200
[vlans.mgmt]
id = 10
"""

LINES = TRICKY.splitlines()


def at(line: int, piece: str, occurrence: int = 0) -> tuple[int, int]:
    """(line, column) of the occurrence-th `piece` on that 1-based line of TRICKY."""
    text = LINES[line - 1]
    col = -1
    for _ in range(occurrence + 1):
        col = text.index(piece, col + 1)
    return line, col + 1


EXPECTED = {
    "name": at(2, "name"),
    "vlans": at(3, "["),  # a table only deeper headers make: the first of them
    "vlans.web": at(3, "["),
    "vlans.web.id": at(4, "id"),
    'vlans.web."odd key"': at(5, '"odd key"'),
    "vlans.web.odd key": at(5, '"odd key"'),  # as the loader spells a quoted key
    'vlans.web."odd key".a': at(5, "a ="),
    'vlans.web."odd key"."b c"': at(5, '"b c"'),
    'vlans.web."odd key"."b c"[0]': at(5, "1,", 1),
    'vlans.web."odd key"."b c"[1]': at(5, "2]"),
    "vlans.web.odd key.b c[1]": at(5, "2]"),
    "hosts": at(6, "[["),
    "hosts.node1": at(6, "[["),
    "hosts.node1.uplinks": at(6, "[["),
    "hosts.node1.uplinks[0]": at(6, "[["),
    "hosts.node1.uplinks[0].nic": at(7, "nic"),
    "hosts.node1.uplinks[0].vlans": at(8, "vlans"),
    "hosts.node1.uplinks[0].vlans[0]": at(9, '"mgmt"'),
    "hosts.node1.uplinks[0].vlans[1]": at(11, '"web"'),
    "hosts.node1.uplinks[0].vlans[2]": at(12, '"db"'),
    "hosts.node1.uplinks[1]": at(14, "[["),
    "hosts.node1.uplinks[1].nic": at(15, "nic"),  # the same key in another table
    "hosts.node1.uplinks[1].vlans[0]": at(16, '"web"'),
    "hosts.node1.bridge": at(17, "["),
    "hosts.node1.bridge.name": at(18, "name"),
    "lab": at(19, "["),
    "lab.cables": at(20, "cables"),
    "lab.cables[0]": at(20, "{"),
    "lab.cables[0].ends": at(20, "ends"),
    "lab.cables[0].ends[1]": at(20, '"switch"'),
    "lab.cables[1]": at(20, "{", 1),
    "lab.cables[1].ends[0]": at(20, '"node1:eth2"'),
    "lab.cables[2]": at(21, "{"),
    "lab.cables[2].ends": at(21, "ends"),
    "lab.cables[2].ends[1]": at(22, '"switch"'),
    "lab.description": at(23, "description"),
    "lab.note": at(26, "note"),
    "lab.switch": at(27, "switch"),
    "lab.switch.name": at(27, "switch"),
    'hosts."node 2"': at(28, "["),
    "hosts.node 2": at(28, "["),
    'hosts."node 2".id': at(29, "id"),
    "matrix": None,  # a key of [hosts."node 2"], not of the top level
    'hosts."node 2".matrix[1]': at(30, "[3"),
    'hosts."node 2".matrix[1][1][0]': at(30, "4"),
    "vlans.db.id": at(32, "id"),
    "vlans.mgmt.id": at(34, "id"),
    # Paths the file does not spell out: the table they belong in.
    "hosts.node1.uplinks[1].native_vlan": at(14, "[["),
    "hosts.node1.bridge.datapath": at(17, "["),
    "lab.cables[2].colour": at(21, "{"),
    "vlans.web.router": at(3, "["),
    "vlans.web.id.deeper": at(4, "id"),
    "": None,
    "router": None,
    "router.vlans[0]": None,
}


def test_the_tricky_text_is_valid_toml():
    data = tomllib.loads(TRICKY)
    assert data["lab"]["cables"][2]["ends"] == ["node2:eth1", "switch"]
    assert data["hosts"]["node 2"]["matrix"] == [[1, 2], [3, [4, 5]]]


@pytest.mark.parametrize("path", list(EXPECTED))
def test_every_construct_maps_to_its_line_and_column(path):
    assert Positions(TRICKY).find(path) == EXPECTED[path]


@pytest.mark.parametrize("path", list(EXPECTED))
def test_crlf_line_ends_give_the_same_positions(path):
    assert Positions(TRICKY.replace("\n", "\r\n")).find(path) == EXPECTED[path]


def test_strings_and_comments_define_nothing():
    paths = {".".join(d.path) for d in definitions(TRICKY)}
    assert not [p for p in paths if "not" in p.split(".") or "more" in p or "comment" in p], paths
    # The "nic" inside the multi-line string is text, not lab.nic: that falls back to [lab].
    assert Positions(TRICKY).find("lab.nic") == at(19, "[")


def test_parent_of_key_paths():
    assert parent("hosts.node1.uplinks[0].vlans[2]") == "hosts.node1.uplinks[0].vlans"
    assert parent("hosts.node1.uplinks[0]") == "hosts.node1.uplinks"
    assert parent('hosts."node 2".id') == 'hosts."node 2"'
    assert parent('hosts."a.b"') == "hosts"
    assert parent('"a.b"') == ""
    assert parent("name") == ""


def test_the_scan_runs_once_and_only_when_asked():
    p = Positions(TRICKY)
    assert p._exact is None
    p.find("name")
    built = p._exact
    p.find("vlans.web.id")
    assert p._exact is built


# --- findings from the loader ------------------------------------------------------------


def config_error(text: str, source: str = "t.toml") -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        check(parse(text, source))
    return exc.value


def seed_line(text: str, occurrence: int = 0) -> int:
    return [i + 1 for i, line in enumerate(SEED_LINES) if line == text][occurrence]


def test_the_issue_example_a_bad_vlan_in_the_last_endpoint():
    """`vlan = "db"` of the last endpoint (line 99) set to "dbx": line 99, not the first `vlan =` line."""
    assert SEED_LINES[98] == 'vlan = "db"'
    lines = list(SEED_LINES)
    lines[98] = 'vlan = "dbx"'
    (f,) = config_error("\n".join(lines) + "\n").findings
    assert (f.path, f.line, f.column) == ("endpoints[3].vlan", 99, 1)
    assert f.render("seed.toml") == "seed.toml:99:1: endpoints[3].vlan: error: no VLAN named 'dbx' (did you mean 'db'?)"


def test_a_missing_required_key_points_at_its_table_header():
    text = SEED_TEXT.replace('name = "db2"\nhost = "node2"\n', 'name = "db2"\n', 1)
    (f,) = config_error(text).findings
    assert (f.path, f.line) == ("endpoints[3].host", seed_line("[[endpoints]]", 3))
    assert "missing required key 'host'" in f.message


def test_a_bad_item_of_a_list_names_its_column():
    text = SEED_TEXT.replace('vlans = ["mgmt", "web", "db"]', 'vlans = ["mgmt", "web", "dbx"]', 2)
    fs = config_error(text).findings
    line = seed_line('vlans = ["mgmt", "web", "db"]', 1)
    assert [(f.path, f.line, f.column) for f in fs] == [
        ("hosts.node1.uplinks[0].vlans[2]", seed_line('vlans = ["mgmt", "web", "db"]'), 25),
        ("hosts.node2.uplinks[0].vlans[2]", line, 25),
    ]


def test_an_unknown_key_in_an_inline_table():
    text = SEED_TEXT.replace('bridge = { name = "br-ovs", datapath = "system" }', 'bridge = { name = "br-ovs", datapth = "system" }', 2)
    fs = [f for f in config_error(text).findings if "unknown key" in f.message]
    assert [(f.path, f.line, f.column) for f in fs] == [
        ("hosts.node1.bridge.datapth", seed_line("[hosts.node1]") + 1, 29),
        ("hosts.node2.bridge.datapth", seed_line("[hosts.node2]") + 1, 29),
    ]


# --- findings from validation ----------------------------------------------------------


def test_a_duplicate_vlan_id_points_at_the_second_one():
    text = re.sub(r"^id = 200$", "id = 100", SEED_TEXT, count=1, flags=re.M)
    (f,) = config_error(text).findings
    assert (f.path, f.line, f.column) == ("vlans.db.id", seed_line("id = 200"), 1)
    assert "VLAN id 100 is used by web and db" in f.message


def test_an_address_clash_points_at_the_second_holder():
    text = SEED_TEXT.replace('address = "10.200.0.12/24"', 'address = "10.200.0.11/24"', 1)
    (f,) = config_error(text).findings
    assert (f.path, f.line) == ("endpoints[3].address", seed_line('address = "10.200.0.12/24"'))
    assert "also endpoint db1's" in f.message


def two_uplinks_each(text: str) -> str:
    for h in ("node1", "node2"):
        old = f'[[hosts.{h}.uplinks]]\nnic = "eth1"\nvlans = ["mgmt", "web", "db"]\nnative_vlan = "mgmt"\n'
        assert old in text
        text = text.replace(old, old + f'\n[[hosts.{h}.uplinks]]\nnic = "eth2"\nvlans = ["web"]\n')
    return text


def test_a_loop_in_the_lab_points_at_the_second_cable():
    old = '[lab]\nswitch = "switch"\n\n[[lab.cables]]\nends = ["node1:eth1", "switch"]\n\n[[lab.cables]]\nends = ["node2:eth1", "switch"]\n'
    new = '[lab]\n\n[[lab.cables]]\nends = ["node1:eth1", "node2:eth1"]\n\n[[lab.cables]]\nends = ["node1:eth2", "node2:eth2"]\n'
    text = two_uplinks_each(SEED_TEXT)
    assert old in text
    text = text.replace(old, new)
    (f,) = [f for f in config_error(text).findings if f.severity == "error"]
    assert f.path == "lab.cables[1]"
    assert "L2 loop in VLAN web" in f.message
    assert text.splitlines()[f.line - 1 : f.line + 1] == ["[[lab.cables]]", 'ends = ["node1:eth2", "node2:eth2"]']


def test_a_loop_names_the_cable_of_the_edge_its_message_names():
    """Any cable of a loop closes it; the finding points at the one whose edge the message names."""
    text = two_uplinks_each(SEED_TEXT).replace(
        '[[lab.cables]]\nends = ["node2:eth1", "switch"]\n',
        '[[lab.cables]]\nends = ["node2:eth1", "switch"]\n\n[[lab.cables]]\nends = ["node1:eth2", "node2:eth2"]\n')
    (f,) = config_error(text).findings
    assert "switch:switch - switch_port:switch/node2-eth1 closes a second path" in f.message
    assert f.path == "lab.cables[1]"
    assert text.splitlines()[f.line - 1 : f.line + 1] == ["[[lab.cables]]", 'ends = ["node2:eth1", "switch"]']


def test_a_slice_finding_from_the_address_plan_is_located():
    text = SEED_TEXT.replace('vlan = "db"\nnetwork = "db"\n', 'vlan = "db"\nnetwork = "db"\nip_range = "10.100.0.0/26"\n', 1)
    (f,) = config_error(text).findings
    assert f.path == "hosts.node1.docker[1].ip_range"
    assert text.splitlines()[f.line - 1] == 'ip_range = "10.100.0.0/26"'


def test_the_cli_prints_warnings_with_their_line(tmp_path):
    text = SEED_TEXT.replace('[[hosts.node2.docker]]\nbridge = "br-db"\nvlan = "db"\nnetwork = "db"\n', "", 1)
    text = text.replace('[[endpoints]]\nname = "db2"\nhost = "node2"\nvlan = "db"\naddress = "10.200.0.12/24"\n', "", 1)
    p = tmp_path / "t.toml"
    p.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(p)])
    assert result.exit_code == 0, result.stderr
    line = [i + 1 for i, t in enumerate(text.splitlines()) if t == 'vlans = ["mgmt", "web", "db"]'][1]
    assert f"{p}:{line}:1: hosts.node2.uplinks[0].vlans: warning: VLAN db is trunked" in result.stderr


def test_the_text_is_kept_only_while_its_topology_lives():
    topo = parse(SEED_TEXT)
    key = id(topo)
    assert positions._by_owner[key].text == SEED_TEXT
    del topo
    gc.collect()
    assert key not in positions._by_owner


def test_a_topology_not_made_from_text_keeps_its_findings_unlocated():
    from dataclasses import replace

    from ovsnet.errors import Finding

    copy = replace(parse(SEED_TEXT))
    assert positions.locate(copy, [Finding("vlans.web.id", "x")]) == [Finding("vlans.web.id", "x")]


# --- whole files ---------------------------------------------------------------------------


@pytest.mark.parametrize("topology", sorted((ROOT / "topologies").glob("*.toml")), ids=lambda p: p.name)
def test_every_key_of_every_example_is_found_where_it_is_written(topology):
    """Each leaf key tomllib reads maps to a position where the text spells that key."""
    text = topology.read_text()
    lines = text.splitlines()
    index = Positions(text)

    def leaves(value, path=()):
        if isinstance(value, dict):
            for k, v in value.items():
                yield from leaves(v, path + (k if re.match(r"^[A-Za-z0-9_-]+$", k) else f'"{k}"',))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value):
                yield from leaves(v, path[:-1] + (f"{path[-1]}[{i}]",))
        else:
            yield path

    checked = 0
    for path in leaves(tomllib.loads(text)):
        line, col = index.find(".".join(path))
        assert lines[line - 1][col - 1:].startswith(path[-1]), (topology.name, path, line, col)
        checked += 1
    assert checked > 10


# Every key line of the seed but the host's `bridge = { ... }`, which takes a table.
@pytest.mark.parametrize("index", [i for i, line in enumerate(SEED_LINES) if re.match(r"^[a-z_]+ = (?!\{)", line)])
def test_every_key_line_of_the_seed_made_wrong_is_reported_at_that_line(index):
    """The old guess pointed a key used many times (vlan, nic, bridge...) at its first line."""
    key = SEED_LINES[index].split(" = ")[0]
    lines = list(SEED_LINES)
    lines[index] = f"{key} = {{ wrong = 1 }}"
    with pytest.raises(ConfigError) as exc:
        parse("\n".join(lines) + "\n", "t.toml")
    fs = exc.value.findings
    mine = [f for f in fs if f.path.endswith(key)]
    assert mine, [(f.path, f.line) for f in fs]
    assert {(f.line, f.column) for f in mine} == {(index + 1, 1)}, [(f.path, f.line) for f in fs]


def test_a_hostile_depth_costs_one_pass_not_a_square():
    """A 200,000-segment header (tomllib takes it) used to cost the scanner time in the square of its depth."""
    import time

    text = "[" + ".".join(["a"] * 200_000) + "]\nx = 1\n[b]\ny = 2\n"
    start = time.perf_counter()
    # Deeper than positions.MAX_DEPTH: its first segments are recorded, and the scan stops there.
    assert [(d.line, d.path) for d in definitions(text)] == [(1, ("a",) * positions.MAX_DEPTH)]
    assert Positions(text).find("a") == (1, 1)
    assert Positions(text).find("b.y") is None
    assert time.perf_counter() - start < 10  # about 0.1 s; the square took hours
    deep = ".".join(f"k{i}" for i in range(positions.MAX_DEPTH))
    index = Positions(f"[{deep}]\nx = 1\n")
    assert index.find(deep) == (1, 1)
    assert index.find(f"{deep}.x") == (1, 1)  # one segment too deep to record: its table's header
