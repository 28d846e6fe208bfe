"""The rollout playbook on a 10-host lab over real SSH: total time, Ansible's
own overhead vs ovsnet's apply, with serial 1, 5 and 10.

One lab (`ovsnet lab up FILE --ssh --no-apply`, ten hosts with the seed's
layout on one switch, generated here); then, for each serial, the real
`ansible-playbook ovsnet.fleet.rollout -e ovsnet_serial=N` from the lab's
controller, followed by `ovsnet.fleet.teardown` so that the next run starts
from fresh hosts again. The first run also installs ovsnet on every host
(wheel, venv): that install is reported on its own.

Figures per run:
  total      the playbook's wall time
  install    the install play (validate, wheel, copy, venv, pip)
  rollout    the batched play (plan, apply, wait_for_connection, verify)
  ovsnet     ovsnet's own apply time (each apply result's `window`): the sum
             over hosts, and the critical path (per batch the slowest host)
  overhead   rollout minus the critical path: what Ansible itself costs
             (SSH, module transfer and start, async polling, the plan and
             verify tasks)
  ping       a peer (the controller) pinging host h01 every 50 ms: requests
             sent and lost while h01's address moved, and over the whole run
  load       the machine's 1-minute load average before and after

Usage (root): .venv/bin/python bench/rollout.py [--hosts 10] [--serials 1,5,10] [--stem obr]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ovsnet.lab import netns  # noqa: E402
from tests.support.fleet import ANSIBLE_CFG, OVSNET, PLAYBOOK, FleetLab, Pinger, fleet_lab, parse_recap, parse_windows  # noqa: E402

PLAY_RE = re.compile(r"^PLAY \[(.*)\]")


def topology(hosts: int) -> str:
    out = [
        'name = "bench-fleet"',
        '[vlans.mgmt]\nid = 10\nsubnet = "192.168.10.0/24"\nrouter = "192.168.10.1"',
        '[vlans.web]\nid = 100\nsubnet = "10.100.0.0/24"\nrouter = "10.100.0.1"\nhost_slice = 28',
        '[vlans.db]\nid = 200\nsubnet = "10.200.0.0/24"\nhost_slice = 28',
        '[router]\nvlans = ["mgmt", "web"]',
    ]
    for i in range(1, hosts + 1):
        h = f"h{i:02d}"
        out += [
            f'[hosts.{h}]',
            f'[[hosts.{h}.uplinks]]\nnic = "eth1"\nvlans = ["mgmt", "web", "db"]\nnative_vlan = "mgmt"',
            f'[hosts.{h}.management]\naddresses = ["192.168.10.{10 + i}/24"]\ngateway = "192.168.10.1"\ndns = ["192.168.10.1"]',
            f'[[hosts.{h}.docker]]\nbridge = "br-web"\nvlan = "web"\nnetwork = "web"',
            f'[[hosts.{h}.docker]]\nbridge = "br-db"\nvlan = "db"\nnetwork = "db"',
        ]
    out.append('[lab]\nswitch = "switch"')
    out += [f'[[lab.cables]]\nends = ["h{i:02d}:eth1", "switch"]' for i in range(1, hosts + 1)]
    return "\n\n".join(out) + "\n"


def timed_playbook(lab: FleetLab, name: str, *extra: str) -> dict:
    """Run a playbook from the controller, with the time each line arrived (to time the plays)."""
    argv = [str(OVSNET), "lab", "exec", str(lab.topology), "controller", "--prefix", lab.prefix, "--",
            str(PLAYBOOK), "-i", str(lab.inventory), f"ovsnet.fleet.{name}", "-v", *extra]
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_CFG), "ANSIBLE_LOCAL_TEMP": str(lab.local_tmp),
           "ANSIBLE_NOCOLOR": "1", "PYTHONUNBUFFERED": "1"}
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    lines, plays = [], []
    for line in proc.stdout:
        lines.append(line)
        m = PLAY_RE.match(line)
        if m:
            plays.append((m.group(1), time.monotonic() - start))
    proc.wait()
    total = time.monotonic() - start
    out = "".join(lines)
    if proc.returncode != 0:
        raise SystemExit(f"{name} {' '.join(extra)} failed ({proc.returncode}):\n{out[-5000:]}")
    # A play with `serial` is announced again for every batch: its time is the sum.
    spans: dict[str, float] = {}
    for i, (play, at) in enumerate(plays):
        end = plays[i + 1][1] if i + 1 < len(plays) else total
        spans[play] = spans.get(play, 0.0) + end - at
    return {"total": total, "plays": spans, "recap": parse_recap(out), "windows": parse_windows(out),
            "load": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def apply_windows(windows: dict[str, list[tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    """Each host's apply window: the longest of its ovsnet_apply results (the other is the check-mode plan)."""
    return {h: max(ws, key=lambda w: w[1] - w[0]) for h, ws in windows.items() if ws}


