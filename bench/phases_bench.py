"""`bench/apply.py --phases`: ovsnet's up split by phase, side by side with the floor, per run.

For every size and run, each variant of ovsnet gets a fresh simulated host
(bench/apply.py's Lab) and runs in its own process (bench/phases_run.py),
and the floor gets one too, in an order that rotates from run to run so that
a change of the machine's load does not always hit the same one. Around each
ovsnet run: ovs-vswitchd's and ovsdb-server's CPU (bench/observe.py), the
load average and CPU steal, the lines of ovs-vswitchd's log the run caused,
and optionally a capture of ARP inside the host.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import observe
import phases

from ovsnet.lab import netns

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BR = "br-ovs"
VLAN0 = 100


def main(args, sizes: list[int], lab_class, floor_up) -> None:
    prefix = netns.unique_prefix("obn")
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    print(f"prefix {prefix}, run dir {workdir}, load {observe.loadavg()}", flush=True)
    variants = _checkouts(args.variant, workdir)
    records: list[dict] = []
    try:
        for k, n in enumerate(sizes):
            for run in range(args.runs):
                jobs = list(variants) + ([] if args.no_floor else [("floor", None)])
                shift = run % len(jobs)
                for j, (name, tree) in enumerate(jobs[shift:] + jobs[:shift]):
                    lab_prefix = f"{prefix}{k}{run}{j}"
                    lab = lab_class(lab_prefix, workdir / lab_prefix, datapath="netdev", gateway_timeout=30.0, ovs_timeout=300.0,
                                    docker_host=f"unix://{workdir}/no-docker.sock")
                    settled = observe.settle()
                    try:
                        lab.start()
                        if tree is None and name == "floor":
                            rec = _floor(lab, n, floor_up)
                        else:
                            rec = _ovsnet(lab, n, tree, f"b{prefix[-5:]}{k}{run}{j}", args, workdir / f"{name}-{n}-{run}.prof")
                        rec.update(n=n, run=run, variant=name, settled=settled)
                        records.append(rec)
                        _print_one(rec)
                    except Exception as exc:  # one failed run is reported; the others still count
                        print(f"N={n} run {run + 1} {name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                    finally:
                        _stop(lab)
        _print_tables(records, [v for v, _ in variants] + ([] if args.no_floor else ["floor"]))
        if args.json:
            Path(args.json).write_text(json.dumps(records, indent=1))
    finally:
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            for f in workdir.glob("*.prof"):
                shutil.copy(f, args.profile)
        shutil.rmtree(workdir, ignore_errors=True)
        left = netns.listed(prefix)
        if left:
            print(f"WARNING: namespaces left behind: {left}", file=sys.stderr)


def _stop(lab) -> None:
    """Stop the host's daemons and remove its namespaces, however long the kernel takes.

    ovs-vswitchd with a thousand ports can take longer than OvsInstance's
    grace to die even after SIGKILL (the kernel closes its sockets and taps),
    and then OvsInstance.stop raises before stopping ovsdb-server (the
    namespaces still go: the ExitStack runs every exit). Wait and stop the
    daemons again.
    """
    rundir = getattr(lab, "workdir", None)
    pids = [observe.pidfile(rundir / "ovs" / f"{d}.pid") for d in ("ovs-vswitchd", "ovsdb-server")] if rundir else []
    try:
        lab.stop()
        _wait_gone([p for p in pids if p])
        return
    except Exception as exc:
        print(f"  (stopping the host: {exc}; trying again)", flush=True)
    for attempt in range(12):
        time.sleep(10)
        try:
            lab.ovs.stop()
            break
        except Exception as exc:
            print(f"  (still stopping: {exc})", flush=True)
    for name in netns.listed(lab.prefix):
        netns.remove(name)
    _wait_gone([p for p in pids if p])


def _wait_gone(pids: list[int], limit: float = 300.0) -> None:
    """Until the daemons have really left /proc (not even a zombie or a dying process):
    one stuck in its exit (closing a thousand taps) keeps the namespace, and its
    teardown, for later, when it would land in the next run."""
    def there(pid: int) -> bool:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return raw[raw.rindex(")") + 2] != "Z"  # a zombie holds nothing any more

    deadline = time.monotonic() + limit
    while any(there(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.5)


def _checkouts(specs: list[str], workdir: Path) -> list[tuple[str, str | None]]:
    """(name, directory to import ovsnet from); None is this worktree as it is."""
    if not specs:
        return [("here", None)]
    out = []
    for spec in specs:
        name, _, ref = spec.partition("=")
        if not ref:
            out.append((name, None))
            continue
        tree = workdir / f"tree-{name}"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], check=True, capture_output=True, text=True).stdout.strip()
        print(f"variant {name} = {ref} ({sha})", flush=True)
        out.append((name, str(tree)))
    return out


def _ovsnet(lab, n: int, tree: str | None, topo_name: str, args, prof: Path) -> dict:
    t = lab.target
    spec = {
        "n": n, "name": topo_name, "vlan0": VLAN0, "bridge": BR,
        "target": {"ovsdb": t.ovsdb, "netns": t.netns, "state_dir": t.state_dir, "resolv_conf": t.resolv_conf,
                   "docker_host": t.docker_host, "datapath": t.datapath, "ovs_timeout": t.ovs_timeout,
                   "gateway_timeout": t.gateway_timeout},
        "profile": str(prof) if args.profile else None,
    }
    rundir = lab.workdir / "ovs"
    pids = {d: observe.pidfile(rundir / f"{d}.pid") for d in ("ovs-vswitchd", "ovsdb-server")}
    log = rundir / "ovs-vswitchd.log"
    offset = observe.log_size(log)
    capture = observe.ArpCapture(lab.ns, lab.workdir / "arp.txt").start() if args.capture else None
    sampler = observe.CpuSampler({d: p for d, p in pids.items() if p}).start()
    watch = observe.ReconfigureWatch(rundir / f"ovs-vswitchd.{pids['ovs-vswitchd']}.ctl").start()
    load_before = observe.loadavg()
    argv = [sys.executable, str(HERE / "phases_run.py"), json.dumps(spec)] + (["--tree", tree] if tree else [])
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    finally:
        sampler.stop()
        watch.stop()
        if capture:
            capture.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"phases_run.py failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec["load_before"], rec["load_after"] = load_before, observe.loadavg()
    ports = lab.count_ports()
    assert ports == n + 2, f"ovsnet up: {ports} ports on {BR}, expected {n + 2}"
    to_mono = observe.wall_to_mono()
    for key in ("up", "noop"):
        r = rec[key]
        r["cpu"] = _cpu_by_phase(sampler, r)
    up = rec["up"]
    rec["log"] = _log_facts(log, offset, up["t0"])
    _keep_log(log, rec)
    if capture:
        rec["arp"] = [(t - up["t0"], text) for t, text in capture.events(to_mono)]
    for key in ("up", "noop"):
        r = rec[key]
        r["reconfigures"], r["busy"] = watch.summary(r["t0"], r["t1"])
        r["reconf_by_span"] = {label: watch.summary(a, b)[0] for label, a, b, depth, _ in r["spans"]
                               if depth == 0 and label in ("netlink.batch", "ovsdb.transact", "mgmt.wait", "arp", "verify")}
    # The timeline again, with what ovs-vswitchd did and what crossed the wire.
    extra = [(up["t0"] + a, d, f"ovs-vswitchd main loop did not answer for {d:.2f} s (bridge_reconfigure #{v})") for a, d, v in up["busy"]]
    extra += [(up["t0"] + t, 0.0, f"arp: {text}") for t, text in rec.get("arp", [])]
    extra += [(up["t0"] + t, ms / 1000, f"ovs-vswitchd log: {ms} ms poll interval ({u} ms user, {sy} ms system) ended")
              for t, ms, u, sy in rec["log"]["long_polls"]]
    up["timeline"] = phases.timeline(_recorder(up), up["t0"], extra=extra)
    return rec


def _recorder(r: dict) -> phases.Recorder:
    rec = phases.Recorder()
    rec.marks = [tuple(m) for m in r["marks"]]
    rec.spans = [phases.Span(label, a, b, depth, None, cpu) for label, a, b, depth, cpu in r["spans"]]
    return rec


def _cpu_by_phase(sampler: observe.CpuSampler, r: dict) -> dict:
    """Daemon CPU seconds between consecutive report lines and probe spans of interest."""
    out = {"whole": sampler.between(r["t0"], r["t1"])}
    for label, start, end, depth, _cpu in r["spans"]:
        if label in ("cur_cfg", "mgmt.wait", "arp", "verify", "netlink.batch", "read+plan") and depth <= 1:
            out.setdefault(label, sampler.between(start, end))
    return out


def _floor(lab, n: int, floor_up) -> dict:
    # No cleanup: the host's namespace goes, and its links with it, in one kernel batch.
    rundir = lab.workdir / "ovs"
    pids = {d: observe.pidfile(rundir / f"{d}.pid") for d in ("ovs-vswitchd", "ovsdb-server")}
    log = rundir / "ovs-vswitchd.log"
    offset = observe.log_size(log)
    load_before = observe.loadavg()
    sampler = observe.CpuSampler({d: p for d, p in pids.items() if p}).start()
    watch = observe.ReconfigureWatch(rundir / f"ovs-vswitchd.{pids['ovs-vswitchd']}.ctl").start()
    parts: dict = {}
    try:
        seconds = floor_up(lab, n, parts)
    finally:
        sampler.stop()
        watch.stop()
    rec = {"floor_up": seconds, "load_before": load_before, "load_after": observe.loadavg(), "parts": parts}
    if "t0" in parts:
        t0 = parts["t0"]
        rec["cpu"] = {"whole": sampler.between(t0, parts["t1"]), "links": sampler.between(t0, t0 + parts["links"]),
                      "ovsdb": sampler.between(t0 + parts["links"], parts["t1"])}
        rec["log"] = _log_facts(log, offset, t0)
        mid = t0 + parts["links"]
        rec["reconfigures"] = {"links": watch.summary(t0, mid)[0], "ovsdb": watch.summary(mid, parts["t1"])[0]}
        rec["busy"] = watch.summary(t0, parts["t1"])[1]
    _keep_log(log, rec)
    return rec


def _log_facts(log: Path, offset: int, t0: float) -> dict:
    facts = observe.read_log(log, offset, observe.wall_to_mono())
    return {
        "ports_added": len(facts.added),
        "first_added": facts.added[0][0] - t0 if facts.added else None,
        "last_added": facts.added[-1][0] - t0 if facts.added else None,
        "added": {name: t - t0 for t, name in facts.added if not name.startswith("ovs-b")},
        "long_polls": [(t - t0, ms, u, s) for t, ms, u, s in facts.long_polls],
        "warnings": facts.warnings,
    }


def _keep_log(log: Path, rec: dict) -> None:
    try:
        rec["log_text"] = log.read_text(errors="replace")[-200_000:]
    except FileNotFoundError:
        pass


# --- printing ----------------------------------------------------------------------


def _print_one(rec: dict) -> None:
    head = f"N={rec['n']} run {rec['run'] + 1} {rec['variant']} (waited {rec['settled']:.1f} s for a quiet machine):"
    if rec["variant"] == "floor":
        parts = rec.get("parts", {})
        print(f"{head} floor up {rec['floor_up']:.2f} s (ip -batch {parts.get('links', 0):.2f}, ovs-vsctl {parts.get('ovsdb', 0):.2f};"
              f" bridge_reconfigure {rec.get('reconfigures')})"
              f"   load {rec['load_before']} -> {rec['load_after']}", flush=True)
        _print_observed(rec)
        for a, d, v in rec.get("busy", []):
            print(f"  {a:8.3f} {d:8.3f} ovs-vswitchd main loop did not answer (bridge_reconfigure #{v})")
        return
    up, noop = rec["up"], rec["noop"]
    print(f"{head} up {up['phases']['total']:.2f} s ({up['changes']} changes, ovsnet cpu {up['ovsnet_cpu']:.2f} s, "
          f"{up['reconfigures']} bridge_reconfigure {up['reconf_by_span']}), no-op {noop['phases']['total']:.2f} s (cpu {noop['ovsnet_cpu']:.2f} s)"
          f"   load {rec['load_before']} -> {rec['load_after']}, steal {up['cpu']['whole'].get('steal', 0):.0%}", flush=True)
    if rec.get("missing_probes"):
        print("  probes not found (table falls back to report lines): " + ", ".join(rec["missing_probes"]))
    print("  " + "  ".join(f"{c} {up['phases'][c]:.2f}" for c in phases.COLUMNS))
    print("  timeline of up (s from the call; offset, duration, what):")
    for line in up["timeline"]:
        print("   " + line)
    rec["cpu"] = up["cpu"]
    _print_observed(rec)
    print("  no-op: " + "  ".join(f"{c} {noop['phases'][c]:.3f}" for c in phases.COLUMNS if noop["phases"][c]))
    print("  no-op calls: " + ", ".join(f"{k} {n}x {s:.3f}" for k, (n, s) in sorted(noop["counts"].items(), key=lambda kv: -kv[1][1])))
    if rec.get("profile_text"):
        print(f"  no-op under cProfile: {rec['noop_profiled']:.2f} s")
        print("\n".join("    " + line for line in rec["profile_text"].splitlines() if line.strip()))


def _print_observed(rec: dict) -> None:
    for label, cpu in rec.get("cpu", {}).items():
        print(f"  during {label:13}: " + ", ".join(f"steal {v:.0%}" if k == "steal" else f"{k} {v:.2f} s" for k, v in cpu.items()))
    lg = rec.get("log")
    if not lg:
        return
    if lg["ports_added"]:
        print(f"  ovs-vswitchd log: {lg['ports_added']} interfaces added from {lg['first_added']:.2f} to {lg['last_added']:.2f} s; "
              + ", ".join(f"{k} at {v:.2f}" for k, v in lg["added"].items()))
    for t, ms, u, s in lg["long_polls"]:
        print(f"  ovs-vswitchd: {ms} ms poll interval ({u} ms user, {s} ms system) logged at {t:.2f} s")
    for w in lg["warnings"]:
        print(f"  ovs-vswitchd: {w}")


def _print_tables(records: list[dict], names: list[str]) -> None:
    print()
    cols = [c for c in phases.COLUMNS]
    print(f"{'N':>5} {'run':>3} {'variant':>10} | " + " ".join(f"{c:>7}" for c in cols)
          + f" | {'imports':>7} {'cpu':>6} {'vsw cpu':>7} {'reconf':>6} | {'no-op':>6} {'cpu':>5} | {'floor':>6} {'x':>5} | load before -> after")
    for n in sorted({r["n"] for r in records}):
        rows = [r for r in records if r["n"] == n]
        floors = {r["run"]: r["floor_up"] for r in rows if r["variant"] == "floor"}
        for r in rows:
            if r["variant"] == "floor":
                continue
            p = r["up"]["phases"]
            fl = floors.get(r["run"])
            ratio = f"{p['total'] / fl:5.2f}" if fl else "    -"
            up, noop = r["up"], r["noop"]
            vsw = up.get("cpu", {}).get("whole", {}).get("ovs-vswitchd", 0.0)
            print(f"{n:>5} {r['run'] + 1:>3} {r['variant']:>10} | " + " ".join(f"{p[c]:7.2f}" for c in cols)
                  + f" | {p.get('imports', 0):7.2f} {up.get('ovsnet_cpu', 0):6.2f} {vsw:7.2f} {up.get('reconfigures', 0):6d}"
                  + f" | {noop['phases']['total']:6.3f} {noop.get('ovsnet_cpu', 0):5.2f} | {fl if fl else 0:6.2f} {ratio} | {r['load_before']} -> {r['load_after']}")
        for name in names:
            if name == "floor":
                continue
            mine = [r for r in rows if r["variant"] == name]
            if not mine or not floors:
                continue
            ratios = [r["up"]["phases"]["total"] / floors[r["run"]] for r in mine if r["run"] in floors]
            med = statistics.median(r["up"]["phases"]["total"] for r in mine)
            print(f"{n:>5}   - {name:>10} | median up {med:.2f} s, no-op {statistics.median(r['noop']['phases']['total'] for r in mine):.3f} s, "
                  f"floor {statistics.median(floors.values()):.2f} s, up/floor median {statistics.median(ratios):.2f} (spread {min(ratios):.2f}-{max(ratios):.2f})")
    print("columns: " + "; ".join(f"{c}: {phases.EXPLAIN[c]}" for c in list(cols) + ["imports"])
          + "; cpu: ovsnet's own CPU seconds (user+system, the kernel's work for its netlink requests included); "
          "vsw cpu: ovs-vswitchd's CPU seconds during the up; reconf: bridge_reconfigure passes ovs-vswitchd ran during the up")
