"""Property tests: generated topologies validate; corrupted files never crash."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ovsnet.errors import ConfigError
from ovsnet.topology import check, graph
from ovsnet.topology.load import parse

ROOT = Path(__file__).resolve().parents[2]
SEED_TEXT = (ROOT / "topologies" / "seed.toml").read_text()
OVSNET = ROOT / ".venv" / "bin" / "ovsnet"

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- generated valid topologies -----------------------------------------------------------


@st.composite
def topologies(draw):
    hosts = draw(st.lists(st.from_regex(r"h[a-z0-9]{0,8}", fullmatch=True), min_size=1, max_size=6, unique=True))
    nv = draw(st.integers(1, 8))
    ids = draw(st.lists(st.integers(2, 4094), min_size=nv, max_size=nv, unique=True))
    nets = draw(st.lists(st.integers(0, 255), min_size=nv, max_size=nv, unique=True))
    with_lab = draw(st.booleans())
    lines = ['name = "gen"']
    for i in range(nv):
        lines += [f"[vlans.v{i}]", f"id = {ids[i]}", f'subnet = "10.{nets[i]}.0.0/24"', f'router = "10.{nets[i]}.0.1"']
    lines += ["[router]", 'vlans = [' + ", ".join(f'"v{i}"' for i in range(nv)) + "]"]
    for h, name in enumerate(hosts):
        lines += [
            f"[hosts.{name}]",
            f"[[hosts.{name}.uplinks]]",
            'nic = "eth1"',
            "vlans = [" + ", ".join(f'"v{i}"' for i in range(nv)) + "]",
            f"[hosts.{name}.management]",
            'vlan = "v0"',
            f'addresses = ["10.{nets[0]}.0.{10 + h}/24"]',
            f'gateway = "10.{nets[0]}.0.1"',
        ]
        for i in range(nv):
            lines += [f"[[hosts.{name}.docker]]", f'bridge = "br-v{i}"', f'vlan = "v{i}"', f'network = "n{i}"']
    for h, name in enumerate(hosts):
        for i in range(nv):
            lines += ["[[endpoints]]", f'name = "ep-{h}-{i}"', f'host = "{name}"', f'vlan = "v{i}"', f'address = "10.{nets[i]}.0.{100 + h}/24"']
    if with_lab:
        lines += ["[lab]", 'switch = "sw"']
        for name in hosts:
            lines += ["[[lab.cables]]", f'ends = ["{name}:eth1", "sw"]']
    return "\n".join(lines) + "\n", len(hosts), nv, with_lab


@settings(max_examples=40, **SETTINGS)
@given(topologies())
def test_generated_topologies_validate(gen):
    text, nh, nv, with_lab = gen
    topo = parse(text, "gen.toml")
    checked = check(topo)
    assert checked.warnings == ()
    g = checked.graph
    # per host: host, ovs, nic, mgmt port, per VLAN 2 veth ends + 1 Linux bridge; endpoints
    n = nh * (4 + 3 * nv) + nh * nv
    if with_lab:
        n += 1 + nh + 1 + nv  # switch, its ports, router and its legs
    else:
        n += 1 + nh  # the assumed upstream switch and its ports
    assert g.number_of_nodes() == n
    for h in topo.hosts:
        assert sum(1 for _, d in g.nodes(data=True) if d["kind"] == "ovs_bridge" and d["host"] == h) == 1
    for _, _, d in g.edges(data=True):
        if d["kind"] == "access":
            assert isinstance(d["tag"], int)
        if d["kind"] == "trunk":
            assert isinstance(d["vlans"], frozenset)
    e = graph.expected(topo, g)
    for (a, b), v in e.items():
        assert e[(b, a)] is v, (a, b)
    # each endpoint reaches its peer on the same VLAN on another host only through the lab switch
    if with_lab and nh > 1:
        assert e[("ep-0-0", "ep-1-0")] is graph.Expect.SAME_VLAN
    if nv > 1:
        assert e[("ep-0-0", "ep-0-1")] is graph.Expect.ROUTED


# --- corruptions of the seed file ---------------------------------------------------------


def parse_and_check(text: str) -> None:
    """Either a valid topology or ConfigError; anything else propagates and fails."""
    try:
        check(parse(text, "corrupt.toml"))
    except ConfigError as exc:
        assert exc.findings
        for f in exc.findings:
            f.render("corrupt.toml")


SEED_LINES = SEED_TEXT.splitlines(keepends=True)
VALUE_RE = re.compile(r"^(\s*[\w.\"]+\s*=\s*)(.+)$", re.M)
VALUE_SPANS = [m.span(2) for m in VALUE_RE.finditer(SEED_TEXT)]
OTHER_VALUES = ['1', '0', '-5', '4095', '"x"', '""', 'true', '3.5', '[]', '[1, 2]', '["nope"]', '{}', '{ a = 1 }',
                '"10.0.0.1"', '"10.0.0.1/24"', '"::1/64"', '"2001:db8::/64"', '"node1:eth1"', '"a/b"', '1970-01-01']

corruption = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, len(SEED_TEXT) - 1), st.just("")),
    st.tuples(st.just("insert"), st.integers(0, len(SEED_TEXT)), st.sampled_from(list('"[]=.,\n 0a{}#\\'))),
    st.tuples(st.just("value"), st.integers(0, len(VALUE_SPANS) - 1), st.sampled_from(OTHER_VALUES)),
    st.tuples(st.just("dropline"), st.integers(0, len(SEED_LINES) - 1), st.just("")),
)


def corrupt(text: str, ops) -> str:
    for kind, i, s in ops:
        if kind == "delete" and text:
            i %= len(text)
            text = text[:i] + text[i + 1:]
        elif kind == "insert":
            i %= len(text) + 1
            text = text[:i] + s + text[i:]
        elif kind == "value":
            spans = [m.span(2) for m in VALUE_RE.finditer(text)]
            if spans:
                a, b = spans[i % len(spans)]
                text = text[:a] + s + text[b:]
        elif kind == "dropline":
            lines = text.splitlines(keepends=True)
            if lines:
                del lines[i % len(lines)]
                text = "".join(lines)
    return text


@settings(max_examples=150, **SETTINGS)
@given(st.lists(corruption, min_size=1, max_size=3))
def test_corrupted_seed_never_crashes(ops):
    parse_and_check(corrupt(SEED_TEXT, ops))


def test_every_value_replaced_by_every_other_type():
    """Exhaustive over the seed's values: a few hundred parses, well under a second each."""
    for a, b in VALUE_SPANS:
        for s in OTHER_VALUES:
            parse_and_check(SEED_TEXT[:a] + s + SEED_TEXT[b:])


