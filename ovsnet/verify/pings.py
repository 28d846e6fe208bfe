"""Pings, many at once, paced so the machine's neighbour table never overflows.

Every ping is `ping` run in a named lab namespace (`ip netns exec NS`), in a
namespace given by path (a probe container's, `nsenter --net=/proc/PID/ns/net`),
or here; a bounded thread pool runs them. Pairs that should reach but did not
are pinged again, longer, before they count as mismatches: a reply is
conclusive, a silence under load is not.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence, TypeVar

from ovsnet.topology.graph import Expect
from ovsnet.verify.matrix import REACHABLE

PING = ("ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1")
PING_AGAIN = ("ping", "-n", "-q", "-c", "3", "-i", "0.3", "-W", "2")
DEFAULT_CONCURRENCY = 32
RETRIES = 2  # extra rounds for pairs that should reach and did not
_RECEIVED = re.compile(r"(\d+) (?:packets )?received")


def ping_argv(namespace: str | None, address: str, again: bool = False) -> list[str]:
    """ping in a named lab namespace, in a namespace given by path (a probe container's
    /proc/PID/ns/net, which has no name for `ip netns exec`), or here (None)."""
    # -6 said outright for an IPv6 address (iputils would guess it; an old or busybox ping would not).
    ping = [*(PING_AGAIN if again else PING), *(["-6"] if ":" in address else []), address]
    if not namespace:
        return ping
    if namespace.startswith("/"):
        return ["nsenter", f"--net={namespace}", "--", *ping]
    return ["ip", "netns", "exec", namespace, *ping]


def replied(stdout: str) -> bool:
    """Whether ping's summary counts any reply (ICMP errors such as "net unreachable" are not)."""
    m = _RECEIVED.search(stdout)
    return bool(m and int(m.group(1)) > 0)


def _ping(argv: list[str]) -> bool:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False
    return replied(proc.stdout)


# --- the kernel's neighbour table ----------------------------------------------------------
#
# The ARP table is ONE table for the whole machine, all network namespaces
# included (net.ipv4.neigh.default.gc_thresh1/2/3: 128/512/1024 by default).
# Every same-subnet ping creates an entry in its source and one in its target;
# the kernel's forced garbage collection only frees entries older than 5 s, and
# once more than gc_thresh3 are younger than that, neighbour creation fails
# everywhere on the machine ("sendmsg: No buffer space available", ARP never
# sent): a 200-endpoint lab pinging at full speed overflowed it. So pings are
# paced by what they cost in entries (a token bucket refilled at what forced GC
# can recycle, (gc_thresh3 - gc_thresh2) / 5 s, and credited with what flushing
# a finished source frees); while the table holds more than gc_thresh2 + 60 % of
# that span, no ping starts and the targets' namespaces are flushed (their
# entries are kept fresh by the pings, so GC cannot take them). The lab's
# namespaces are flushed before and after, giving the budget back.

NEIGH_SYSCTL = Path("/proc/sys/net/ipv4/neigh/default")
ARP_STATS = Path("/proc/net/stat/arp_cache")
NEIGH_GC_AGE = 5.0  # seconds: younger entries survive forced GC
NEIGH_SHARE = 0.6  # of the span above gc_thresh2 verify may fill, leaving room for the machine and other labs
PING_COST = {Expect.SAME_VLAN: 2.0, Expect.ROUTED: 1.0, Expect.BLOCKED: 0.25}  # new entries per ping