def critical_path(hosts: list[str], serial: int, windows: dict[str, tuple[float, float]]) -> float:
    total = 0.0
    for i in range(0, len(hosts), serial):
        batch = [windows[h][1] - windows[h][0] for h in hosts[i:i + serial] if h in windows]
        total += max(batch, default=0.0)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--serials", default="1,5,10")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--stem", default="obr", help="first letters of the lab's prefix (a per-run suffix follows)")
    args = ap.parse_args()
    serials = [int(s) for s in args.serials.split(",")]
    with tempfile.TemporaryDirectory(prefix="ovsnet-bench-rollout-") as tmp:
        topo = Path(tmp) / "fleet.toml"
        topo.write_text(topology(args.hosts))
        hosts = [f"h{i:02d}" for i in range(1, args.hosts + 1)]
        results = []
        build_start = time.monotonic()
        with fleet_lab(topo, netns.unique_prefix(args.stem), Path(tmp)) as lab:
            build = time.monotonic() - build_start
            print(f"lab of {args.hosts} hosts with sshd and a controller: {build:.1f} s (load {os.getloadavg()[0]:.2f})", flush=True)
            controller = f"{lab.prefix}-c"
            for serial in serials:
                with Pinger(controller, "192.168.10.11", Path(tmp) / f"ping-{serial}.log") as pinger:
                    run = timed_playbook(lab, "rollout", "-e", f"ovsnet_serial={serial}")
                applied = apply_windows(run["windows"])
                sent, lost = pinger.lost_between([applied["h01"]]) if "h01" in applied else (0, 0)
                all_sent, all_lost = pinger.totals()
                plays = run["plays"]
                install = next((v for k, v in plays.items() if k.startswith("Install")), 0.0)
                rollout = next((v for k, v in plays.items() if k.startswith("Roll out")), 0.0)
                crit = critical_path(hosts, serial, applied)
                row = {
                    "serial": serial, "total_s": round(run["total"], 1), "install_s": round(install, 1),
                    "rollout_s": round(rollout, 1), "ovsnet_sum_s": round(sum(b - a for a, b in applied.values()), 1),
                    "ovsnet_critical_s": round(crit, 1), "ansible_overhead_s": round(rollout - crit, 1),
                    "changed_hosts": sum(1 for r in run["recap"].values() if r.changed), "load": run["load"],
                    "ping_h01_move": {"sent": sent, "lost": lost}, "ping_whole_run": {"sent": all_sent, "lost": all_lost},
                }
                down = timed_playbook(lab, "teardown")
                row["teardown_s"] = round(down["total"], 1)
                row["teardown_load"] = down["load"]
                results.append(row)
                print(json.dumps(row), flush=True)
        if args.json:
            print(json.dumps(results, indent=2))
        print("\nserial  total  install  rollout  ovsnet(sum/critical)  ansible overhead  teardown  ping lost (h01 move / run)  load")
        for r in results:
            print(f"{r['serial']:>6}  {r['total_s']:>5}  {r['install_s']:>7}  {r['rollout_s']:>7}  "
                  f"{r['ovsnet_sum_s']:>8}/{r['ovsnet_critical_s']:<11}  {r['ansible_overhead_s']:>16}  {r['teardown_s']:>8}  "
                  f"{r['ping_h01_move']['lost']}/{r['ping_h01_move']['sent']} / {r['ping_whole_run']['lost']}/{r['ping_whole_run']['sent']}"
                  f"  {r['load'][0]}->{r['load'][1]}")


if __name__ == "__main__":
    main()
