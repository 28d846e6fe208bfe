"""A lab as a fleet: built with `lab up --ssh --no-apply`, driven by real
ansible-playbook runs from its controller station over real SSH.

Used by tests/integration/test_fleet_*.py and bench/rollout.py. Every run
goes through the CLI (`ovsnet lab ...`, `ovsnet lab exec FILE controller --
ansible-playbook ...`), as a user would type it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

REPO = Path(__file__).resolve().parents[2]
OVSNET = REPO / ".venv" / "bin" / "ovsnet"
PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
ANSIBLE_CFG = REPO / "ansible" / "ansible.cfg"
RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)")
# Links that are the lab's, not the host's: its endpoints' veth ends, the
# out-of-band link, and the userspace datapath's own tap (which stays once made).
LAB_LINKS = re.compile(r"^(oob0|ovs-netdev|[a-z][a-z0-9]{1,7}e\d+)$")


@dataclass(frozen=True)
class Recap:
    ok: int
    changed: int
    unreachable: int
    failed: int
    skipped: int
    rescued: int


@dataclass(frozen=True)
class PlaybookRun:
    argv: tuple[str, ...]
    returncode: int
    output: str
    seconds: float
    recap: dict[str, Recap]
    windows: dict[str, list[tuple[float, float]]]  # host -> ovsnet's own work, epoch seconds (from -v output)

    def changed(self) -> dict[str, int]:
        return {h: r.changed for h, r in self.recap.items()}


@dataclass
class FleetLab:
    topology: Path
    prefix: str
    lab_dir: Path
    local_tmp: Path
    hosts: tuple[str, ...] = ()
    namespaces: dict[str, str] = field(default_factory=dict)
    fresh: dict[str, dict[str, object]] = field(default_factory=dict)  # each host's snapshot before any rollout

    def ovsnet(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(OVSNET), *args], capture_output=True, text=True, timeout=900)
        if check and proc.returncode != 0:
            raise AssertionError(f"ovsnet {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    @property
    def inventory(self) -> Path:
        return self.lab_dir / "inventory.ovsnet.yml"

    def playbook(self, name: str, *extra: str, verbose: bool = True) -> PlaybookRun:
        """ansible-playbook from the controller station, over the lab's SSH."""
        argv = [str(OVSNET), "lab", "exec", str(self.topology), "controller", "--prefix", self.prefix, "--",
                str(PLAYBOOK), "-i", str(self.inventory), f"ovsnet.fleet.{name}", *(["-v"] if verbose else []), *extra]
        env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_CFG), "ANSIBLE_LOCAL_TEMP": str(self.local_tmp),
               "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1"}
        start = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
        seconds = time.monotonic() - start
        out = proc.stdout + proc.stderr
        return PlaybookRun(tuple(argv), proc.returncode, out, seconds, parse_recap(out), parse_windows(out))

    def ns(self, host: str) -> str:
        return self.namespaces[host]

    def pending(self) -> dict[str, int]:
        """Changes `up` would still make on each host (0: in sync)."""
        from ovsnet import api
        from ovsnet.lab.ledger import load_lab
        from ovsnet.lab.names import targets

        checked = api.load(self.topology)
        return {h: len(api.status(checked, h, t).changes) for h, t in targets(load_lab(checked.topology, self.prefix)).items()}

    def snapshot(self, host: str) -> dict[str, object]:
        return snapshot(self.ns(host))

    def resolv_conf(self, host: str) -> Path:
        return Path("/etc/netns") / self.ns(host) / "resolv.conf"


def parse_recap(out: str) -> dict[str, Recap]:
    recap: dict[str, Recap] = {}
    tail = out.rsplit("PLAY RECAP", 1)[-1] if "PLAY RECAP" in out else ""
    for line in tail.splitlines():
        m = RECAP_RE.match(line.strip())
        if m:
            recap[m.group(1)] = Recap(*(int(x) for x in m.groups()[1:]))
    return recap


_RESULT_RE = re.compile(r"^(?:changed|ok): \[([^\]]+)\]")
_WINDOW_RE = re.compile(r"^\s+window:\s*\n\s+- ([\d.]+)\s*\n\s+- ([\d.]+)", re.M)


