"""Lab up + verify + down: the seed topology, and a generated 200-endpoint one.

  seed   topologies/seed.toml: `lab up` (run.up: build + every host through
         apply.up + endpoints), `verify --lab` (verify.lab.verify_lab: all 30 pairs,
         6 captures), `lab down` (teardown.destroy). Goal: under 20 s in total.
  big    generated: H hosts (default 10) x V container VLANs (default 4) x E
         endpoints per host per VLAN (default 5), i.e. 200 endpoints + 10 host
         addresses = 210 stations. mgmt (VLAN 10) is native on every trunk and
         holds the hosts' addresses; the router joins mgmt and the first two
         container VLANs, the others are isolated. Every host trunks eth1 to one
         lab switch and has one Docker bridge per VLAN.

Above 64 stations verify samples the pairs (see `ovsnet verify --help`):
every pair between one representative per host/VLAN group and each host
address, every station to each representative of its own VLAN, and to the
other groups on its own host. --all-pairs pings all of them instead.

Everything lives in namespaces with a unique prefix and is removed at the
end, pass or fail.

Usage (root):  .venv/bin/python bench/lab_verify.py [--runs 3] [--hosts 10 --vlans 4 --per 5]
                                                     [--skip-seed] [--skip-big] [--all-pairs]
                                                     [--concurrency 32]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ovsnet.lab import names as lab_names  # noqa: E402
from ovsnet.lab import netns, run, teardown  # noqa: E402
from ovsnet.render.verify import render_matrix  # noqa: E402
from ovsnet.topology import load_checked  # noqa: E402
from ovsnet.verify.lab import verify_lab  # noqa: E402
from ovsnet.verify.pings import DEFAULT_CONCURRENCY  # noqa: E402
from ovsnet.verify.report import Report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "topologies" / "seed.toml"


def big_topology(hosts: int, vlans: int, per: int) -> str:
    """H hosts x V VLANs x E endpoints, as TOML; VLAN k is 100+k with subnet 10.(100+k).0.0/16."""
    ids = [100 + k for k in range(vlans)]
    routed = ids[:2]
    out = [
        'name = "bigv"',
        f'description = "{hosts} hosts x {vlans} VLANs x {per} endpoints per host per VLAN"',
        "[vlans.mgmt]", "id = 10", 'subnet = "192.168.0.0/16"', 'router = "192.168.0.1"',
    ]
    for v in ids:
        out += [f"[vlans.v{v}]", f"id = {v}", f'subnet = "10.{v}.0.0/16"', "host_slice = 24"]
        if v in routed:
            out.append(f'router = "10.{v}.0.1"')
    out += ["[router]", 'vlans = ["mgmt", ' + ", ".join(f'"v{v}"' for v in routed) + "]"]
    for h in range(1, hosts + 1):
        out += [
            f"[hosts.n{h}]", 'bridge = { name = "br-ovs" }',
            f"[[hosts.n{h}.uplinks]]", 'nic = "eth1"',
            'vlans = ["mgmt", ' + ", ".join(f'"v{v}"' for v in ids) + "]", 'native_vlan = "mgmt"',
            f"[hosts.n{h}.management]", f'addresses = ["192.168.1.{h}/16"]', 'gateway = "192.168.0.1"',
        ]
        for v in ids:
            out += [f"[[hosts.n{h}.docker]]", f'bridge = "br-v{v}"', f'vlan = "v{v}"']
    for h in range(1, hosts + 1):
        for v in ids:
            for i in range(1, per + 1):
                out += ["[[endpoints]]", f'name = "e{h}-{v}-{i}"', f'host = "n{h}"', f'vlan = "v{v}"',
                        f'address = "10.{v}.{h}.{10 + i}/16"']
    out += ["[lab]", 'switch = "sw"']
    for h in range(1, hosts + 1):
        out += ["[[lab.cables]]", f'ends = ["n{h}:eth1", "sw"]']
    return "\n".join(out) + "\n"


def one_run(path: Path, stem: str, all_pairs: bool, concurrency: int, show: bool) -> dict:
    checked = load_checked(path)
    prefix = netns.unique_prefix(stem)[:7]
    lab_dir = lab_names.default_lab_dir(prefix)
    row: dict = {"prefix": prefix}
    try:
        t0 = time.monotonic()
        lab = run.up(checked, prefix, lab_dir)
        row["up"] = time.monotonic() - t0
        t = time.monotonic()
        report = verify_lab(checked, lab, all_pairs=all_pairs, concurrency=concurrency)
        row["verify"] = time.monotonic() - t
        row["report"] = report
        if show:
            print(render_matrix(report))
    finally:
        t = time.monotonic()
        teardown.destroy(prefix, lab_dir)
        row["down"] = time.monotonic() - t
    left = netns.listed(f"{prefix}-")
    if left:
        raise SystemExit(f"left behind: {left}")
    row["total"] = row.get("up", 0) + row.get("verify", 0) + row["down"]
    return row


def describe(name: str, row: dict) -> str:
    r: Report = row["report"]
    t = dict(r.timings)
    pings = t.get("pings", 0.0)
    return (
        f"| {name} | {len(r.stations)} | {r.probed} of {len(r.pairs)}{' (sampled)' if r.sampled else ''} "
        f"| {len(r.captures)} | {row['up']:.1f} | {row['verify']:.1f} (pings {pings:.1f}) | {row['down']:.1f} "
        f"| **{row['total']:.1f}** | {'OK' if r.ok else f'{len(r.mismatches)} mismatches, {len(r.findings)} findings'} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="seed runs")
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--vlans", type=int, default=4)
    ap.add_argument("--per", type=int, default=5, help="endpoints per host per VLAN")
    ap.add_argument("--skip-seed", action="store_true")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--all-pairs", action="store_true", help="no sampling on the big topology")
    ap.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    ap.add_argument("--show", action="store_true", help="print each matrix")
    args = ap.parse_args()
    rows = []
    if not args.skip_seed:
        for i in range(args.runs):
            row = one_run(SEED, "bs", False, args.concurrency, args.show and i == 0)
            rows.append(describe(f"seed (run {i + 1})", row))
            print(rows[-1], flush=True)
    if not args.skip_big:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "big.toml"
            path.write_text(big_topology(args.hosts, args.vlans, args.per))
            row = one_run(path, "bb", args.all_pairs, args.concurrency, True)
        name = f"{args.hosts}x{args.vlans}x{args.per}" + (" all pairs" if args.all_pairs else "")
        rows.append(describe(name, row))
        r: Report = row["report"]
        print("verify phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in r.timings))
        if r.sampled:
            print(
                f"sampled: {r.probed} of {len(r.pairs)} pairs: every pair between one representative per "
                "host/VLAN group and each host address, every station to each representative of its VLAN, "
                "and to the other groups on its host (--all-pairs for all)"
            )
    print("\n| lab | stations | pairs probed | captures | up s | verify s | down s | total s | result |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for line in rows:
        print(line)


if __name__ == "__main__":
    main()
