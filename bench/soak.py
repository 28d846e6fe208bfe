"""Soak: N cycles of up / up again / down on a lab host; nothing may leak.

One simulated host, the one the tests use (tests/support/labhost.py): a
namespace with a private ovsdb-server + ovs-vswitchd (netdev datapath) whose
eth1 is a veth to a gateway namespace answering 192.168.10.1, plus the
hardening tests' objects that are not ovsnet's (an OVS bridge with ports, a
Linux bridge with a port, addresses and routes). The seed's node1 (two
Docker bridges on VLANs 100 and 200, the management address moved from eth1
to mgmt0) is applied and removed N times *in this process*, so that its own
file descriptors and threads can be counted.

After every cycle, compared with the measurements after cycle 0 (which warms
up lazy imports): the namespaces with this run's prefix; the link names in the
host and gateway namespaces; the number of rows of Bridge, Port and Interface
in OVSDB; this process's open file descriptors, threads and child processes;
the processes whose command line names this run (exactly the two OVS
daemons); the file descriptors held by ovsdb-server and ovs-vswitchd; the
host's addresses and routes. Every up must apply, every second up must be a
no-op. Any difference is a leak: it is printed and the exit status is 1.

Usage (root, from the repository root):
    .venv/bin/python bench/soak.py [--cycles 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
from tests.support.commands import ns_json  # noqa: E402
from tests.support.labhost import SimulatedHost, add_foreign_objects  # noqa: E402
from tests.support.leaks import daemon_pid, open_fds, own_usage, processes_naming  # noqa: E402
from tests.support.topologies import node1  # noqa: E402


def vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_processes(workdir: Path) -> list[str]:
    """Program names of the processes whose command line names this run: its two OVS daemons, nothing else."""
    return sorted(os.path.basename(argv[0]) for argv in processes_naming(str(workdir)))


def measure(host: SimulatedHost) -> dict:
    rows = {}
    for table in ("Bridge", "Port", "Interface"):
        rows[table] = len(json.loads(host.vsctl("--format=json", "--columns=_uuid", "list", table, timeout=60))["data"])
    links = lambda ns: sorted(l["ifname"] for l in ns_json(ns, "link"))  # noqa: E731
    addrs = sorted((a["ifname"], i["local"]) for a in ns_json(host.ns, "addr") for i in a.get("addr_info", []) if i.get("scope") != "link")
    routes = sorted(json.dumps(r, sort_keys=True) for r in ns_json(host.ns, "route"))
    daemon_fds = {}
    for program in ("ovsdb-server", "ovs-vswitchd"):
        pid = daemon_pid(host.ovs.rundir, program)
        daemon_fds[f"{program} fds"] = open_fds(pid) if pid else None  # a daemon gone is a difference too
    state = host.workdir / "state"
    return {
        "namespaces": netns.listed(host.prefix),
        "host links": links(host.ns),
        "gateway links": links(host.gw),
        "host addresses": addrs,
        "host routes": routes,
        "resolv.conf nameservers": [l for l in host.resolv.read_text().splitlines() if l.startswith("nameserver")],
        "ovsdb rows": rows,
        **own_usage(),
        "processes naming the run": run_processes(host.workdir),
        **daemon_fds,
        "state files": sorted(str(p.name) for p in state.rglob("*.json")) if state.exists() else [],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args()

    prefix = netns.unique_prefix("sk")
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    host = SimulatedHost(prefix, workdir, "search example.test\nnameserver 9.9.9.9\n", gateway_timeout=30.0, ovs_timeout=60.0)
    leaks: list[str] = []
    times = {"up": [], "again": [], "down": []}
    rss: list[int] = []
    base: dict | None = None
    print(f"prefix {prefix}, run dir {workdir}", flush=True)
    try:
        host.start()
        add_foreign_objects(host.ns, host.ovs.remote, prefix[-5:])
        checked = check(parse(node1(f"soak{prefix[-5:]}", mgmt_port=True), "soak.toml"))
        target = host.target
        pristine = measure(host)
        apply.up(checked, "node1", target)
        apply.down(checked, "node1", target)
        base = measure(host)
        for key in ("host links", "host addresses", "host routes", "resolv.conf nameservers", "ovsdb rows"):
            if base[key] != pristine[key]:
                leaks.append(f"cycle 0: {key}: {pristine[key]} -> {base[key]}")
        for cycle in range(1, args.cycles + 1):
            t0 = time.perf_counter()
            r = apply.up(checked, "node1", target)
            t1 = time.perf_counter()
            again = apply.up(checked, "node1", target)
            t2 = time.perf_counter()
            apply.down(checked, "node1", target)
            t3 = time.perf_counter()
            times["up"].append(t1 - t0)
            times["again"].append(t2 - t1)
            times["down"].append(t3 - t2)
            if not r.applied:
                leaks.append(f"cycle {cycle}: up applied nothing")
            if again.applied or not again.plan.empty:
                leaks.append(f"cycle {cycle}: second up was not a no-op: {[c.resource for c in again.plan.changes]}")
            now = measure(host)
            for key in base:
                if now[key] != base[key]:
                    leaks.append(f"cycle {cycle}: {key}: {base[key]} -> {now[key]}")
            rss.append(vm_rss_kib())
            if cycle % 10 == 0 or cycle == args.cycles:
                print(f"cycle {cycle}: up {times['up'][-1]:.2f} s, again {times['again'][-1]:.2f} s, down {times['down'][-1]:.2f} s; "
                      f"fds {now['fds']}, threads {now['threads']}, ovsdb rows {now['ovsdb rows']}, RSS {rss[-1]} KiB; "
                      f"leaks so far {len(leaks)}", flush=True)
    finally:
        host.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    left_ns = netns.listed(prefix)
    left_proc = run_processes(workdir)
    if left_ns:
        leaks.append(f"namespaces left after the run: {left_ns}")
    if left_proc:
        leaks.append(f"processes left after the run: {left_proc}")

    def stats(xs):
        return {"min": round(min(xs), 3), "median": round(sorted(xs)[len(xs) // 2], 3), "max": round(max(xs), 3)} if xs else {}

    summary = {
        "cycles": len(times["up"]),
        "seconds": {k: stats(v) for k, v in times.items()},
        "baseline": {k: base[k] for k in ("fds", "threads", "children", "ovsdb rows", "ovsdb-server fds", "ovs-vswitchd fds")} if base else None,
        "rss_kib": {"first": rss[0], "last": rss[-1], "max": max(rss)} if rss else None,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "leaks": leaks,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"\n{summary['cycles']} cycles of up / up again / down: {len(leaks)} leaks")
        for k, v in summary["seconds"].items():
            print(f"  {k:6} s: {v}")
        print(f"  baseline {summary['baseline']}")
        print(f"  RSS KiB {summary['rss_kib']}, peak {summary['peak_rss_kib']}")
        for leak in leaks:
            print(f"  LEAK: {leak}")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
