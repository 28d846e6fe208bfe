"""One ovsnet `up` from nothing and one no-op `up`, timed by phase, in a process of its own.

Run by `bench/apply.py --phases` against a simulated host it made; prints one
JSON object on its last line. A fresh process pays the imports a cold
`ovsnet up` pays, and lets each variant of the code (--tree: a checkout of
another commit) be measured against the same kind of host in the same run.

    phases_run.py SPEC_JSON [--tree DIR]

SPEC_JSON: {"n": N, "name": topology name, "vlan0": 100, "bridge": "br-ovs",
            "target": {Target fields}, "profile": path or null}
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--tree", help="import ovsnet from this checkout instead of this worktree")
    args = ap.parse_args()
    spec = json.loads(args.spec)
    sys.path.insert(0, args.tree or str(HERE.parent))

    import phases  # this worktree's, whatever the tree

    from ovsnet import apply
    from ovsnet.apply.target import Target
    from ovsnet.topology import check
    from ovsnet.topology.load import parse
    from tests.support.topologies import tagged_ports

    checked = check(parse(tagged_ports(spec["n"], spec["name"], spec["vlan0"], spec["bridge"]), "bench.toml"))
    target = Target(**spec["target"])
    rec = phases.Recorder()
    result: dict = {"ovsnet": apply.__file__}

    ti = time.monotonic()
    imports, not_found = phases.import_backends()
    result["missing_probes"] = phases.install(rec) + not_found
    rec.time_imports()
    rec.active = True
    c0 = time.process_time()
    t0 = time.monotonic()
    r = apply.up(checked, "node1", target, report=rec.report)
    t1 = time.monotonic()
    result["up"] = _record(phases, rec, t0, t1, t0 - ti)
    result["up"]["changes"] = len(r.applied)
    result["up"]["ovsnet_cpu"] = time.process_time() - c0

    c0 = time.process_time()
    rec.reset()
    t0 = time.monotonic()
    again = apply.up(checked, "node1", target, report=rec.report)
    t1 = time.monotonic()
    assert again.applied == () and again.plan.empty, "second up was not a no-op: " + "; ".join(c.line() for c in again.plan.changes[:5])
    result["noop"] = _record(phases, rec, t0, t1, 0.0)
    result["noop"]["ovsnet_cpu"] = time.process_time() - c0

    if spec.get("profile"):
        # A third up, under cProfile with its default (wall-clock) timer; probes off.
        rec.active = False
        prof = cProfile.Profile()
        t0 = time.monotonic()
        prof.runcall(apply.up, checked, "node1", target)
        result["noop_profiled"] = time.monotonic() - t0
        prof.dump_stats(spec["profile"])
        text = io.StringIO()
        stats = pstats.Stats(prof, stream=text).strip_dirs()
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)
        result["profile_text"] = text.getvalue()
    print(json.dumps(result))


def _record(phases, rec, t0: float, t1: float, imports: float) -> dict:
    return {
        "t0": t0,
        "t1": t1,
        "phases": phases.phases(rec, t0, t1, imports),
        "timeline": phases.timeline(rec, t0),
        "counts": phases.counts(rec),
        "marks": rec.marks,
        "spans": [(s.label, s.start, s.end, s.depth, s.cpu) for s in rec.spans],
        "imports": dict(rec.imports),
    }


if __name__ == "__main__":
    main()
