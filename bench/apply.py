"""Live apply cost: ovsnet up/down vs the seed's one-command-per-object vs the floor.

For each N, one simulated host: a fresh network namespace with a private
ovsdb-server + ovs-vswitchd (netdev datapath), whose eth1 is a veth to a
"gateway" namespace answering 192.168.10.1 (the tests' host: tests/support/labhost.py).
N "tagged veth ports" = N Docker bridge entries, each on its own VLAN: per
entry a Linux bridge, a veth pair (one end enslaved to the bridge) and an OVS
access port tagged with the VLAN. Three ways to build them:

  (a) ovsnet   apply.up from nothing (also moves eth1 into OVS behind mgmt0,
               waits for the gateway), up again with no change, then down.
  (b) seed     one subprocess per object: `ip -n NS link add` / `link set`
               for each bridge and veth, one `ovs-vsctl add-port` per port;
               cleanup one `ip link del` per object + `ovs-vsctl del-br`.
  (c) floor    one `ip -n NS -batch` for all links, one ovs-vsctl transaction
               for the bridge and all ports; cleanup the same way.

(b) and (c) do not touch the uplink/management address; (a) does (a fixed cost:
the gateway ARP probe and route moves). Everything lives in namespaces with a
unique prefix and is removed at the end, pass or fail.

Usage (root):  .venv/bin/python bench/apply.py [--sizes 50,200,1000] [--skip-seed-above N]

--phases: where ovsnet's time goes instead (bench/phases.py). Per size and run,
a fresh host for each variant of ovsnet and one for the floor (no seed, no
down): ovsnet's `up` and no-op `up` in a process of their own, split by phase
(imports, read+plan, netlink batch, OVSDB commit, cur_cfg wait, mgmt port wait,
uplink move, gateway ARP probe, verify), with ovs-vswitchd's and ovsdb-server's
CPU per phase, the machine's load and CPU steal, ovs-vswitchd's log (ports
added, long poll intervals) and, with --capture, the ARP packets in the host.

    .venv/bin/python bench/apply.py --phases --sizes 200,1000 --runs 3 \
        [--variant base=COMMIT --variant exp=COMMIT ...] [--profile DIR] [--capture]

A variant is a git commit of this repository, checked out to a temporary
directory and imported from there; without --variant the worktree is measured.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ovsnet import apply  # noqa: E402
from ovsnet.lab import netns  # noqa: E402
from ovsnet.topology import check  # noqa: E402
from ovsnet.topology.load import parse  # noqa: E402
from tests.support.labhost import SimulatedHost  # noqa: E402
from tests.support.topologies import tagged_ports  # noqa: E402

BR = "br-ovs"
VLAN0 = 100  # port i is on VLAN VLAN0 + i


class Lab(SimulatedHost):
    """The simulated host, with the counts each way's cleanup is checked against."""

    def count_ports(self) -> int:
        return len(self.vsctl("list-ports", BR).split())

    def count_links(self) -> int:
        return len(self.ip("-o", "link").splitlines())


def bench_ovsnet(lab: Lab, n: int, tag: str) -> dict:
    checked = check(parse(tagged_ports(n, f"b{tag}", VLAN0, BR), "bench.toml"))
    target = lab.target
    links_before = lab.count_links()
    t0 = time.perf_counter()
    r = apply.up(checked, "node1", target)
    t_up = time.perf_counter() - t0
    ports = lab.count_ports()
    assert ports == n + 2, f"ovsnet up: {ports} ports on {BR}, expected {n + 2}"
    t0 = time.perf_counter()
    again = apply.up(checked, "node1", target)
    t_again = time.perf_counter() - t0
    assert again.applied == () and again.plan.empty, "second up was not a no-op"
    t0 = time.perf_counter()
    apply.down(checked, "node1", target)
    t_down = time.perf_counter() - t0
    assert lab.count_links() == links_before, "down left links behind"
    return {"up": t_up, "again": t_again, "down": t_down, "changes": len(r.applied)}


def bench_seed(lab: Lab, n: int) -> dict:
    links_before = lab.count_links()
    t0 = time.perf_counter()
    lab.vsctl("add-br", BR, "--", "set", "Bridge", BR, "datapath_type=netdev")
    for i in range(n):
        b, o, l = f"b{i}", f"ovs-b{i}", f"lnx-b{i}"
        lab.ip("link", "add", b, "type", "bridge")
        lab.ip("link", "add", o, "type", "veth", "peer", "name", l)
        lab.ip("link", "set", l, "master", b, "up")
        lab.ip("link", "set", b, "up")
        lab.ip("link", "set", o, "up")
        lab.vsctl("add-port", BR, o, f"tag={VLAN0 + i}")
    t_up = time.perf_counter() - t0
    assert lab.count_ports() == n
    t0 = time.perf_counter()
    lab.vsctl("del-br", BR)
    for i in range(n):
        lab.ip("link", "del", f"ovs-b{i}")
        lab.ip("link", "del", f"b{i}")
    t_down = time.perf_counter() - t0
    assert lab.count_links() == links_before, "seed cleanup left links behind"
    return {"up": t_up, "down": t_down}


