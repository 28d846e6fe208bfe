"""What the rest of the machine did while an `up` ran: CPU of the OVS daemons, their logs, ARP on the wire.

Used by `bench/apply.py --phases`. Everything here only reads (/proc, log
files) or listens (tcpdump started by us, in the lab's own namespace, stopped
by its pid). Times are converted to CLOCK_MONOTONIC so that they line up with
the phase stamps of ovsnet's run (bench/phases.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def wall_to_mono() -> float:
    """Add this to a time.time() value to get time.monotonic()."""
    return time.monotonic() - time.time()


def settle(fast: float = 0.1, limit: float = 300.0) -> float:
    """Wait until no namespace is being torn down and the rtnl lock is free again
    (at most `limit` s); the seconds waited.

    The kernel tears a deleted namespace's thousands of links down in the
    background, in a kworker that names itself "...-netns" and holds the rtnl
    lock: the next run should not pay for the previous one's (creating links
    then takes seconds, and creating a namespace can time out). The probe
    creates a veth pair in an unnamed namespace that goes with its process.
    """
    start = time.monotonic()
    good = 0
    while time.monotonic() - start < limit:
        t = time.monotonic()
        subprocess.run(["unshare", "--net", "ip", "link", "add", "name", "obxa", "type", "veth", "peer", "name", "obxb"], check=True)
        quick = time.monotonic() - t < fast and not _netns_teardown()
        good = good + 1 if quick else 0
        if good >= 3:
            break
        time.sleep(0.5)
    return time.monotonic() - start


def _netns_teardown() -> bool:
    """Is a kworker running the kernel's namespace cleanup right now?"""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        comm, state = raw[raw.index("(") + 1: raw.rindex(")")], raw[raw.rindex(")") + 2]
        # An idle kworker keeps the name of its last queue; only a busy one counts.
        # ("kworker/R-netns" is the queue's rescuer, always there.)
        if comm.startswith("kworker/") and comm.endswith("-netns") and "/R-" not in comm and state in "RD":
            return True
    return False


def _cpu_line() -> tuple[int, int]:
    """(all ticks, stolen ticks) of the machine so far."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(f[:8]), f[7]


def _task_ticks(pid: int) -> dict[str, int]:
    """CPU ticks of each thread of pid, by thread kind (comm without its digits)."""
    out: dict[str, int] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        comm = raw[raw.index("(") + 1: raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        kind = "main" if int(tid) == pid else re.sub(r"[\d:/-].*$", "", comm) or comm
        out[kind] = out.get(kind, 0) + int(fields[11]) + int(fields[12])
    return out


@dataclass
class Sample:
    t: float
    ticks: dict[str, dict[str, int]]  # daemon -> thread kind -> ticks
    machine: tuple[int, int]


@dataclass
class CpuSampler:
    """Samples the daemons' CPU (per thread kind) and the machine's steal every `interval` s."""

    pids: dict[str, int]
    interval: float = 0.05
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> CpuSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(Sample(time.monotonic(), {d: _task_ticks(p) for d, p in self.pids.items()}, _cpu_line()))
            self._stop.wait(self.interval)

    def _at(self, t: float) -> Sample | None:
        before = [s for s in self.samples if s.t <= t]
        return before[-1] if before else (self.samples[0] if self.samples else None)

    def between(self, a: float, b: float) -> dict[str, float]:
        """CPU seconds per daemon (and per main thread) from a to b, and the machine's steal share."""
        sa, sb = self._at(a), self._at(b)
        out: dict[str, float] = {}
        if sa is None or sb is None or sb.t <= sa.t:
            return out
        for d in self.pids:
            ta, tb = sa.ticks.get(d, {}), sb.ticks.get(d, {})
            out[d] = sum(tb.values()) / TICK - sum(ta.values()) / TICK
            out[f"{d}.main"] = (tb.get("main", 0) - ta.get("main", 0)) / TICK
        total = sb.machine[0] - sa.machine[0]
        out["steal"] = (sb.machine[1] - sa.machine[1]) / total if total else 0.0
        return out


def pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


# --- ovs-vswitchd's log --------------------------------------------------------------

_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z\|\d+\|([\w-]+)\|(\w+)\|(.*)$")
_ADDED = re.compile(r"bridge \S+: added interface (\S+) on port (\d+)")
_LONG = re.compile(r"Unreasonably long (\d+)ms poll interval \((\d+)ms user, (\d+)ms system\)")