def _sysctl_int(name: str, default: int) -> int:
    try:
        return int((NEIGH_SYSCTL / name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def neigh_budget() -> tuple[float, float, int]:
    """(entries per second, burst, ceiling) for pings that must not overflow the table."""
    thresh2, thresh3 = _sysctl_int("gc_thresh2", 512), _sysctl_int("gc_thresh3", 1024)
    span = max(64, thresh3 - thresh2)
    return span / NEIGH_GC_AGE, span * NEIGH_SHARE / 2, int(thresh2 + span * NEIGH_SHARE)


def _arp_stat(name: str) -> int | None:
    try:
        head, values = ARP_STATS.read_text().splitlines()[:2]
        stats = dict(zip(head.split(), (int(v, 16) for v in values.split())))
    except (OSError, ValueError):
        return None
    return stats.get(name)


def arp_table_fulls() -> int | None:
    """The kernel's count of failed neighbour allocations (table full), machine-wide."""
    return _arp_stat("table_fulls")


def arp_entries() -> int | None:
    """Entries in the machine's ARP table, all namespaces together."""
    return _arp_stat("entries")


class Pacer:
    """A token bucket: take(n) waits until n tokens (neighbour entries) are available,
    and, with a ceiling, while the machine's ARP table holds more entries than that
    (at most MAX_CEILING_WAIT seconds: the kernel frees old entries only when new ones come)."""

    MAX_CEILING_WAIT = 2.0

    def __init__(self, rate: float, burst: float, ceiling: int | None = None,
                 relieve: Callable[[], None] | None = None):
        self.rate, self.burst, self.ceiling, self.relieve = rate, burst, ceiling, relieve
        self.relieved = 0  # times the ceiling made it flush
        self.tokens = burst
        self.last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: float) -> None:
        with self._lock:  # one waiter at a time: starts stay in order
            if self.ceiling is not None:
                deadline = time.monotonic() + self.MAX_CEILING_WAIT
                if (arp_entries() or 0) >= self.ceiling and self.relieve is not None:
                    self.relieve()  # entries kept fresh by ongoing pings: forget them
                    self.relieved += 1
                while (arp_entries() or 0) >= self.ceiling and time.monotonic() < deadline:
                    time.sleep(0.05)
            while True:
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
                self.last = now
                if self.tokens >= min(n, self.burst):
                    self.tokens -= n
                    return
                time.sleep((min(n, self.burst) - self.tokens) / self.rate)

    def give(self, n: float) -> None:
        """Entries known to be freed (a namespace flushed) come back at once."""
        with self._lock:
            self.tokens = min(self.burst, self.tokens + n)


_DELETED = re.compile(r"deleting (\d+) entries")


def flush_neighbour(namespace: str) -> int:
    """Forget one lab namespace's ARP entries; how many there were."""
    if namespace.startswith("/"):
        return 0  # a probe container's: its few entries go with it
    try:
        proc = subprocess.run(["ip", "-s", "-n", namespace, "neigh", "flush", "all"],
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return 0
    return sum(int(n) for n in _DELETED.findall(proc.stdout))


def flush_neighbours(namespaces: Sequence[str], concurrency: int = DEFAULT_CONCURRENCY) -> None:
    """Forget the lab namespaces' ARP entries (only theirs), so the machine's table has room."""

    def flush(ns: str) -> None:
        flush_neighbour(ns)

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(namespaces) or 1))) as pool:
        list(pool.map(flush, namespaces))


# --- running them ----------------------------------------------------------------------


def run_pings(
    jobs: Mapping[Any, tuple[str | None, str]],
    concurrency: int = DEFAULT_CONCURRENCY,
    again: bool = False,
    pacer: Pacer | None = None,
    cost: Mapping[Hashable, float] | None = None,
) -> dict[Hashable, bool]:
    """Ping all at once, `concurrency` at a time: key -> (namespace or None, address) -> replied.

    With a pacer, each ping first takes its cost (default 2) in neighbour entries.
    """
    if not jobs:
        return {}
    keys = list(jobs)
    # With a pacer, a source namespace is flushed once its last ping is done, and the
    # entries that frees go back to the pacer.
    left: dict[str | None, int] = {}
    for k in keys:
        left[jobs[k][0]] = left.get(jobs[k][0], 0) + 1
    lock = threading.Lock()

    def one(k: Hashable) -> bool:
        ns = jobs[k][0]
        if pacer is not None:
            pacer.take((cost or {}).get(k, 2.0))
        try:
            return _ping(ping_argv(ns, jobs[k][1], again))
        finally:
            with lock:
                left[ns] -= 1
                done = left[ns] == 0
            if done and pacer is not None and ns is not None:
                pacer.give(flush_neighbour(ns))

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(keys)))) as pool:
        return dict(zip(keys, pool.map(one, keys)))


Station = TypeVar("Station", bound=Hashable)  # a station's key: its name, or (name, IP family)


def ping_pairs(
    pairs: Sequence[tuple[Station, Station]],
    where: Mapping[Station, str | None],
    address: Mapping[Station, str],
    expected: Mapping[tuple[Station, Station], Expect],
    concurrency: int = DEFAULT_CONCURRENCY,
    retries: int = RETRIES,
    pacer: Pacer | None = None,
    between: Callable[[], None] = lambda: None,
) -> tuple[dict[tuple[Station, Station], bool], list[int]]:
    """Every pair once; then up to `retries` more rounds, longer and fewer at a time, of the
    pairs that should reach and did not. A reply is conclusive, a silence under load is not
    (an ARP request lost on a busy machine costs the whole first ping). `between` runs
    before each extra round.

    Returns what was seen, and how many pairs each extra round pinged again.
    """
    cost = {p: PING_COST[expected[p]] for p in pairs}
    seen: dict[tuple[Station, Station], bool] = run_pings(  # type: ignore[assignment]
        {p: (where[p[0]], address[p[1]]) for p in pairs}, concurrency, pacer=pacer, cost=cost)  # type: ignore[arg-type]
    rounds = []
    for n in range(retries):
        again = [p for p in pairs if not seen[p] and expected[p] in REACHABLE]
        if not again:
            break
        rounds.append(len(again))
        between()
        slower = max(4, concurrency // (2 * (n + 1)))
        seen.update(run_pings({p: (where[p[0]], address[p[1]]) for p in again}, slower, again=True,  # type: ignore[arg-type]
                              pacer=pacer, cost=cost))  # type: ignore[arg-type]
    return seen, rounds