def floor_up(lab: Lab, n: int, parts: dict | None = None) -> float:
    """The floor's up: one `ip -batch` for all links, one ovs-vsctl transaction; seconds.

    `parts`, if given, gets the two steps' times ("links", "ovsdb") and their
    start and end on CLOCK_MONOTONIC.
    """
    batch = []
    for i in range(n):
        batch += [f"link add b{i} type bridge", f"link add ovs-b{i} type veth peer name lnx-b{i}"]
    for i in range(n):
        batch += [f"link set lnx-b{i} master b{i} up", f"link set b{i} up", f"link set ovs-b{i} up"]
    vs = ["add-br", BR, "--", "set", "Bridge", BR, "datapath_type=netdev"]
    for i in range(n):
        vs += ["--", "add-port", BR, f"ovs-b{i}", f"tag={VLAN0 + i}"]
    t0 = time.perf_counter()
    m0 = time.monotonic()
    lab.ip("-batch", "-", input="\n".join(batch) + "\n")
    m1 = time.monotonic()
    lab.vsctl(*vs)
    t_up = time.perf_counter() - t0
    if parts is not None:
        parts.update(links=m1 - m0, ovsdb=time.monotonic() - m1, t0=m0, t1=m0 + t_up)
    assert lab.count_ports() == n
    return t_up


def bench_floor(lab: Lab, n: int) -> dict:
    links_before = lab.count_links()
    t_up = floor_up(lab, n)
    dels = [f"link del ovs-b{i}\nlink del b{i}" for i in range(n)]
    t0 = time.perf_counter()
    lab.vsctl("del-br", BR)
    lab.ip("-batch", "-", input="\n".join(dels) + "\n")
    t_down = time.perf_counter() - t0
    assert lab.count_links() == links_before, "floor cleanup left links behind"
    return {"up": t_up, "down": t_down}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50,200,1000")
    ap.add_argument("--skip-seed-above", type=int, default=0, metavar="N", help="skip (b) for sizes above N (it is the slow one)")
    ap.add_argument("--phases", action="store_true", help="split ovsnet's up by phase against the floor (no seed, no down)")
    ap.add_argument("--runs", type=int, default=1, help="with --phases: fresh hosts per size and variant, this many times")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=COMMIT", help="with --phases: measure this commit too (repeatable)")
    ap.add_argument("--profile", metavar="DIR", help="with --phases: cProfile (wall clock) one more no-op up, stats to DIR")
    ap.add_argument("--capture", action="store_true", help="with --phases: tcpdump ARP inside the host during up")
    ap.add_argument("--no-floor", action="store_true", help="with --phases: do not measure the floor")
    ap.add_argument("--json", metavar="FILE", help="with --phases: every run's raw record to FILE")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.phases:
        import phases_bench

        phases_bench.main(args, sizes, Lab, floor_up)
        return

    prefix = netns.unique_prefix("obn")
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    print(f"prefix {prefix}, run dir {workdir}", flush=True)
    rows = []
    try:
        for k, n in enumerate(sizes):
            lab = Lab(f"{prefix}{k}", workdir / str(n), datapath="netdev", gateway_timeout=10.0, ovs_timeout=120.0)
            try:
                lab.start()
                row = {"n": n}
                row["ovsnet"] = bench_ovsnet(lab, n, f"{prefix[-5:]}{k}")
                print(f"N={n}: ovsnet up {row['ovsnet']['up']:.2f} s ({row['ovsnet']['changes']} changes), again {row['ovsnet']['again']:.2f} s, down {row['ovsnet']['down']:.2f} s", flush=True)
                if args.skip_seed_above and n > args.skip_seed_above:
                    row["seed"] = None
                else:
                    row["seed"] = bench_seed(lab, n)
                    print(f"N={n}: seed up {row['seed']['up']:.2f} s, cleanup {row['seed']['down']:.2f} s", flush=True)
                row["floor"] = bench_floor(lab, n)
                print(f"N={n}: floor up {row['floor']['up']:.2f} s, cleanup {row['floor']['down']:.2f} s", flush=True)
                rows.append(row)
            finally:
                lab.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        left = netns.listed(prefix)
        if left:
            print(f"WARNING: namespaces left behind: {left}", file=sys.stderr)

    def f(x):
        return f"{x:.2f}" if x is not None else "-"

    print()
    print(f"{'N':>5} | {'ovsnet up':>9} {'up again':>8} {'down':>6} | {'seed up':>8} {'seed del':>8} | {'floor up':>8} {'floor del':>9} | {'up/floor':>8} {'seed/up':>7}")
    for r in rows:
        o, s, fl = r["ovsnet"], r["seed"], r["floor"]
        print(f"{r['n']:>5} | {o['up']:>9.2f} {o['again']:>8.2f} {o['down']:>6.2f} | {f(s and s['up']):>8} {f(s and s['down']):>8} | {fl['up']:>8.2f} {fl['down']:>9.2f} | "
              f"{o['up'] / fl['up']:>8.1f} {f(s and s['up'] / o['up']):>7}")
    print("seconds, wall clock; up/floor = ovsnet up / floor up; seed/up = seed up / ovsnet up")


if __name__ == "__main__":
    main()