@dataclass
class LogFacts:
    added: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, interface)
    long_polls: list[tuple[float, int, int, int]] = field(default_factory=list)  # (t, ms, user, sys)
    warnings: list[str] = field(default_factory=list)


def read_log(path: Path, offset: int, to_mono: float) -> LogFacts:
    """Facts from the log after byte `offset`; times as CLOCK_MONOTONIC."""
    facts = LogFacts()
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return facts
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        stamp, module, level, msg = m.groups()
        t = datetime.fromisoformat(stamp + "+00:00").timestamp() + to_mono
        if (a := _ADDED.search(msg)):
            facts.added.append((t, a.group(1)))
        elif (lp := _LONG.search(msg)):
            facts.long_polls.append((t, int(lp.group(1)), int(lp.group(2)), int(lp.group(3))))
        elif level in ("WARN", "ERR", "EMER") and len(facts.warnings) < 8:
            facts.warnings.append(f"{module}|{level}|{msg[:160]}")
    return facts


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# --- ARP on the wire ---------------------------------------------------------------


class ArpCapture:
    """tcpdump -i any for ARP inside the host's namespace: the request leaving the internal
    port, crossing OVS to the NIC, the reply coming back, each with its time."""

    def __init__(self, netns: str, out: Path):
        self.netns, self.out = netns, out
        self.proc: subprocess.Popen | None = None

    def start(self) -> ArpCapture:
        self._f = open(self.out, "w")
        self._err = open(self.out.with_suffix(".err"), "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "tcpdump", "-i", "any", "-n", "-tt", "-l", "-U", "arp"],
            stdout=self._f, stderr=self._err)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "listening" not in self.out.with_suffix(".err").read_text():
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # only the tcpdump this object started
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._f.close()
        self._err.close()

    def events(self, to_mono: float) -> list[tuple[float, str]]:
        """(monotonic time, "mgmt0 Out Request who-has ...") per captured packet."""
        out = []
        for line in self.out.read_text().splitlines():
            parts = line.split(None, 1)
            try:
                t = float(parts[0])
            except (ValueError, IndexError):
                continue
            text = re.sub(r"\s*,?\s*length \d+", "", parts[1]).replace("ARP, ", "")
            out.append((t + to_mono, text))
        return out


# --- ovs-vswitchd's main loop, from the outside ---------------------------------------


class ReconfigureWatch:
    """Asks ovs-vswitchd for its bridge_reconfigure counter every `interval` s over its
    control socket (unixctl JSON-RPC, as ovs-appctl does, without a process per ask).

    ovs-vswitchd answers from its main loop, between two iterations: a late
    answer means the main loop was busy (a bridge_reconfigure over every port,
    say), and while it is busy the userspace datapath polls no port, so no
    packet crosses the bridge. Each record: (asked, answered, counter).
    """

    def __init__(self, ctl: Path, interval: float = 0.05):
        self.ctl, self.interval = ctl, interval
        self.records: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ReconfigureWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=120)

    def _run(self) -> None:
        import json
        import socket

        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(self.ctl))
        except OSError:
            return
        dec = json.JSONDecoder()
        buf, n = "", 0
        with sock:
            while not self._stop.is_set():
                asked = time.monotonic()
                sock.sendall(json.dumps({"method": "coverage/read-counter", "params": ["bridge_reconfigure"], "id": n}).encode())
                n += 1
                reply = None
                while reply is None:
                    try:
                        reply, end = dec.raw_decode(buf)
                        buf = buf[end:].lstrip()
                    except ValueError:
                        data = sock.recv(65536)
                        if not data:
                            return
                        buf += data.decode()
                try:
                    value = int(str(reply.get("result", "")).strip())
                except ValueError:
                    return
                self.records.append((asked, time.monotonic(), value))
                self._stop.wait(self.interval)

    def summary(self, t0: float, t1: float, slow: float = 0.25) -> tuple[int, list[tuple[float, float, int]]]:
        """(reconfigures between t0 and t1, [(asked - t0, seconds to answer, counter)] for slow answers)."""
        inside = [r for r in self.records if t0 <= r[1] <= t1]
        before = [r for r in self.records if r[1] < t0]
        start = before[-1][2] if before else (inside[0][2] if inside else 0)
        count = (inside[-1][2] - start) if inside else 0
        return count, [(a - t0, b - a, v) for a, b, v in inside if b - a >= slow]
