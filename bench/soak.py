"""Soak: N cycles of up / up again / down on a lab host; nothing may leak.

One simulated host, as in tests/integration/test_apply.py: a namespace with a
private ovsdb-server + ovs-vswitchd (netdev datapath) whose eth1 is a veth to
a gateway namespace answering 192.168.10.1, plus objects that are not
ovsnet's (an OVS bridge with a port, a Linux bridge with an address and a
route). The seed's node1 (two Docker bridges on VLANs 100 and 200, the
management address moved from eth1 to mgmt0) is applied and removed N times
*in this process*, so that its own file descriptors and threads can be
counted.

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ovsnet import apply  # noqa: E402
from ovsnet.lab import netns  # noqa: E402
from ovsnet.lab.ovs_instance import OvsInstance  # noqa: E402
from ovsnet.target import Target  # noqa: E402
from ovsnet.topology import check  # noqa: E402
from ovsnet.topology.load import parse  # noqa: E402

TOPOLOGY = """
name = "soak{tag}"
[vlans.mgmt]
id = 10
subnet = "192.168.10.0/24"
router = "192.168.10.1"
[vlans.web]
id = 100
subnet = "10.100.0.0/24"
router = "10.100.0.1"
[vlans.db]
id = 200
subnet = "10.200.0.0/24"
[hosts.node1]
bridge = {{ name = "br-ovs", datapath = "netdev" }}
[[hosts.node1.uplinks]]
nic = "eth1"
vlans = ["mgmt", "web", "db"]
native_vlan = "mgmt"
[hosts.node1.management]
port = "mgmt0"
addresses = ["192.168.10.11/24"]
gateway = "192.168.10.1"
dns = ["192.168.10.1"]
[[hosts.node1.docker]]
bridge = "br-web"
vlan = "web"
[[hosts.node1.docker]]
bridge = "br-db"
vlan = "db"
"""


def sh(*argv: str, input: str | None = None) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, input=input)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def pidfile(rundir: Path, program: str) -> int:
    return int((rundir / f"{program}.pid").read_text().strip())


def children() -> int:
    me = str(os.getpid())
    n = 0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] not in ("Z", "X"):
                n += 1
    return n


def processes_naming(marker: str) -> list[str]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmd:
                out.append(os.path.basename(cmd.split(b"\0")[0].decode(errors="replace")))
    return sorted(out)


def vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Host:
    def __init__(self, prefix: str, workdir: Path):
        self.prefix, self.workdir = prefix, workdir
        self.ns, self.gw = f"{prefix}h", f"{prefix}g"
        self.ovs = OvsInstance()
        self.made: list[str] = []

    def start(self) -> None:
        for name in (self.ns, self.gw):
            netns.create(name)
            self.made.append(name)
        self.ovs.start(self.ns, self.workdir / "ovs")
        sh("ip", "link", "add", "eth1", "netns", self.ns, "type", "veth", "peer", "name", "gw0", "netns", self.gw)
        sh("ip", "-n", self.gw, "-batch", "-", input="addr add 192.168.10.1/24 dev gw0\nlink set gw0 up\n")
        sh("ip", "-n", self.ns, "-batch", "-", input="\n".join([
            "addr add 192.168.10.11/24 dev eth1", "link set eth1 up", "route add default via 192.168.10.1 dev eth1",
            # Not ovsnet's: must survive every cycle untouched.
            "link add fv0 type veth peer name fv1", "link set fv0 up", "link set fv1 up",
            "link add lbrf type bridge", "link set lbrf up", "addr add 10.88.0.1/24 dev lbrf",
            "route add 10.99.0.0/24 via 10.88.0.254 dev lbrf",
        ]) + "\n")
        self.vsctl("add-br", "fbr", "--", "set", "Bridge", "fbr", "datapath_type=netdev", "--", "add-port", "fbr", "fv0", "tag=33")
        self.resolv = self.workdir / "resolv.conf"
        self.resolv.write_text("search example.test\nnameserver 9.9.9.9\n")

    def stop(self) -> None:
        try:
            self.ovs.stop()
        finally:
            for name in reversed(self.made):
                netns.remove(name)

    def vsctl(self, *args: str) -> str:
        return sh("ovs-vsctl", f"--db={self.ovs.remote}", "--timeout=60", *args)

    def measure(self) -> dict:
        rows = {}
        for table in ("Bridge", "Port", "Interface"):
            rows[table] = len(json.loads(self.vsctl("--format=json", "--columns=_uuid", "list", table))["data"])
        links = lambda ns: sorted(l["ifname"] for l in json.loads(sh("ip", "-n", ns, "-j", "link")))  # noqa: E731
        addrs = sorted((a["ifname"], i["local"]) for a in json.loads(sh("ip", "-n", self.ns, "-j", "addr"))
                       for i in a.get("addr_info", []) if i.get("scope") != "link")
        routes = sorted(json.dumps(r, sort_keys=True) for r in json.loads(sh("ip", "-n", self.ns, "-j", "route")))
        rundir = self.ovs.rundir
        return {
            "namespaces": netns.listed(self.prefix),
            "host links": links(self.ns),
            "gateway links": links(self.gw),
            "host addresses": addrs,
            "host routes": routes,
            "resolv.conf nameservers": [l for l in self.resolv.read_text().splitlines() if l.startswith("nameserver")],
            "ovsdb rows": rows,
            "fds": len(os.listdir("/proc/self/fd")),
            "threads": len(os.listdir("/proc/self/task")),
            "children": children(),
            "processes naming the run": processes_naming(str(self.workdir)),
            "ovsdb-server fds": len(os.listdir(f"/proc/{pidfile(rundir, 'ovsdb-server')}/fd")),
            "ovs-vswitchd fds": len(os.listdir(f"/proc/{pidfile(rundir, 'ovs-vswitchd')}/fd")),
            "state files": sorted(str(p.name) for p in (self.workdir / "state").rglob("*.json")) if (self.workdir / "state").exists() else [],
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args()

    prefix = netns.unique_prefix("sk")
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    host = Host(prefix, workdir)
    leaks: list[str] = []
    times = {"up": [], "again": [], "down": []}
    rss: list[int] = []
    base: dict | None = None
    print(f"prefix {prefix}, run dir {workdir}", flush=True)
    try:
        host.start()
        checked = check(parse(TOPOLOGY.format(tag=prefix[-5:]), "soak.toml"))
        target = Target(ovsdb=host.ovs.remote, netns=host.ns, state_dir=str(workdir / "state"), resolv_conf=str(host.resolv),
                        gateway_timeout=30.0, ovs_timeout=60.0)
        pristine = host.measure()
        apply.up(checked, "node1", target)
        apply.down(checked, "node1", target)
        base = host.measure()
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
            now = host.measure()
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
    left_proc = processes_naming(str(workdir))
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
