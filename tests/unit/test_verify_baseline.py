"""verify --baseline (#13, item 4): which pairs flipped, and whether the edit explains each. Pure."""

from __future__ import annotations

import json

import pytest

from ovsnet.errors import UsageError
from ovsnet.render.verify import render_flips, to_json
from ovsnet.topology.graph import Expect
from ovsnet.verify import baseline
from ovsnet.verify.matrix import Peer
from ovsnet.verify.report import build_report

SAME, ROUTED, BLOCKED = Expect.SAME_VLAN, Expect.ROUTED, Expect.BLOCKED


def station(name: str, vlan: int) -> Peer:
    return Peer(name, "node1", vlan, f"10.{vlan}.0.1/24", False, f"node1/v{vlan}")


def report(expected: dict, observed: dict, stations=("a", "b", "c")):
    sts = [station(s, 100 + i) for i, s in enumerate(stations)]
    return build_report("seed", sts, expected, observed)


def saved(r, tmp_path, name="base.json"):
    path = tmp_path / name
    path.write_text(json.dumps(to_json(r)))
    return baseline.load(path)


def test_an_edit_that_opens_one_pair_and_a_fault_that_closes_another(tmp_path):
    before = report({("a", "b"): BLOCKED, ("a", "c"): SAME, ("b", "c"): ROUTED},
                    {("a", "b"): False, ("a", "c"): True, ("b", "c"): True})
    # The edit routes a <-> b (expected to open); b -> c breaks without the edit asking (unexpected).
    after = report({("a", "b"): ROUTED, ("a", "c"): SAME, ("b", "c"): ROUTED},
                   {("a", "b"): True, ("a", "c"): True, ("b", "c"): False})
    c = baseline.compare(saved(before, tmp_path), after)
    assert [(f.src, f.dst, f.opened, f.expected) for f in c.flips] == [("a", "b", True, True), ("b", "c", False, False)]
    assert [(f.src, f.dst) for f in c.unexpected] == [("b", "c")]
    assert c.missed == () and not c.ok and c.compared == 3
    text = render_flips(c)
    assert "2 pairs flipped (1 expected from the edit, 1 not), 3 pairs compared" in text
    assert "newly reachable  a -> b  expected: the edit made it blocked -> routed" in text
    assert "newly blocked    b -> c  UNEXPECTED: both topologies expect routed" in text


def test_an_edit_that_did_not_take_is_listed(tmp_path):
    before = report({("a", "b"): SAME}, {("a", "b"): True})
    after = report({("a", "b"): BLOCKED}, {("a", "b"): True})
    c = baseline.compare(saved(before, tmp_path), after)
    assert c.flips == () and [(f.src, f.dst) for f in c.missed] == [("a", "b")] and not c.ok
    assert "NOT FLIPPED      a -> b  the edit made it same-vlan -> blocked, still reached" in render_flips(c)


def test_no_flip_is_ok_and_stations_that_came_and_went_are_named(tmp_path):
    before = report({("a", "b"): SAME, ("b", "a"): SAME}, {("a", "b"): True, ("b", "a"): True}, stations=("a", "b"))
    after = report({("a", "c"): BLOCKED}, {("a", "c"): False}, stations=("a", "c"))
    c = baseline.compare(saved(before, tmp_path), after)
    assert c.ok and c.flips == () and c.compared == 0
    assert (c.added, c.removed) == (("c",), ("b",))
    body = baseline.to_json(c)
    assert body["ok"] and body["stations_added"] == ["c"] and body["stations_removed"] == ["b"]


def test_unprobed_pairs_are_not_compared(tmp_path):
    before = report({("a", "b"): SAME}, {})
    after = report({("a", "b"): SAME}, {("a", "b"): False})
    assert baseline.compare(saved(before, tmp_path), after).compared == 0


def test_a_bad_baseline_says_what_it_is(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match=r"--baseline .*bad.json: not JSON .*give the output of `ovsnet verify ... --json`"):
        baseline.load(bad)
    bad.write_text(json.dumps({"topology": "seed"}))
    with pytest.raises(UsageError, match=r"not the output of `ovsnet verify --json` \(ValueError: no list of pairs\)"):
        baseline.load(bad)
    with pytest.raises(UsageError, match="cannot read it"):
        baseline.load(tmp_path / "missing.json")


def test_a_baseline_of_another_topology_or_mode_is_refused(tmp_path):
    r = report({("a", "b"): SAME}, {("a", "b"): True})
    base = saved(r, tmp_path)
    other = build_report("campus", list(r.stations), {("a", "b"): SAME}, {("a", "b"): True})
    with pytest.raises(UsageError, match="is a verify of topology 'seed', not 'campus'"):
        baseline.compare(base, other)
    host = build_report("seed", list(r.stations), {("a", "b"): SAME}, {("a", "b"): True}, mode="host")
    with pytest.raises(UsageError, match="compare like with like"):
        baseline.compare(base, host)


def test_a_dual_stack_run_is_compared_family_by_family(tmp_path):
    from dataclasses import replace

    def dual(expected, seen4, seen6):
        r = report(expected, seen4)
        six = replace(report(expected, seen6), family=6)
        return replace(r, ipv6=six)

    before = dual({("a", "b"): SAME, ("b", "a"): SAME}, {("a", "b"): True, ("b", "a"): True}, {("a", "b"): True, ("b", "a"): True})
    # IPv6 breaks from a to b only (a fault: the topology still expects same-vlan in both families).
    after = dual({("a", "b"): SAME, ("b", "a"): SAME}, {("a", "b"): True, ("b", "a"): True}, {("a", "b"): False, ("b", "a"): True})
    c = baseline.compare(saved(before, tmp_path), after)
    assert [(f.src, f.dst, f.family, f.expected) for f in c.flips] == [("a", "b", 6, False)]
    assert c.compared == 4 and not c.ok
    assert "newly blocked    a -> b (IPv6)  UNEXPECTED: both topologies expect same-vlan" in render_flips(c)
    assert baseline.to_json(c)["flips"][0]["family"] == 6
    # A baseline of IPv4 alone: the IPv6 matrix has nothing to flip against.
    c = baseline.compare(saved(report({("a", "b"): SAME}, {("a", "b"): True}), tmp_path, "v4.json"), after)
    assert c.flips == () and c.compared == 1