def parse_windows(out: str) -> dict[str, list[tuple[float, float]]]:
    """Per host, the `window` of every ovsnet_apply result printed by -v (yaml results)."""
    windows: dict[str, list[tuple[float, float]]] = {}
    host = None
    lines = out.splitlines()
    for i, line in enumerate(lines):
        m = _RESULT_RE.match(line)
        if m:
            host = m.group(1)
        if line.strip() == "window:" and host and i + 2 < len(lines):
            try:
                a, b = float(lines[i + 1].strip("- ")), float(lines[i + 2].strip("- "))
            except ValueError:
                continue
            windows.setdefault(host, []).append((a, b))
    return windows


def snapshot(ns: str) -> dict[str, object]:
    """What `down` must put back: every link's MTU and addresses, the routes, the DNS file."""
    links = json.loads(subprocess.run(["ip", "-j", "-n", ns, "addr"], capture_output=True, text=True, check=True).stdout)
    routes = json.loads(subprocess.run(["ip", "-j", "-n", ns, "route", "show", "table", "main"], capture_output=True, text=True, check=True).stdout)
    resolv = Path("/etc/netns") / ns / "resolv.conf"
    return {
        "links": sorted(
            (link["ifname"], link.get("mtu"), tuple(sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                                                          if a.get("scope") == "global")))
            for link in links if link["ifname"] != "lo" and not LAB_LINKS.match(link["ifname"])
        ),
        "routes": sorted(
            (r.get("dst"), r.get("gateway"), r.get("dev"), r.get("protocol"))
            for r in routes if not LAB_LINKS.match(r.get("dev", ""))
        ),
        "resolv.conf": resolv.read_text() if resolv.exists() else None,
    }


@contextmanager
def fleet_lab(topology: Path, prefix: str, tmp: Path, docker: bool = False) -> Iterator[FleetLab]:
    """`ovsnet lab up FILE --ssh --no-apply` (hosts as fresh machines); `lab down` at the end, pass or fail."""
    lab = FleetLab(topology, prefix, Path("/run/ovsnet-lab") / prefix, tmp)
    try:
        up = lab.ovsnet("lab", "up", str(topology), "--prefix", prefix, "--ssh", "--no-apply", "--json",
                        *(["--docker"] if docker else []))
        body = json.loads(up.stdout)
        lab.lab_dir = Path(body["inventory"]).parent
        from ovsnet import api
        from ovsnet.lab.names import LabNames

        names = LabNames.for_topology(api.load(topology).topology, prefix)
        lab.hosts = names.hosts
        lab.namespaces = {h: names.host_ns(h) for h in names.hosts}
        yield lab
    finally:
        subprocess.run([str(OVSNET), "lab", "down", str(topology), "--prefix", prefix], capture_output=True, timeout=300)


# --- a peer pinging every 50 ms -------------------------------------------------------


@dataclass
class Pinger:
    """`ping -D -O -i 0.05` from one namespace; every request's send time and whether it was answered."""

    ns: str
    address: str
    log: Path
    proc: subprocess.Popen | None = None

    def __enter__(self) -> Pinger:
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "ping", "-D", "-O", "-n", "-i", "0.05", self.address],
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        time.sleep(1.0)  # the last requests' replies
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def requests(self) -> dict[int, tuple[float, bool]]:
        """icmp_seq -> (sent at, answered)."""
        out: dict[int, tuple[float, bool]] = {}
        for line in self.log.read_text().splitlines():
            m = re.match(r"\[(\d+\.\d+)\] (.*)", line)
            s = re.search(r"icmp_seq=(\d+)", line)
            if not m or not s:
                continue
            seq, at, rest = int(s.group(1)), float(m.group(1)), m.group(2)
            if "bytes from" in rest:
                rtt = re.search(r"time=([\d.]+)", rest)
                out[seq] = (at - (float(rtt.group(1)) / 1000 if rtt else 0.0), True)
            elif seq not in out:
                out[seq] = (at, False)  # "no answer yet": printed when the next request goes out
        return out

    def lost_between(self, windows: Sequence[tuple[float, float]], before: float = 0.5, after: float = 2.0) -> tuple[int, int]:
        """(sent, lost) among the requests sent while ovsnet worked, with margins."""
        reqs = self.requests()
        inside = [ok for at, ok in reqs.values() if any(a - before <= at <= b + after for a, b in windows)]
        return len(inside), sum(1 for ok in inside if not ok)

    def totals(self) -> tuple[int, int]:
        reqs = self.requests()
        return len(reqs), sum(1 for _, ok in reqs.values() if not ok)
