"""The pictures of the bridge graph: DOT, Mermaid, the terminal tree, and files."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import networkx as nx
import pytest

from ovsnet.errors import BackendError, UsageError
from ovsnet.render import drawing
from ovsnet.render.dot import render_file, to_dot
from ovsnet.render.mermaid import to_mermaid
from ovsnet.render.tree import to_tree
from ovsnet.topology import check, load_checked
from ovsnet.topology.load import parse
from tests.support.topologies import SEED_ROUTER, SEED_VLANS

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "topologies" / "seed.toml"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not installed")

# Three hosts in name order that `dot` would not keep on its own, one of them
# flat, an endpoint straight on OVS and an access port: every kind of node.
THREE = '\nname = "three"\n' + SEED_VLANS + """\
[vlans.ops]
id = 300
subnet = "10.30.0.0/24"
""" + SEED_ROUTER + """\
[hosts.alpha]
[[hosts.alpha.uplinks]]
nic = "eth1"
vlans = ["mgmt", "web"]
native_vlan = "mgmt"
[hosts.alpha.management]
addresses = ["192.168.10.11/24"]
[[hosts.alpha.docker]]
bridge = "br-web"
vlan = "web"
network = "web"
[hosts.bravo]
[[hosts.bravo.uplinks]]
nic = "eth1"
vlans = ["mgmt", "db", "ops"]
native_vlan = "mgmt"
[hosts.bravo.management]
addresses = ["192.168.10.12/24"]
[[hosts.bravo.docker]]
bridge = "br-db"
vlan = "db"
network = "db"
[[hosts.bravo.access_ports]]
interface = "tap0"
vlan = "ops"
[hosts.charlie]
layout = "flat"
flat = { bridge = "br0", nic = "eth0", vlan = "mgmt" }
[hosts.charlie.management]
addresses = ["192.168.10.13/24"]
[[endpoints]]
name = "web1"
host = "alpha"
vlan = "web"
address = "10.100.0.11/24"
[[endpoints]]
name = "ops2"
host = "bravo"
vlan = "ops"
address = "10.30.0.12/24"
attach = "ovs"
[[endpoints]]
name = "c1"
host = "charlie"
vlan = "mgmt"
address = "192.168.10.50/24"
[lab]
switch = "switch"
[[lab.cables]]
ends = ["alpha:eth1", "switch"]
[[lab.cables]]
ends = ["bravo:eth1", "switch"]
[[lab.cables]]
ends = ["charlie:eth0", "switch"]
"""


@pytest.fixture(scope="module")
def seed() -> nx.Graph:
    return load_checked(SEED).graph


@pytest.fixture(scope="module")
def three() -> nx.Graph:
    return check(parse(THREE)).graph


def _hosts(g: nx.Graph) -> list[str]:
    return sorted(d["name"] for _, d in g.nodes(data=True) if d["kind"] == "host")


def _drawn(g: nx.Graph) -> list[tuple[str, str, dict]]:
    return [(u, v, d) for u, v, d in g.edges(data=True) if d["kind"] != "contains"]


def _dot_edge_line(dot: str, u: str, v: str) -> str:
    """The DOT line of the edge u -- v, in whichever orientation it was written."""
    for a, b in ((u, v), (v, u)):
        for line in dot.splitlines():
            if line.strip().startswith(f'"{a}" -- "{b}" ['):
                return line
    raise AssertionError(f"edge {u} -- {v} not in the DOT text")


def _port(g: nx.Graph, bridge: str, tag: int) -> str:
    """The node on `bridge`'s access port of this tag (names vary with the loader's defaults)."""
    return next(m for m in g.neighbors(bridge) if g.edges[bridge, m] == {"kind": "access", "tag": tag})


def _peer(g: nx.Graph, veth: str) -> str:
    return next(m for m in g.neighbors(veth) if g.edges[veth, m]["kind"] == "patch")


def _attr(line: str, key: str) -> str:
    m = re.search(rf'\b{key}="((?:[^"\\]|\\.)*)"', line)
    assert m, f"no {key} in {line}"
    return m.group(1)


# --- shared helpers ------------------------------------------------------------


def test_vlan_list_collapses_runs_of_three_or_more():
    assert drawing.vlan_list([200, 10, 100]) == "10,100,200"
    assert drawing.vlan_list([10, 11]) == "10,11"
    assert drawing.vlan_list([5, *range(100, 200), 300]) == "5,100-199,300"


def test_vlan_list_caps_a_long_label():
    text = drawing.vlan_list(range(2, 400, 2))
    assert text.endswith("more")
    assert text.count(",") == drawing.MAX_LABEL_VLANS


def test_vlan_colours_are_distinct_and_stable(three):
    colours = drawing.vlan_colours(three)
    assert sorted(colours) == [10, 100, 200, 300]
    assert len(set(colours.values())) == 4
    assert drawing.vlan_colours(three) == colours


def test_more_vlans_than_colours_still_gets_a_colour_each():
    g = nx.Graph(vlans={vid: f"v{vid}" for vid in range(1, 40)})
    colours = drawing.vlan_colours(g)
    assert len(colours) == 39
    assert set(colours.values()) == set(drawing.PALETTE)


# --- DOT -----------------------------------------------------------------------


def test_dot_has_one_cluster_per_host(seed):
    dot = to_dot(seed)
    for host in _hosts(seed):
        assert dot.count(f'subgraph "cluster_{host}" {{') == 1
    assert 'subgraph "cluster_switch:switch"' in dot
    assert 'subgraph "cluster_router:router"' in dot
    assert 'label="node1"' in dot


def test_dot_draws_every_edge_but_contains(seed):
    dot = to_dot(seed)
    for u, v, _ in _drawn(seed):
        _dot_edge_line(dot, u, v)
    for u, v, d in seed.edges(data=True):
        if d["kind"] == "contains":
            assert f'"{u}" -- "{v}"' not in dot and f'"{v}" -- "{u}"' not in dot
    # The host nodes exist only as clusters.
    assert '"host:node1" [' not in dot


def test_dot_labels_access_and_trunk_edges(seed):
    dot = to_dot(seed)
    access = _dot_edge_line(dot, "ovs:node1/br-ovs", _port(seed, "ovs:node1/br-ovs", 100))
    assert _attr(access, "label") == "tag 100 (web)"
    db = _dot_edge_line(dot, "ovs:node2/br-ovs", _port(seed, "ovs:node2/br-ovs", 200))
    assert _attr(db, "label") == "tag 200 (db)"
    trunk = _dot_edge_line(dot, "ovs:node1/br-ovs", "nic:node1/eth1")
    assert _attr(trunk, "label") == "trunk 10,100,200 (native 10)"
    assert _attr(trunk, "penwidth") == "3"


def test_dot_colours_each_vlan_differently(seed):
    dot = to_dot(seed)
    by_tag = {
        d["tag"]: _attr(_dot_edge_line(dot, u, v), "color")
        for u, v, d in seed.edges(data=True)
        if d["kind"] == "access"
    }
    assert len(by_tag) == 3
    assert len(set(by_tag.values())) == 3
    # Same VLAN, same colour, wherever it appears.
    colours = drawing.vlan_colours(seed)
    assert by_tag == {tag: colours[tag] for tag in by_tag}
    trunk = _attr(_dot_edge_line(dot, "switch:switch", "switch_port:switch/node1-eth1"), "color")
    assert [c for c in trunk.split(":") if c != "white"] == [colours[10], colours[100], colours[200]]


def test_dot_line_styles_by_edge_kind(seed):
    dot = to_dot(seed)
    assert _attr(_dot_edge_line(dot, "nic:node1/eth1", "switch_port:switch/node1-eth1"), "style") == "dashed"
    veth = _port(seed, "ovs:node1/br-ovs", 100)
    assert _attr(_dot_edge_line(dot, veth, _peer(seed, veth)), "style") == "dotted"
    assert float(_attr(_dot_edge_line(dot, "router:router", "router_leg:router/web"), "penwidth")) < 1


def test_dot_trunk_with_many_vlans_is_one_dark_line():
    g = nx.Graph(vlans={vid: f"v{vid}" for vid in range(1, 50)})
    g.add_node("ovs:h/br", kind="ovs_bridge", host="h", name="br")
    g.add_node("nic:h/eth0", kind="nic", host="h", name="eth0")
    g.add_edge("ovs:h/br", "nic:h/eth0", kind="trunk", vlans=frozenset(range(1, 50)), native=None)
    line = _dot_edge_line(to_dot(g), "ovs:h/br", "nic:h/eth0")
    assert _attr(line, "color") == drawing.PLAIN
    assert _attr(line, "label") == "trunk 1-49"


@needs_dot
def test_dot_parses_with_graphviz_and_shows_host_names(seed):
    svg = subprocess.run(["dot", "-Tsvg"], input=to_dot(seed).encode(), capture_output=True, check=True)
    text = svg.stdout.decode()
    assert "<svg" in text
    for host in _hosts(seed):
        assert f">{host}</text>" in text
    assert "tag 100 (web)" in text


@needs_dot
def test_dot_places_hosts_left_to_right_by_name(three):
    plain = subprocess.run(["dot", "-Tplain"], input=to_dot(three).encode(), capture_output=True, check=True)
    x: dict[str, float] = {}
    y: dict[str, float] = {}
    for line in plain.stdout.decode().splitlines():
        m = re.match(r'node "nic:(\w+)/\w+" ([\d.]+) ([\d.]+)', line)
        if m:
            x[m.group(1)], y[m.group(1)] = float(m.group(2)), float(m.group(3))
    assert sorted(x, key=x.get) == ["alpha", "bravo", "charlie"]
    assert len(set(y.values())) == 1  # one row of NICs, flat host included
    sw = re.search(r'node "switch:switch" [\d.]+ ([\d.]+)', plain.stdout.decode())
    assert sw and float(sw.group(1)) < min(y.values())  # the switch below the hosts


@needs_dot
def test_dot_escapes_awkward_names():
    # Names the loader would refuse, as a hand-built graph might carry them.
    g = nx.Graph(name='we"ird', vlans={7: 'a"b\\c'})
    a, b = 'ovs:h"1/br\\0', "endpoint:x\ny"
    g.add_node("host:h", kind="host", host='h"1', name='h"1')
    g.add_node(a, kind="ovs_bridge", host='h"1', name='br\\N"')
    g.add_node(b, kind="endpoint", host='h"1', name="x\ny", addresses=("10.0.0.1/24",), vlan=7)
    g.add_edge(a, b, kind="access", tag=7)
    dot = to_dot(g)
    proc = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    svg = proc.stdout.decode()
    assert "br\\N&quot;" in svg  # the backslash stayed a character, not an escape
    assert "tag 7 (a&quot;b\\c)" in svg


def test_dot_is_deterministic(three):
    # Same graph, nodes and edges inserted in reverse: same text.
    g = nx.Graph(**three.graph)
    g.add_nodes_from(reversed(list(three.nodes(data=True))))
    g.add_edges_from(reversed(list(three.edges(data=True))))
    assert to_dot(g) == to_dot(three)
    assert to_mermaid(g) == to_mermaid(three)
    assert to_tree(g) == to_tree(three)


# --- Mermaid -------------------------------------------------------------------

_MM_LINK = re.compile(r"^\s+(\S+) (===|---|-\.-)(?:\|\"([^\"]*)\"\|)? (\S+)$")


def test_mermaid_has_one_subgraph_per_host(seed):
    mm = to_mermaid(seed)
    assert mm.startswith("flowchart LR\n")
    titles = re.findall(r'^\s*subgraph \S+\["([^"]*)"\]', mm, re.M)
    for host in _hosts(seed):
        assert titles.count(host) == 1
    assert mm.count("subgraph ") == mm.count("\n  end\n") == len(_hosts(seed)) + 2  # + switch, router


def test_mermaid_ids_are_safe(three):
    mm = to_mermaid(three)
    ids = re.findall(r"^\s+(\w\S*?)(?:\[|\(|\{)", mm, re.M)
    ids += [m.group(1) for m in map(_MM_LINK.match, mm.splitlines()) if m]
    assert ids
    for i in ids:
        assert ":" not in i and "/" not in i
        assert re.fullmatch(r"[A-Za-z0-9_]+", i), i
        assert i != "end"


def test_mermaid_draws_every_edge_with_labels_and_styles(seed):
    mm = to_mermaid(seed)
    links = [m for m in map(_MM_LINK.match, mm.splitlines()) if m]
    assert len(links) == len(_drawn(seed))
    labels = [m.group(3) for m in links]
    assert labels.count("trunk 10,100,200 (native 10)") == 4
    assert all(m.group(2) == "===" for m in links if (m.group(3) or "").startswith("trunk"))
    assert labels.count("tag 100 (web)") == 3  # two hosts and the router's leg
    styled = sorted(int(i) for line in re.findall(r"^\s+linkStyle (\S+) ", mm, re.M) for i in line.split(","))
    assert styled == list(range(len(links)))
    colours = drawing.vlan_colours(seed)
    for vid in (10, 100, 200):
        assert f"stroke:{colours[vid]}" in mm


def test_mermaid_escapes_label_characters():
    g = nx.Graph(name="t", vlans={})
    g.add_node("endpoint:a", kind="endpoint", host="h", name='say "hi" <b>#1</b>')
    mm = to_mermaid(g)
    assert "say #quot;hi#quot; #lt;b#gt;#35;1#lt;/b#gt;" in mm


# --- tree ----------------------------------------------------------------------


def test_tree_lists_every_port_with_its_tag(three):
    tree = to_tree(three)
    lines = tree.splitlines()
    for u, v, d in three.edges(data=True):
        if d["kind"] == "access" and three.nodes[u]["kind"] in ("ovs_bridge", "switch"):
            port = three.nodes[v]
        elif d["kind"] == "access" and three.nodes[v]["kind"] in ("ovs_bridge", "switch"):
            port = three.nodes[u]
        else:
            continue
        tag = drawing.tag_text(three, d["tag"])
        assert any(f"access {tag} → {port['name']} (" in line for line in lines), (port, tag)
    assert "trunk 10,100 (native 10) → eth1 (NIC)" in tree
    assert "trunk 10,200,300 (native 10) → eth1 (NIC)" in tree


def test_tree_shape_of_the_seed(seed):
    tree = to_tree(seed)
    assert tree.startswith("seed\nVLANs: 10 mgmt, 100 web, 200 db\n")
    block = tree.split("\n\n")[1]
    web, db = (_port(seed, "ovs:node1/br-ovs", tag) for tag in (100, 200))
    name = {n: seed.nodes[n]["name"] for n in (web, db, _peer(seed, web), _peer(seed, db))}
    assert block.splitlines() == [
        "node1",
        "└── br-ovs (OVS bridge, datapath system)",
        "    ├── trunk 10,100,200 (native 10) → eth1 (NIC)",
        "    │   └── cable → node1-eth1 (switch port) on lab switch",
        "    ├── access tag 10 (mgmt) → mgmt0 (internal port, 192.168.10.11/24)",
        f"    ├── access tag 100 (web) → {name[web]} (veth)",
        f"    │   └── veth pair → {name[_peer(seed, web)]} (veth)",
        "    │       └── attached → br-web (Linux bridge, Docker network web)",
        "    │           └── attached → web1 (endpoint, 10.100.0.11/24)",
        f"    └── access tag 200 (db) → {name[db]} (veth)",
        f"        └── veth pair → {name[_peer(seed, db)]} (veth)",
        "            └── attached → br-db (Linux bridge, Docker network db)",
        "                └── attached → db1 (endpoint, 10.200.0.11/24)",
    ]
    heads = [b.splitlines()[0] for b in tree.split("\n\n")[1:]]
    assert heads == ["node1", "node2", "lab switch", "router"]


def test_tree_shows_every_node_once_in_its_host(three):
    tree = to_tree(three)
    blocks = {b.splitlines()[0]: b for b in tree.split("\n\n")[1:]}
    assert set(blocks) == {"alpha", "bravo", "charlie", "lab switch", "router"}
    title = {"switch": "lab switch", "router": "router"}
    for n, d in three.nodes(data=True):
        if d["kind"] in ("host", "switch", "router"):
            continue
        block = blocks[title.get(d["host"], d["host"])]
        # Its own line: reached by a link ("→") or a root ("──"); pointers to it end "on <group>".
        mine = re.compile(rf"(→|──) {re.escape(d['name'])} \(")
        owned = [line for line in block.splitlines() if mine.search(line) and " on " not in line]
        assert len(owned) == 1, (n, owned)
    assert "└── br0 (Linux bridge, flat: NIC as a port, VLAN 10 (mgmt), 192.168.10.13/24)" in blocks["charlie"]
    assert "access tag 300 (ops) → ops2 (endpoint, 10.30.0.12/24)" in blocks["bravo"]


def test_pictures_of_odd_graphs():
    # An endpoint on a host the graph does not know, and an empty graph:
    # drawn outside any cluster, listed under its own heading.
    g = nx.Graph(name="odd", vlans={5: "five"})
    g.add_node("endpoint:lost", kind="endpoint", host="ghost", name="lost", addresses=("10.0.0.9/24",), vlan=5)
    dot = to_dot(g)
    assert '"endpoint:lost" [' in dot and "cluster_" not in dot
    assert "ghost\n└── lost (endpoint, 10.0.0.9/24)" in to_tree(g)
    assert "n_endpoint_lost" in to_mermaid(g)
    empty = nx.Graph()
    assert to_tree(empty) == "topology\n"
    assert to_mermaid(empty) == "flowchart LR\n"
    assert to_dot(empty).startswith('graph "topology" {')


@needs_dot
def test_odd_graphs_still_parse():
    empty = nx.Graph()
    subprocess.run(["dot", "-Tsvg"], input=to_dot(empty).encode(), capture_output=True, check=True)


# --- files ---------------------------------------------------------------------


def test_render_file_writes_dot_without_graphviz(seed, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    out = tmp_path / "net.dot"
    render_file(seed, out)
    assert out.read_text() == to_dot(seed)


@needs_dot
def test_render_file_writes_svg(seed, tmp_path):
    out = tmp_path / "net.svg"
    render_file(seed, out)
    text = out.read_text()
    assert "<svg" in text and "node1" in text and "node2" in text


def test_render_file_refuses_an_unknown_suffix(seed, tmp_path):
    with pytest.raises(UsageError) as exc:
        render_file(seed, tmp_path / "net.xyz")
    for suffix in (".dot", ".svg", ".png", ".pdf"):
        assert suffix in str(exc.value)
    assert not (tmp_path / "net.xyz").exists()


def test_render_file_without_graphviz_says_how_to_get_it(seed, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UsageError, match="apt-get install graphviz"):
        render_file(seed, tmp_path / "net.png")
    assert not (tmp_path / "net.png").exists()


def test_render_file_reports_a_failing_dot(seed, tmp_path, monkeypatch):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'syntax error in line 3' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name: str(fake))
    with pytest.raises(BackendError, match="syntax error in line 3"):
        render_file(seed, tmp_path / "net.svg")
    assert not (tmp_path / "net.svg").exists()
