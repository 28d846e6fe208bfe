"""Converging a lab after a one-line edit, against rebuilding it from scratch (#13).

A generated lab of N hosts (default 10): every host trunks mgmt, web, db
and app to one lab switch, has a Docker bridge for web, db and app, and a
web endpoint; a router joins mgmt, web and app. Measured, in this process,
through `ovsnet.lab.run.lab_up` (what `ovsnet lab up` runs):

  build      lab up from nothing (every host applied, endpoints plugged)
  noop       lab up again with the file unchanged: every host "no change"
  converge   lab up after a one-line edit (a new VLAN on node1's trunk):
             the lab's own change (node1's switch port), node1's one OVS
             change, nine hosts with nothing to do
  rebuild    what a user did before: lab down, then lab up of the edited file

For noop and converge, the time of each host with nothing to do (its read
and plan) is reported too (the goal: under 0.3 s each). --docker runs a
lab dockerd in every host (`lab up --docker`), so each host's read includes
its Docker networks. The machine's load average is printed before and after:
the figures mean little without it.

Usage (root, from the repository root):
    .venv/bin/python bench/lab_converge.py [--hosts 10] [--docker] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ovsnet.lab import netns, run, teardown  # noqa: E402
from ovsnet.lab.names import default_lab_dir  # noqa: E402
from ovsnet.topology import load_checked  # noqa: E402
from tests.support.topologies import LAB_TRUNK, lab_hosts  # noqa: E402

TRUNK = LAB_TRUNK


def topology(k: int) -> str:
    return lab_hosts(k, "converge", extra_vlans=(("extra", 400, "10.40.0"),), host_slice=28)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def idle_hosts(converged) -> list[float]:
    return [h.seconds for h in converged.hosts if h.applied == 0]


def one_run(k: int, docker: bool, workdir: Path) -> dict:
    prefix = netns.unique_prefix("od2")
    path = workdir / "converge.toml"
    path.write_text(topology(k))
    row: dict = {"hosts": k, "docker": docker, "load_before": load()}
    try:
        _, row["build_s"] = timed(lambda: run.lab_up(load_checked(path), prefix, docker=docker))
        out, row["noop_s"] = timed(lambda: run.lab_up(load_checked(path), prefix, docker=docker).converged)
        idle = idle_hosts(out)
        row["noop_hosts_idle"] = len(idle)
        row["noop_per_host_mean_s"], row["noop_per_host_max_s"] = statistics.mean(idle), max(idle)
        # The one-line edit: node1's trunk gets VLAN extra.
        path.write_text(topology(k).replace(TRUNK, 'vlans = ["mgmt", "web", "db", "app", "extra"]', 1))
        out, row["converge_s"] = timed(lambda: run.lab_up(load_checked(path), prefix, docker=docker).converged)
        row["converge_lab_changes"] = [c.line() for c in out.plan.changes]
        row["converge_changed_hosts"] = {h.host: h.applied for h in out.hosts if h.applied}
        idle = idle_hosts(out)
        row["converge_hosts_idle"] = len(idle)
        row["converge_per_host_mean_s"], row["converge_per_host_max_s"] = statistics.mean(idle), max(idle)
        _, down_s = timed(lambda: teardown.destroy(prefix, default_lab_dir(prefix)))
        _, up_s = timed(lambda: run.lab_up(load_checked(path), prefix, docker=docker))
        row["rebuild_down_s"], row["rebuild_up_s"], row["rebuild_s"] = down_s, up_s, down_s + up_s
        row["speedup"] = row["rebuild_s"] / row["converge_s"]
    finally:
        teardown.destroy(prefix, default_lab_dir(prefix))
        row["left"] = netns.listed(f"{prefix}-")
        row["load_after"] = load()
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--docker", action="store_true", help="a lab dockerd in every host")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="od2-converge-") as tmp:
        for i in range(args.runs):
            row = one_run(args.hosts, args.docker, Path(tmp))
            print(json.dumps({"run": i + 1, **row}), flush=True)
            if row["left"]:
                sys.exit(f"namespaces left behind: {row['left']}")


if __name__ == "__main__":
    main()
