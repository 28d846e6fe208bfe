"""Where the time of one `apply.up` goes: report-line stamps plus optional wall-time probes.

Used by `bench/apply.py --phases`. Two sources, so that it keeps working
while apply and the backends are rewritten:

* the `report` callback of `apply.up`: each line is stamped with
  time.monotonic() (its text names the phase that starts: "netlink: ...",
  "ovsdb: ...", "uplink: ...", "uplink: waiting for gateway ..."). This
  needs nothing but the callback and always works.
* probes: wall-time wrappers put around functions found by name
  (PROBES below). A name that no longer exists is skipped and listed as
  missing; the table then falls back to the spans between report lines.

Probes only time: arguments, results and exceptions pass through unchanged.
Times are CLOCK_MONOTONIC (time.monotonic), which is the same clock in every
process, so the parent can line them up with its samples of ovs-vswitchd's
CPU, the ovs-vswitchd log and a capture at the gateway.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable

# (module, attribute path, label). Labels are what the table adds up; the
# names are today's, and any of them may go away in a refactor.
PROBES: tuple[tuple[str, str, str], ...] = (
    ("ovsnet.apply.run", "_read_and_plan", "read+plan"),
    ("ovsnet.apply.run", "_verify", "verify"),
    ("ovsnet.apply.live", "Live.read", "read"),
    ("ovsnet.apply.live", "Live.docker", "docker.connect"),
    ("ovsnet.apply.guard", "check_uplink_move", "uplink.check"),
    ("ovsnet.backends.sessions", "ssh_sessions", "uplink.sessions"),
    ("ovsnet.plan.planner", "desire", "desired"),
    ("ovsnet.plan.planner", "diff", "plan.diff"),
    ("ovsnet.apply.record", "read", "statefile.read"),
    ("ovsnet.apply.record", "write", "statefile.write"),
    ("ovsnet.backends.files", "read_nameservers", "dns.read"),
    ("ovsnet.backends.ovsdb.connection", "Ovsdb._open", "ovsdb.connect"),
    ("ovsnet.backends.ovsdb.connection", "Ovsdb.read", "ovsdb.read"),
    ("ovsnet.backends.ovsdb.connection", "Ovsdb._synced", "ovsdb.sync"),
    ("ovsnet.backends.ovsdb.connection", "Ovsdb.transact", "ovsdb.transact"),
    ("ovsnet.backends.ovsdb.connection", "Ovsdb._commit", "ovsdb.commit"),
    ("ovsnet.backends.ovsdb.connection", "Ovsdb._wait_applied", "cur_cfg"),
    ("ovsnet.backends.ovsdb.connection", "Ovsdb._verify_interfaces", "ovsdb.ifcheck"),
    ("ovsnet.backends.ovsdb.txn", "Txn.build", "ovsdb.build"),
    ("ovsnet.backends.netlink.session", "Netlink.socket", "netlink.open"),
    ("ovsnet.backends.netlink.session", "Netlink.read", "netlink.read"),
    ("ovsnet.backends.netlink.session", "Netlink.apply_groups", "netlink.batch"),
    ("ovsnet.backends.netlink.session", "Netlink.wait_link", "mgmt.wait"),
    ("ovsnet.backends.netlink.session", "Netlink.link", "netlink.link"),
    ("ovsnet.backends.netlink.session", "Netlink.index", "netlink.index"),
    ("ovsnet.backends.netlink.probe", "answers", "arp"),
    ("ovsnet.backends.docker", "Docker.__init__", "docker.connect"),
    ("ovsnet.backends.docker", "Docker.read", "docker.read"),
)

# ovsnet's backend modules, imported before the run so that probes can be put in;
# they import their third-party libraries lazily, inside the run.
LAZY_IMPORTS = ("ovsnet.backends.ovsdb.connection", "ovsnet.backends.ovsdb.txn", "ovsnet.backends.netlink.session",
                "ovsnet.backends.netlink.probe", "ovsnet.backends.files", "ovsnet.backends.docker", "ovsnet.backends.sessions")
# Third-party packages whose first import during the run is timed (pyroute2 alone is ~0.3 s).
TIMED_IMPORTS = ("pyroute2", "ovs", "docker", "requests", "urllib3")


@dataclass
class Span:
    label: str
    start: float
    end: float
    depth: int
    parent: str | None
    cpu: float = 0.0  # this process's CPU seconds (user + system) inside the span


@dataclass
class Recorder:
    """Report lines and probe spans of one run, in CLOCK_MONOTONIC seconds."""

    marks: list[tuple[float, str]] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)
    active: bool = False

    def report(self, line: str) -> None:
        self.marks.append((time.monotonic(), line))

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        rec = self

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not rec.active:
                return fn(*args, **kwargs)
            parent = rec.stack[-1] if rec.stack else None
            rec.stack.append(label)
            t, c = time.monotonic(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                rec.spans.append(Span(label, t, time.monotonic(), len(rec.stack) - 1, parent, time.process_time() - c))
                rec.stack.pop()

        timed.__wrapped_by_phases__ = True  # type: ignore[attr-defined]
        return timed

    def reset(self) -> None:
        self.marks.clear()
        self.spans.clear()
        self.stack.clear()
        self.imports.clear()

    imports: dict[str, float] = field(default_factory=dict)  # package -> seconds of its first import

    def time_imports(self) -> None:
        """Time the first import of each TIMED_IMPORTS package while recording."""
        import builtins
        import sys

        real = builtins.__import__
        rec = self
        busy: list[str] = []  # an outer timed import in progress: the inner ones are part of it

        def timed_import(name, globals=None, locals=None, fromlist=(), level=0):
            top = name.split(".", 1)[0]
            if level or busy or top not in TIMED_IMPORTS or top in sys.modules or not rec.active:
                return real(name, globals, locals, fromlist, level)
            busy.append(top)
            t = time.monotonic()
            try:
                return real(name, globals, locals, fromlist, level)
            finally:
                busy.pop()
                rec.imports[top] = rec.imports.get(top, 0.0) + time.monotonic() - t

        builtins.__import__ = timed_import


def import_backends() -> tuple[float, list[str]]:
    """Import what apply.up would import on first use; (seconds, modules not found)."""
    t = time.monotonic()
    missing = []
    for name in LAZY_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return time.monotonic() - t, missing


def install(rec: Recorder) -> list[str]:
    """Put a timing wrapper around every probe that exists; the ones that do not, by name."""
    missing = []
    for module_name, path, label in PROBES:
        try:
            owner: Any = importlib.import_module(module_name)
        except ImportError:
            missing.append(f"{module_name}.{path}")
            continue
        *outer, attr = path.split(".")
        try:
            for part in outer:
                owner = getattr(owner, part)
            raw = inspect.getattr_static(owner, attr)
        except AttributeError:
            missing.append(f"{module_name}.{path}")
            continue
        if isinstance(raw, property):
            if raw.fget is None or getattr(raw.fget, "__wrapped_by_phases__", False):
                continue
            setattr(owner, attr, property(rec.wrap(label, raw.fget), raw.fset, raw.fdel, raw.__doc__))
        elif inspect.isfunction(raw) and not getattr(raw, "__wrapped_by_phases__", False):
            setattr(owner, attr, rec.wrap(label, raw))
        elif not inspect.isfunction(raw):
            missing.append(f"{module_name}.{path} (not a function)")
    return missing


# --- from stamps to phases ---------------------------------------------------------

# Columns of the phase table, in the order an up runs them.
COLUMNS = ("prep", "netlink", "ovsdb", "cur_cfg", "mgmt", "uplink", "arp", "verify", "other", "total")
EXPLAIN = {
    "imports": "third-party imports during the run (pyroute2, python-ovs, docker SDK), inside the other columns",
    "prep": "lock, first read of the host (OVSDB sync, netlink dumps, Docker, resolv.conf), plan, state file",
    "netlink": "the netlink batch: Linux bridges and veth pairs",
    "ovsdb": "the OVSDB transaction: connect/sync, build, commit (without the cur_cfg wait)",
    "cur_cfg": "waiting for ovs-vswitchd to report cur_cfg >= next_cfg (it opened every port)",
    "mgmt": "waiting for ovs-vswitchd to create the mgmt internal port",
    "uplink": "the uplink move: addresses and routes from the NIC to the internal port",
    "arp": "the gateway ARP probe on the internal port",
    "verify": "reading the host again until nothing is left to do",
    "other": "the rest (DNS, Docker, cleanup phases, lock, bookkeeping)",
    "total": "apply.up from call to return, imports included",
}


def _sum(spans: list[Span], label: str, inside: str | None = None) -> float:
    return sum(s.end - s.start for s in spans if s.label == label and (inside is None or inside in _ancestors(s, spans)))


def _ancestors(span: Span, spans: list[Span]) -> set[str]:
    # Spans nest strictly (one thread): an ancestor starts before and ends after.
    return {s.label for s in spans if s.depth < span.depth and s.start <= span.start and s.end >= span.end}


def phases(rec: Recorder, t0: float, t1: float, imports: float) -> dict[str, float]:
    """Seconds per column; from probes where they exist, from report-line spans otherwise."""
    total = t1 - t0
    out = {c: 0.0 for c in COLUMNS}
    out["total"] = total + imports
    out["prep"] = imports  # importing ovsnet's own backend modules, before t0
    labels = {s.label for s in rec.spans}
    by_marks = _mark_spans(rec.marks, t0, t1)
    if {"read+plan", "verify", "ovsdb.transact"} <= labels:
        verify = _sum(rec.spans, "verify")
        out["prep"] += _sum(rec.spans, "read+plan") - _sum(rec.spans, "read+plan", inside="verify") + _sum(rec.spans, "statefile.write")
        out["netlink"] = _sum(rec.spans, "netlink.batch")
        out["cur_cfg"] = _sum(rec.spans, "cur_cfg", inside="ovsdb.transact")
        out["ovsdb"] = _sum(rec.spans, "ovsdb.transact") - out["cur_cfg"]
        out["mgmt"] = _sum(rec.spans, "mgmt.wait")
        # Top-level only: moves made inside the OVSDB wait are part of that wait.
        out["uplink"] = sum(x.end - x.start for x in rec.spans if x.label == "netlink.ops" and x.depth == 0)
        out["arp"] = _sum(rec.spans, "arp") + sum(x.end - x.start for x in rec.spans if x.label == "arp.wait" and x.depth == 0)
        out["verify"] = verify
    else:
        # Report lines only: the span from a line to the next belongs to the line's phase.
        out["prep"] += by_marks.get("prep", 0.0)
        out["netlink"] = by_marks.get("netlink", 0.0)
        out["ovsdb"] = by_marks.get("ovsdb", 0.0)  # commit + cur_cfg + mgmt wait together
        out["uplink"] = by_marks.get("uplink", 0.0)
        out["arp"] = by_marks.get("arp", 0.0)  # probe + verify together
    out["other"] = out["total"] - sum(out[c] for c in COLUMNS if c not in ("other", "total"))
    out["imports"] = sum(rec.imports.values())
    return out


def _mark_spans(marks: list[tuple[float, str]], t0: float, t1: float) -> dict[str, float]:
    """Seconds from each report line to the next, by the phase the line names."""
    out: dict[str, float] = {}
    points = [(t0, "prep")] + [(t, _phase_of(line)) for t, line in marks] + [(t1, "end")]
    for (a, name), (b, _) in zip(points, points[1:]):
        out[name] = out.get(name, 0.0) + (b - a)
    return out


def _phase_of(line: str) -> str:
    if "waiting for gateway" in line:
        return "arp"
    head = line.split(":", 1)[0].strip()
    return head if head in ("netlink", "ovsdb", "uplink", "dns", "docker") else "other"


def timeline(rec: Recorder, t0: float, max_depth: int = 1, extra: list[tuple[float, float, str]] | None = None) -> list[str]:
    """Report lines and probe spans in time order, offsets from t0; runs of one label merged."""
    rows: list[tuple[float, int, str]] = [(t, 0, f"{t - t0:8.3f}          report  {line}") for t, line in rec.marks]
    rows += [(t, 2, f"{t - t0:8.3f} {d:8.3f} {text}") for t, d, text in extra or ()]
    spans = sorted((s for s in rec.spans if s.depth <= max_depth), key=lambda s: s.start)
    i = 0
    while i < len(spans):
        s, j = spans[i], i + 1
        while j < len(spans) and spans[j].label == s.label and spans[j].depth == s.depth:
            j += 1
        run = spans[i:j]
        busy = sum(x.end - x.start for x in run)
        cpu = sum(x.cpu for x in run)
        times = f" x{len(run)}" if len(run) > 1 else ""
        rows.append((s.start, 1, f"{s.start - t0:8.3f} {busy:8.3f} {'  ' * s.depth}{s.label}{times}  (ovsnet cpu {cpu:.3f})"))
        i = j
    return [text for _, _, text in sorted(rows, key=lambda r: (r[0], r[1]))]


def counts(rec: Recorder) -> dict[str, tuple[int, float]]:
    """Calls and seconds per probe label (nested calls counted where they happen)."""
    out: dict[str, tuple[int, float]] = {}
    for s in rec.spans:
        n, t = out.get(s.label, (0, 0.0))
        out[s.label] = (n + 1, t + s.end - s.start)
    return out
