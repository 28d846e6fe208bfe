"""`ovsnet graph --live` and `ovsnet import` of a host with N ports (goal: under 2 s each at N = 1,000).

One simulated host (tests/support/labhost.py: a namespace with a private
ovsdb-server + ovs-vswitchd, netdev datapath, eth1 wired to a gateway
namespace) configured by `ovsnet up` with N Docker bridges on N VLANs
(tests/support/topologies.py tagged_ports): N OVS access ports, N Linux
bridges, N veth pairs, plus the trunk and the management port. Then, each
`--repeat` times:

  live      the picture in process: read the host as `plan` reads it, plan,
            build and mark the graph, render the terminal tree
  live-cli  `ovsnet graph FILE --live --host node1 ... --json`, a process of its own
  dot       DOT text of the same picture (SVG/PNG layout by Graphviz is
            reported apart: it is Graphviz's time, and grows with the picture)
  import    in process: read the host, describe it, write and validate the file
  import-cli `ovsnet import --host node1 ... -o FILE`, a process of its own

The load average is printed before and after: the machine is shared.
Everything is removed at the end, pass or fail.

Usage (root):  .venv/bin/python bench/live_import.py [--sizes 1000] [--repeat 3] [--svg]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ovsnet import apply  # noqa: E402
from ovsnet.importer import run as importer  # noqa: E402
from ovsnet.lab import netns  # noqa: E402
from ovsnet.live import read  # noqa: E402
from ovsnet.render import dot, tree  # noqa: E402
from ovsnet.topology import load_checked  # noqa: E402
from tests.support.labhost import SimulatedHost  # noqa: E402
from tests.support.topologies import tagged_ports  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 2.0
NO_DOCKER = "unix:///nonexistent/olv-bench.sock"


CPU: dict[str, list[float]] = {}


def timed(fn, repeat: int, what: str = "") -> tuple[list[float], object]:
    """Wall-clock seconds of each run; the CPU seconds (this process's and its children's) go to CPU[what]."""
    out, last = [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), _cpu()
        last = fn()
        out.append(time.perf_counter() - t0)
        CPU.setdefault(what, []).append(_cpu() - c0)
    return out, last


def _cpu() -> float:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def cli(args: list[str]) -> None:
    env = {**os.environ, "DOCKER_HOST": NO_DOCKER}
    p = subprocess.run([str(ROOT / ".venv" / "bin" / "ovsnet"), *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"ovsnet {' '.join(args[:2])} failed: {p.stderr[-2000:]}")


def bench(n: int, repeat: int, svg: bool, work: Path) -> dict[str, list[float]]:
    prefix = netns.unique_prefix("olvb")
    topo_file = work / f"ports{n}.toml"
    topo_file.write_text(tagged_ports(n, f"ports{n}", 100))
    checked = load_checked(topo_file)
    with SimulatedHost(prefix, work / "host", gateway_timeout=60.0, ovs_timeout=600.0) as host:
        t = host.target
        t0 = time.perf_counter()
        apply.up(checked, "node1", t)
        print(f"  host with {n} ports configured by ovsnet up in {time.perf_counter() - t0:.1f} s", flush=True)
        on = ["--netns", t.netns or "", "--db", t.ovsdb, "--resolv-conf", t.resolv_conf or "", "--state-dir", t.state_dir]
        os.environ["DOCKER_HOST"] = NO_DOCKER
        results: dict[str, list[float]] = {}

        def live() -> object:
            g = read.host_picture(checked, "node1", t)
            tree.to_tree(g)
            return g

        results["live"], g = timed(live, repeat, "live")
        assert g.graph["marks"] == [], g.graph["marks"][:3]  # type: ignore[attr-defined]
        nodes = g.number_of_nodes()  # type: ignore[attr-defined]
        results["live-cli"], _ = timed(lambda: cli(["graph", str(topo_file), "--live", "--host", "node1", *on, "--json", "-q"]), repeat, "live-cli")
        results["dot"], text = timed(lambda: dot.to_dot(g), repeat, "dot")
        if svg:
            results["svg (Graphviz)"], _ = timed(lambda: dot.run_dot(str(text), "svg"), 1, "svg (Graphviz)")

        def imp() -> object:
            current, notes = importer.read(t)
            return importer.settle("node1", current, None, None, str(work / "imported.toml"), tuple(notes))

        results["import"], r = timed(imp, repeat, "import")
        assert len(r.checked.topology.hosts["node1"].docker) == n  # type: ignore[attr-defined]
        out = work / "imported-cli.toml"

        def imp_cli() -> None:
            out.unlink(missing_ok=True)
            cli(["import", "--host", "node1", *on, "-o", str(out)])

        results["import-cli"], _ = timed(imp_cli, repeat, "import-cli")
        print(f"  picture: {nodes} nodes; imported file: {len(r.text.splitlines())} lines", flush=True)  # type: ignore[attr-defined]
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--svg", action="store_true", help="also time Graphviz laying out the SVG (once)")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    failed = False
    for n in (int(s) for s in args.sizes.split(",")):
        print(f"N = {n}", flush=True)
        CPU.clear()
        with tempfile.TemporaryDirectory(prefix="olvb") as work:
            res = bench(n, args.repeat, args.svg, Path(work))
        for what, times in res.items():
            goal = what in ("live", "live-cli", "import", "import-cli") and n >= 1000
            ok = "" if not goal else ("  goal met" if min(times) < GOAL_S else "  OVER GOAL")
            failed |= goal and min(times) >= GOAL_S
            cpu = CPU.get(what, [0.0])
            print(f"  {what:16} wall min {min(times):6.2f} s  median {statistics.median(times):6.2f} s  max {max(times):6.2f} s"
                  f"   cpu min {min(cpu):5.2f} s{ok}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
