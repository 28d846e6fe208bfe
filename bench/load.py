"""Load: thousands of tagged ports on one host, and a 10-host lab, through ovsnet's own apply path.

Part 1 - ports. For each N (default 1000 and 4000), in a child process of
its own (so that resource.getrusage's peak RSS is that run's alone): a fresh
namespace with a private ovsdb-server + ovs-vswitchd (netdev datapath) whose
eth1 is a veth to a gateway namespace answering 192.168.10.1: the tests'
host (tests/support/labhost.py), as in bench/apply.py. N "tagged ports" = N
`[[docker]]` entries, each on its own VLAN (11 + i): a Linux bridge, a veth
pair, an OVS access port with that tag. Measured: `apply.up` from nothing,
`apply.up` again (must be a no-op: no change planned or applied), `drift`
(must be empty), `apply.down`; ovsnet's peak RSS, ovs-vswitchd's peak RSS
(VmHWM), OVS port and Linux link counts.

Part 2 - a lab of 10 hosts (`ovsnet.lab.run.up` on a generated topology:
10 hosts trunked to a lab switch, 4 VLANs, 3 Docker bridges per host, a
router, 10 endpoints). Measured: lab up (build + apply of every host), a
re-apply of every host (must be a no-op), lab down; peak RSS; namespaces.

Each size has a wall-clock budget (--budget, default 900 s, "about 15
minutes"): past it the child is stopped with SIGUSR1, which removes its
daemons and namespaces (never `down`: that would take as long again), and
the row says how far it got. Nothing is left behind either way: every name
carries a per-run prefix, checked at the end.

Usage (root, from the repository root):
    .venv/bin/python bench/load.py [--sizes 1000,4000] [--lab-hosts 10] [--budget 900] [--skip-lab] [--skip-ports]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ovsnet.lab import netns  # noqa: E402
from tests.support.topologies import lab_hosts, tagged_ports  # noqa: E402

BR = "br-ovs"
VLAN0 = 11  # port i is on VLAN VLAN0 + i (VLAN 10 is management); 4000 ports end at 4010


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def vm_hwm_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# Past its budget a child gets SIGUSR1, not SIGTERM: pyroute2 stops the short-lived
# children it forks (netns sockets) with SIGTERM, and they inherit our handlers.
BUDGET_SIGNAL = signal.SIGUSR1


def _over_budget(main_pid: int):
    def handler(_sig, _frame):
        if os.getpid() != main_pid:
            os._exit(1)  # a forked helper: die as SIG_DFL would, never run our code
        raise SystemExit("stopped: over budget")

    return handler


def emit(**row) -> None:
    print("ROW " + json.dumps(row), flush=True)


def note(text: str) -> None:
    print(text, flush=True)


# --- part 1: ports ------------------------------------------------------------------


def one_size(n: int, prefix: str, workdir: Path) -> None:
    """Child process: build the host, measure up / up again / drift / down, tear it all down."""
    from ovsnet import apply
    from ovsnet.topology import check
    from ovsnet.topology.load import parse
    from tests.support.labhost import SimulatedHost
    from tests.support.leaks import daemon_pid

    signal.signal(BUDGET_SIGNAL, _over_budget(os.getpid()))
    host = SimulatedHost(prefix, workdir, datapath="netdev", gateway_timeout=60.0, ovs_timeout=3600.0)
    row: dict = {"n": n}
    try:
        host.start()
        vswitchd = daemon_pid(host.ovs.rundir, "ovs-vswitchd")
        t0 = time.perf_counter()
        checked = check(parse(tagged_ports(n, f"ld{prefix[-5:]}", VLAN0, BR), "load.toml"))
        row["check_s"] = round(time.perf_counter() - t0, 2)
        target = host.target
        links0 = len(host.ip("-o", "link").splitlines())
        note(f"N={n}: up ...")
        t0 = time.perf_counter()

        def progress(msg: str) -> None:
            # Phase-level lines only (the per-change uplink lines are few): when ovsnet
            # hands a phase to the kernel or OVS, and how long it has taken so far.
            if "changes" in msg or "waiting" in msg:
                note(f"N={n}: +{time.perf_counter() - t0:.1f} s {msg.strip()}")

        r = apply.up(checked, "node1", target, report=progress)
        row["up_s"] = round(time.perf_counter() - t0, 2)
        row["changes"] = len(r.applied)
        row["ovs_ports"] = len(host.vsctl("list-ports", BR).split())
        row["links"] = len(host.ip("-o", "link").splitlines())
        row["rss_after_up_kib"] = peak_rss_kib()
        note(f"N={n}: up {row['up_s']} s, {row['changes']} changes, {row['ovs_ports']} OVS ports; up again ...")
        emit(**row, phase="up")
        t0 = time.perf_counter()
        again = apply.up(checked, "node1", target)
        row["again_s"] = round(time.perf_counter() - t0, 2)
        row["again_noop"] = again.applied == () and again.plan.empty
        t0 = time.perf_counter()
        row["drift_empty"] = apply.drift(checked, "node1", target).empty
        row["drift_s"] = round(time.perf_counter() - t0, 2)
        emit(**row, phase="again")
        note(f"N={n}: again {row['again_s']} s (no-op: {row['again_noop']}); down ...")
        t0 = time.perf_counter()
        apply.down(checked, "node1", target)
        row["down_s"] = round(time.perf_counter() - t0, 2)
        row["links_after_down"] = len(host.ip("-o", "link").splitlines())
        row["links_restored"] = row["links_after_down"] == links0
        row["peak_rss_kib"] = peak_rss_kib()
        row["vswitchd_peak_rss_kib"] = vm_hwm_kib(vswitchd)
        emit(**row, phase="done")
    except SystemExit as exc:
        row["stopped"] = str(exc)
        row["peak_rss_kib"] = peak_rss_kib()
        emit(**row, phase="stopped")
    finally:
        signal.signal(BUDGET_SIGNAL, signal.SIG_IGN)  # the cleanup must finish
        host.stop()


# --- part 2: a lab of K hosts ---------------------------------------------------------


def lab_topology(k: int) -> str:
    return lab_hosts(k, "loadlab")


def one_lab(k: int, prefix: str, workdir: Path) -> None:
    from ovsnet import apply
    from ovsnet.lab import names as lab_names
    from ovsnet.lab import run
    from ovsnet.topology import check
    from ovsnet.topology.load import parse

    signal.signal(BUDGET_SIGNAL, _over_budget(os.getpid()))
    path = workdir / "lab.toml"
    path.write_text(lab_topology(k))
    checked = check(parse(path.read_text(), str(path)))
    lab_dir = workdir / "lab"
    row: dict = {"hosts": k}
    try:
        t0 = time.perf_counter()
        lab = run.up(checked, prefix, lab_dir)
        row["lab_up_s"] = round(time.perf_counter() - t0, 2)
        row["namespaces"] = len(lab.namespaces)
        row["rss_after_up_kib"] = peak_rss_kib()
        note(f"lab of {k}: up {row['lab_up_s']} s, {row['namespaces']} namespaces; re-apply ...")
        t0 = time.perf_counter()
        noop = True
        for host, target in lab_names.targets(lab).items():
            again = apply.up(checked, host, target)
            noop = noop and again.applied == () and again.plan.empty
        row["again_s"] = round(time.perf_counter() - t0, 2)
        row["again_noop"] = noop
        emit(**row, phase="up")
    except SystemExit as exc:
        row["stopped"] = str(exc)
    finally:
        signal.signal(BUDGET_SIGNAL, signal.SIG_IGN)
        t0 = time.perf_counter()
        run.down(checked, prefix, lab_dir)
        row["lab_down_s"] = round(time.perf_counter() - t0, 2)
        row["left"] = netns.listed(prefix)
        row["peak_rss_kib"] = peak_rss_kib()
        emit(**row, phase="done")


# --- the parent ---------------------------------------------------------------------------


def child(args: list[str], budget: float) -> list[dict]:
    """Run this script as a child; relay its output; stop it past the budget."""
    import queue
    import threading

    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    rows: list[dict] = []
    deadline = time.monotonic() + budget
    stopped = False
    while True:
        if not stopped and time.monotonic() > deadline:
            note(f"  over the {budget:.0f} s budget: stopping the child (its cleanup removes everything)")
            proc.send_signal(BUDGET_SIGNAL)
            stopped = True
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            continue
        if line is None:
            break
        if line.startswith("ROW "):
            rows.append(json.loads(line[4:]))
        else:
            print("  " + line.rstrip(), flush=True)
    proc.wait()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,4000")
    ap.add_argument("--lab-hosts", type=int, default=10)
    ap.add_argument("--budget", type=float, default=900.0, help="seconds per size / for the lab (default 900)")
    ap.add_argument("--skip-lab", action="store_true")
    ap.add_argument("--skip-ports", action="store_true")
    ap.add_argument("--one-size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--one-lab", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--prefix", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one_size:
        return one_size(args.one_size, args.prefix, Path(args.workdir))
    if args.one_lab:
        return one_lab(args.one_lab, args.prefix, Path(args.workdir))

    prefix = netns.unique_prefix("ld")
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    note(f"prefix {prefix}, run dir {workdir}")
    results = {"ports": [], "lab": []}
    try:
        if not args.skip_ports:
            for k, n in enumerate(int(s) for s in args.sizes.split(",") if s):
                d = workdir / f"n{n}"
                d.mkdir()
                t0 = time.monotonic()
                rows = child(["--one-size", str(n), "--prefix", f"{prefix}{k}", "--workdir", str(d)], args.budget)
                final = rows[-1] if rows else {"n": n, "phase": "no output"}
                final["wall_s"] = round(time.monotonic() - t0, 1)
                results["ports"].append(final)
        if not args.skip_lab:
            d = workdir / "lab"
            d.mkdir()
            rows = child(["--one-lab", str(args.lab_hosts), "--prefix", prefix, "--workdir", str(d)], args.budget)
            results["lab"].append(rows[-1] if rows else {"hosts": args.lab_hosts, "phase": "no output"})
    finally:
        left = netns.listed(prefix)
        shutil.rmtree(workdir, ignore_errors=True)
        if left:
            print(f"WARNING: namespaces left behind: {left}", file=sys.stderr)
    print()
    print(json.dumps(results, indent=2))
    for r in results["ports"]:
        mib = lambda k: f"{k / 1024:.0f} MiB" if k else "-"  # noqa: E731
        print(f"N={r.get('n')}: phase {r.get('phase')}; up {r.get('up_s', '-')} s ({r.get('changes', '-')} changes), "
              f"again {r.get('again_s', '-')} s (no-op {r.get('again_noop', '-')}), down {r.get('down_s', '-')} s; "
              f"ovsnet peak RSS {mib(r.get('peak_rss_kib'))}, ovs-vswitchd peak RSS {mib(r.get('vswitchd_peak_rss_kib'))}"
              + (f"; {r['stopped']}" if r.get("stopped") else ""))
    for r in results["lab"]:
        print(f"lab of {r.get('hosts')}: up {r.get('lab_up_s', '-')} s, {r.get('namespaces', '-')} namespaces, re-apply "
              f"{r.get('again_s', '-')} s (no-op {r.get('again_noop', '-')}), down {r.get('lab_down_s', '-')} s, "
              f"peak RSS {r.get('peak_rss_kib', 0) / 1024:.0f} MiB, left behind {r.get('left')}")


if __name__ == "__main__":
    main()
