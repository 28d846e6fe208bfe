"""Start-up cost of the CLI: `ovsnet --help` wall time and what it imports.

  1. runs `.venv/bin/ovsnet --help` RUNS times (subprocess) and prints min/median;
  2. runs `python -X importtime -m ovsnet --help` and reports whether any of
     networkx, pyroute2 or ovs (the heavy back-end libraries) were imported
     (they should not be: the commands import them lazily), plus the ten
     slowest imports by cumulative time.

Usage:  .venv/bin/python bench/cli_help.py [--runs 10]
Exit status 1 if a heavy module was imported.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
HEAVY = ("networkx", "pyroute2", "ovs")


def time_help(runs: int) -> list[float]:
    exe = VENV / "ovsnet"
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
        out.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise SystemExit(f"ovsnet --help failed ({p.returncode}): {p.stderr.strip()}")
    return out


def import_times() -> list[tuple[int, int, str]]:
    """(self us, cumulative us, module) for every import of `python -m ovsnet --help`."""
    p = subprocess.run([str(VENV / "python"), "-X", "importtime", "-m", "ovsnet", "--help"], capture_output=True, text=True, cwd=ROOT)
    rows = []
    for line in p.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = (x.strip() for x in line[len("import time:"):].split("|", 2))
        rows.append((int(self_us), int(cum_us), name.strip()))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()

    times = time_help(args.runs)
    print(f"ovsnet --help, {args.runs} runs: min {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")

    rows = import_times()
    modules = {name for _, _, name in rows}
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    tops = sorted({m.split(".")[0] for m in heavy})
    print(f"modules imported by `python -X importtime -m ovsnet --help`: {len(modules)}")
    for h in HEAVY:
        print(f"  {h:<9} {'IMPORTED' if h in tops else 'not imported'}")
    top_level = [r for r in rows if "." not in r[2]]
    print("slowest top-level imports (cumulative):")
    for self_us, cum_us, name in sorted(top_level, key=lambda r: -r[1])[:10]:
        print(f"  {cum_us / 1000:7.1f} ms  {name}")
    sys.exit(1 if tops else 0)


if __name__ == "__main__":
    main()
