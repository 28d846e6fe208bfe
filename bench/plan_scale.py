"""Offline scaling: parse, check and plan every host of a large topology.

Generates topology.toml text in memory: 4094 VLANs (each with its own
10.X.Y.0/24 subnet and host_slice 28), 50 hosts, N Docker bridges spread
round-robin over hosts and VLANs. Every host's uplink trunks exactly the
VLANs its bridges use (plus the management VLAN, untagged). Then times:

  parse  ovsnet.topology.load.parse(text)
  check  ovsnet.topology.check(topo)  (graph + validation + address plan)
  plan   for every host: planner.desire + planner.diff(d, offline.from_nothing(d))

Usage:  .venv/bin/python bench/plan_scale.py [--sizes 1000,5000,10000,20000]
                                             [--repeat 1] [--profile N]
--profile N runs cProfile over check + plan of the N-port case and prints
the top functions by cumulative and by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ovsnet.plan import offline, planner  # noqa: E402
from ovsnet.topology import check  # noqa: E402
from ovsnet.topology.load import parse  # noqa: E402

HOSTS = 50
VLANS = 4094
GOAL_S = 3.0  # validate + offline plan of the 20,000-port case


def vlan_subnet(vid: int) -> str:
    return f"10.{vid // 256}.{vid % 256}.0/24"


def generate(n_ports: int, hosts: int = HOSTS, vlans: int = VLANS) -> str:
    """Topology text. VLAN 1 is management (untagged on each uplink);
    Docker bridges use VLANs 2..vlans, port k on host k % hosts and VLAN
    2 + k % (vlans - 1), so no host has two networks on one VLAN."""
    out = ['name = "scale"', ""]
    for vid in range(1, vlans + 1):
        out.append(f"[vlans.v{vid}]")
        out.append(f"id = {vid}")
        out.append(f'subnet = "{vlan_subnet(vid)}"')
        out.append(f'router = "10.{vid // 256}.{vid % 256}.1"')
        out.append("host_slice = 28")
        out.append("")
    per_host: list[list[tuple[int, int]]] = [[] for _ in range(hosts)]
    for k in range(n_ports):
        per_host[k % hosts].append((k, 2 + k % (vlans - 1)))
    for h in range(hosts):
        name = f"h{h}"
        used = sorted({v for _, v in per_host[h]})
        out.append(f"[hosts.{name}]")
        out.append('bridge = { name = "br-ovs", datapath = "netdev" }')
        out.append(f"[[hosts.{name}.uplinks]]")
        out.append('nic = "eth1"')
        out.append("vlans = [" + ", ".join(f'"v{v}"' for v in ["1", *map(str, used)]) + "]")
        out.append('native_vlan = "v1"')
        out.append(f"[hosts.{name}.management]")
        out.append(f'addresses = ["10.0.1.{10 + h}/24"]')
        out.append('gateway = "10.0.1.1"')
        for k, v in per_host[h]:
            out.append(f"[[hosts.{name}.docker]]")
            out.append(f'bridge = "d{k}"')
            out.append(f'vlan = "v{v}"')
            out.append(f'network = "n{k}"')
        out.append("")
    return "\n".join(out)


def plan_all(checked, limit: int = 0) -> int:
    topo = checked.topology
    changes = 0
    hosts = list(topo.hosts.values())
    for host in hosts[:limit] if limit else hosts:
        d = planner.desire(topo, host)
        p = planner.diff(d, offline.from_nothing(d))
        if p.blockers:
            raise SystemExit(f"unexpected blockers on {host.name}: {p.blockers[:3]}")
        changes += len(p.changes)
    return changes


def measure(n: int, repeat: int, plan_hosts: int = 0) -> dict:
    text = generate(n)
    best: dict[str, float] = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        topo = parse(text, f"scale-{n}.toml")
        t1 = time.perf_counter()
        checked = check(topo)
        t2 = time.perf_counter()
        changes = plan_all(checked, plan_hosts)
        t3 = time.perf_counter()
        scale = HOSTS / plan_hosts if plan_hosts else 1.0  # extrapolate to all hosts
        for k, v in (("parse", t1 - t0), ("check", t2 - t1), ("plan", (t3 - t2) * scale)):
            best[k] = min(best.get(k, v), v)
    return {"n": n, "bytes": len(text), "changes": changes if not plan_hosts else f"~{changes * HOSTS // plan_hosts}", "est": bool(plan_hosts), **best}


def profile(n: int, top: int = 25) -> None:
    text = generate(n)
    topo = parse(text, f"scale-{n}.toml")
    pr = cProfile.Profile()
    pr.enable()
    checked = check(topo)
    plan_all(checked)
    pr.disable()
    for key in ("cumulative", "tottime"):
        s = io.StringIO()
        pstats.Stats(pr, stream=s).strip_dirs().sort_stats(key).print_stats(top)
        print(f"--- cProfile check+plan, N={n}, sorted by {key} ---")
        print(s.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,5000,10000,20000")
    ap.add_argument("--repeat", type=int, default=1, help="runs per size; the minimum of each phase is kept")
    ap.add_argument("--plan-hosts", type=int, default=0, metavar="K",
                    help="plan only the first K hosts and multiply by 50/K (plan column marked '*'); for sizes that would take minutes")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="profile check+plan at N ports")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    print(f"{HOSTS} hosts, {VLANS} VLANs (host_slice 28), N Docker bridges (each: Linux bridge + veth + OVS port + Docker network)")
    print(f"{'ports':>7} {'toml KB':>8} {'changes':>8} {'parse s':>8} {'check s':>8} {'plan s':>8} {'check+plan':>11}")
    rows = []
    for n in sizes:
        r = measure(n, args.repeat, args.plan_hosts if n > 1000 else 0)
        rows.append(r)
        print(f"{r['n']:>7} {r['bytes'] // 1024:>8} {r['changes']:>8} {r['parse']:>8.3f} {r['check']:>8.3f} {r['plan']:>8.3f}{'*' if r['est'] else ' '}{r['check'] + r['plan']:>10.3f}", flush=True)
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        f = b["n"] / a["n"]
        print(f"growth {a['n']} -> {b['n']} ports (x{f:g}): "
              + ", ".join(f"{k} x{b[k] / a[k]:.1f}" for k in ("parse", "check", "plan"))
              + f", check+plan x{(b['check'] + b['plan']) / (a['check'] + a['plan']):.1f}")
    if any(r["est"] for r in rows):
        print(f"* plan time measured on the first {args.plan_hosts} hosts and scaled by {HOSTS}/{args.plan_hosts} (sizes above 1000 only)")
    last = rows[-1]
    if last["n"] == 20000:
        total = last["check"] + last["plan"]
        print(f"goal: check + offline plan of 20000 ports < {GOAL_S:g} s: {total:.2f} s -> {'MET' if total < GOAL_S else 'MISSED'}")
    if args.profile:
        profile(args.profile)


if __name__ == "__main__":
    main()