def test_every_line_dropped():
    for i in range(len(SEED_LINES)):
        parse_and_check("".join(SEED_LINES[:i] + SEED_LINES[i + 1:]))


# --- the CLI on corrupted files -------------------------------------------------------------


CLI_CORRUPTIONS = {
    "syntax": SEED_TEXT.replace("[vlans.web]", "[vlans.web", 1),
    "type": SEED_TEXT.replace("id = 100", 'id = "100"', 1),
    "range": SEED_TEXT.replace("id = 200", "id = 4095", 1),
    "reference": SEED_TEXT.replace('host = "node2"', 'host = "node9"', 1),
    "duplicate": SEED_TEXT.replace("id = 200", "id = 100", 1),
    "binary": None,
}


def test_cli_validate_corrupted_files_exit_2(tmp_path):
    for name, text in CLI_CORRUPTIONS.items():
        p = tmp_path / f"{name}.toml"
        if text is None:
            p.write_bytes(b"\xff\xfe\x00garbage")
        else:
            assert text != SEED_TEXT
            p.write_text(text)
        r = subprocess.run([str(OVSNET), "validate", str(p)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, (name, r.returncode, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, (name, r.stderr)
        assert str(p) in r.stdout + r.stderr, name


def test_cli_validate_seed_exit_0():
    r = subprocess.run([str(OVSNET), "validate", str(ROOT / "topologies" / "seed.toml")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
