"""Loading topology.toml: every problem becomes a located Finding."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from ovsnet.errors import ConfigError
from ovsnet.topology.load import MAX_FILE_BYTES, load, parse
from ovsnet.topology.model import Datapath, Layout, Topology

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "topologies" / "seed.toml"
SEED_TEXT = SEED.read_text()


def sub(pattern: str, repl: str, text: str = SEED_TEXT, count: int = 1) -> str:
    """Replace a whole-line match (multiline regex) and insist it happened."""
    new, n = re.subn(pattern, repl, text, count=count, flags=re.M)
    assert n, f"pattern {pattern!r} not found"
    return new


def findings_of(text: str, source: str = "t.toml"):
    with pytest.raises(ConfigError) as exc:
        parse(text, source)
    return exc.value.findings


def by_path(findings, path: str):
    hits = [f for f in findings if f.path == path]
    assert hits, f"no finding at {path}; got {[(f.path, f.message) for f in findings]}"
    return hits[0]


# --- the valid seed -------------------------------------------------------------


def test_seed_loads():
    topo = load(SEED)
    assert isinstance(topo, Topology)
    assert topo.name == "seed"
    assert topo.source == str(SEED)
    assert set(topo.vlans) == {"mgmt", "web", "db"}
    assert {v.name: v.id for v in topo.vlans.values()} == {"mgmt": 10, "web": 100, "db": 200}
    assert topo.vlans["web"].subnet == ipaddress.ip_network("10.100.0.0/24")
    assert topo.vlans["web"].host_slice == 26
    assert topo.vlans["db"].router is None
    assert set(topo.hosts) == {"node1", "node2"}
    n1 = topo.hosts["node1"]
    assert n1.layout is Layout.VLAN
    assert n1.bridge.name == "br-ovs" and n1.bridge.datapath is Datapath.SYSTEM
    assert [u.nic for u in n1.uplinks] == ["eth1"]
    assert n1.uplinks[0].vlans == ("mgmt", "web", "db")
    assert n1.uplinks[0].native_vlan == "mgmt"
    assert n1.management.addresses == (ipaddress.ip_interface("192.168.10.11/24"),)
    assert n1.management_vlan == "mgmt"
    assert n1.uplink_nic == "eth1"
    assert [(d.bridge, d.vlan, d.patch_ovs, d.patch_bridge) for d in n1.docker] == [
        ("br-web", "web", "ovs-br-web", "lnx-br-web"),
        ("br-db", "db", "ovs-br-db", "lnx-br-db"),
    ]
    assert topo.router.vlans == ("mgmt", "web")
    assert [e.name for e in topo.endpoints] == ["web1", "web2", "db1", "db2"]
    assert topo.lab.switch == "switch" and len(topo.lab.cables) == 2


def test_parse_equals_load():
    assert parse(SEED_TEXT, str(SEED)) == load(SEED)


def test_vlan_reference_by_id():
    text = sub(r'^vlans = \["mgmt", "web", "db"\]$', 'vlans = [10, "web", 200]')
    topo = parse(text)
    assert topo.hosts["node1"].uplinks[0].vlans == ("mgmt", "web", "db")


# --- syntax ---------------------------------------------------------------------------


def test_toml_syntax_error_is_one_finding_with_line_and_column():
    text = sub(r'^id = 100$', 'id = = 100')
    fs = findings_of(text)
    assert len(fs) == 1
    f = fs[0]
    assert f.path == ""
    assert f.message.startswith("TOML syntax")
    assert f.line == SEED_TEXT.splitlines().index("id = 100") + 1
    assert isinstance(f.column, int) and f.column > 0
    assert f.severity == "error"
    rendered = f.render("t.toml")
    assert rendered.startswith(f"t.toml:{f.line}:{f.column}: error: TOML syntax")


def test_duplicate_key_is_a_clear_syntax_finding():
    text = sub(r'^id = 100$', 'id = 100\nid = 101')
    fs = findings_of(text)
    assert len(fs) == 1
    f = fs[0]
    assert "TOML syntax" in f.message
    assert "twice" in f.hint or "twice" in f.message
    assert f.line == SEED_TEXT.splitlines().index("id = 100") + 2


def test_duplicate_table_is_a_syntax_finding():
    fs = findings_of(SEED_TEXT + "\n[vlans.web]\nid = 101\n")
    assert len(fs) == 1
    assert "TOML syntax" in fs[0].message and "twice" in fs[0].message
    assert fs[0].line == len(SEED_TEXT.splitlines()) + 2


# --- keys and types ------------------------------------------------------------------------


def test_unknown_key_suggests_the_right_one():
    text = sub(r'^bridge = \{ name = "br-ovs", datapath = "system" \}$', 'bridg = { name = "br-ovs", datapath = "system" }')
    fs = findings_of(text)
    f = by_path(fs, "hosts.node1.bridg")
    assert "unknown key 'bridg'" in f.message
    assert "did you mean 'bridge'" in f.hint
    assert f.line == SEED_TEXT.splitlines().index('bridge = { name = "br-ovs", datapath = "system" }') + 1


def test_unknown_top_level_key():
    f = by_path(findings_of("vlan = 1\n" + SEED_TEXT), "vlan")
    assert "did you mean 'vlans'" in f.hint


def test_wrong_types():
    text = sub(r'^id = 100$', 'id = "100"')
    text = sub(r'^nic = "eth1"$', "nic = 5", text)
    fs = findings_of(text)
    f = by_path(fs, "vlans.web.id")
    assert "expected an integer" in f.message and "a string" in f.message
    f = by_path(fs, "hosts.node1.uplinks[0].nic")
    assert "expected a string" in f.message and "an integer" in f.message
    assert "quote" in f.hint


def test_bool_is_not_an_int():
    f = by_path(findings_of(sub(r"^id = 100$", "id = true")), "vlans.web.id")
    assert "true/false" in f.message


@pytest.mark.parametrize("vid", [0, 4095, -1, 99999])
def test_vlan_id_out_of_range(vid):
    f = by_path(findings_of(sub(r"^id = 100$", f"id = {vid}")), "vlans.web.id")
    assert "out of range" in f.message
    assert "1 to 4094" in f.hint


@pytest.mark.parametrize("vid", [1, 4094])
def test_vlan_id_bounds_accepted(vid):
    assert parse(sub(r"^id = 100$", f"id = {vid}")).vlans["web"].id == vid


def test_subnet_with_host_bits_suggests_network():
    text = SEED_TEXT.replace('[vlans.web]\nid = 100\nsubnet = "10.100.0.0/24"', '[vlans.web]\nid = 100\nsubnet = "10.0.0.5/24"')
    f = by_path(findings_of(text), "vlans.web.subnet")
    assert "host bits" in f.message
    assert 'did you mean "10.0.0.0/24"' in f.hint


@pytest.mark.parametrize("value", ["10.100.0.0/33", "banana", "10.100.0/24"])
def test_bad_subnet(value):
    f = by_path(findings_of(sub(r'^subnet = "10\.100\.0\.0/24"$', f'subnet = "{value}"')), "vlans.web.subnet")
    assert "not a subnet" in f.message


def test_bad_ip_address():
    f = by_path(findings_of(sub(r'^router = "10\.100\.0\.1"$', 'router = "10.100.0.300"')), "vlans.web.router")
    assert "not an IP address" in f.message


def test_management_address_needs_prefix():
    fs = findings_of(sub(r'^addresses = \["192\.168\.10\.11/24"\]$', 'addresses = ["192.168.10.11"]'))
    f = by_path(fs, "hosts.node1.management.addresses[0]")
    assert "no prefix length" in f.message
    assert "192.168.10.11/24" in f.hint


def test_unknown_vlan_reference_names_the_path():
    text = SEED_TEXT.replace('bridge = "br-web"\nvlan = "web"', 'bridge = "br-web"\nvlan = "wbe"', 1)
    fs = findings_of(text)
    f = by_path(fs, "hosts.node1.docker[0].vlan")
    assert "no VLAN named 'wbe'" in f.message
    assert "did you mean 'web'" in f.hint
    assert f.line is not None


def test_unknown_vlan_id_reference():
    text = sub(r'^vlans = \["mgmt", "web", "db"\]$', 'vlans = ["mgmt", "web", 201]')
    f = by_path(findings_of(text), "hosts.node1.uplinks[0].vlans[2]")
    assert "no VLAN with id 201" in f.message


def test_several_errors_reported_at_once():
    text = sub(r"^id = 100$", "id = 0")
    text = sub(r'^nic = "eth1"$', "nic = 5", text)
    text = sub(r'^subnet = "10\.200\.0\.0/24"$', 'subnet = "10.200.0.9/24"', text)
    text = sub(r'^host = "node2"$', 'hots = "node2"', text)
    text = text.replace('bridge = { name = "br-ovs", datapath = "system" }', 'bridge = { name = "br-ovs", datapath = "kernel" }', 1)
    fs = findings_of(text)
    paths = {f.path for f in fs}
    assert {
        "vlans.web.id",
        "hosts.node1.uplinks[0].nic",
        "vlans.db.subnet",
        "endpoints[1].hots",
        "endpoints[1].host",
        "hosts.node1.bridge.datapath",
    } <= paths
    dp = by_path(fs, "hosts.node1.bridge.datapath")
    assert "'kernel' is not one of system, netdev" in dp.message


def test_no_hosts():
    f = by_path(findings_of('name = "x"\n[vlans.a]\nid = 5\n'), "hosts")
    assert "no hosts" in f.message


def test_bad_names():
    fs = findings_of(SEED_TEXT.replace("[vlans.db]", '[vlans."1db"]').replace('"db"', '"1db"'))
    assert any(f.path == 'vlans.1db' and "VLAN name" in f.message for f in fs)


def test_flat_layout_needs_flat_table():
    text = sub(r'^\[hosts\.node2\]$', '[hosts.node2]\nlayout = "flat"')
    f = by_path(findings_of(text), "hosts.node2")
    assert "needs a [hosts.node2.flat] table" in f.message


def test_cable_needs_two_ends():
    text = sub(r'^ends = \["node2:eth1", "switch"\]$', 'ends = ["node2:eth1"]')
    f = by_path(findings_of(text), "lab.cables[1].ends")
    assert "two ends" in f.message


def test_name_defaults_to_file_stem(tmp_path):
    p = tmp_path / "mylab.toml"
    p.write_text(sub(r'^name = "seed"$', ""))
    assert load(p).name == "mylab"


# --- file-level errors ---------------------------------------------------------------------


def _single(path):
    with pytest.raises(ConfigError) as exc:
        load(path)
    assert exc.value.source == str(path)
    assert len(exc.value.findings) == 1
    return exc.value.findings[0]


def test_missing_file(tmp_path):
    f = _single(tmp_path / "nope.toml")
    assert "no such file" in f.message


def test_directory(tmp_path):
    f = _single(tmp_path)
    assert "directory" in f.message


def test_not_utf8(tmp_path):
    p = tmp_path / "latin1.toml"
    p.write_bytes(b'name = "caf\xe9"\n')
    f = _single(p)
    assert "not UTF-8" in f.message and "byte 11" in f.message  # 0-based offset of \xe9


def test_too_big(tmp_path):
    p = tmp_path / "huge.toml"
    with open(p, "wb") as fh:
        fh.write(SEED_TEXT.encode())
        fh.write(b"#" * (MAX_FILE_BYTES + 1 - len(SEED_TEXT.encode())))
    f = _single(p)
    assert str(MAX_FILE_BYTES) in f.message


def test_exactly_the_limit_is_read(tmp_path):
    p = tmp_path / "big.toml"
    body = SEED_TEXT.encode()
    p.write_bytes(body + b"#" * (MAX_FILE_BYTES - len(body)))
    assert load(p).name == "seed"


def test_deep_nesting_is_a_config_error(tmp_path):
    p = tmp_path / "deep.toml"
    p.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError):
        load(p)


def test_a_list_whose_only_item_is_refused_is_not_also_reported_empty():
    fs = findings_of(sub(r'^addresses = \["192\.168\.10\.11/24"\]$', 'addresses = ["192.168.10.300/24"]'))
    assert [f.path for f in fs] == ["hosts.node1.management.addresses[0]"]
    fs = findings_of(sub(r'^vlans = \["mgmt", "web", "db"\]$', 'vlans = ["nope"]'))
    assert [f.path for f in fs] == ["hosts.node1.uplinks[0].vlans[0]"]


def test_an_empty_list_as_written_is_still_reported():
    fs = findings_of(sub(r'^addresses = \["192\.168\.10\.11/24"\]$', "addresses = []"))
    assert [(f.path, f.message) for f in fs] == [("hosts.node1.management.addresses", "no address given")]
    fs = findings_of(sub(r'^vlans = \["mgmt", "web", "db"\]$', "vlans = []"))
    assert ("hosts.node1.uplinks[0].vlans", "a trunk carrying no VLAN") in [(f.path, f.message) for f in fs]


def test_a_refused_vlan_is_reported_once_not_again_at_every_reference():
    fs = findings_of(sub(r"^id = 100$", "id = 4095"))
    assert [(f.path, f.message) for f in fs] == [("vlans.web.id", "4095 is out of range")]
    text = SEED_TEXT.replace("[vlans.db]", '[vlans."d b"]').replace('vlan = "db"', 'vlan = "d b"').replace('"web", "db"]', '"web", "d b"]')
    assert text.count('"d b"') == 7  # the table and its six references (2 uplinks, 2 Docker bridges, 2 endpoints)
    fs = findings_of(text)
    assert [f.path for f in fs] == ["vlans.d b"], [(f.path, f.message) for f in fs]
    assert "VLAN name: 'd b' is not a usable name" in fs[0].message


def test_a_reference_to_an_undeclared_vlan_is_still_reported():
    fs = findings_of(sub(r'^vlan = "web"$', 'vlan = "nope"'))
    assert [(f.path, f.message) for f in fs] == [("hosts.node1.docker[0].vlan", "no VLAN named 'nope'")]
