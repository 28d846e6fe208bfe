"""Soak (short): cycles of up/down on a lab host leak nothing.

After every cycle: the same namespaces, the same links (by name) in the host
and gateway namespaces, the same number of OVSDB rows, the same number of open
file descriptors and threads in this process (apply runs in-process), no child
process left behind, and the same number of file descriptors held by
ovsdb-server (every OVSDB connection ovsnet opened was closed). Apply spawns
no subprocess at all: every `subprocess.Popen` is recorded and must be none.
5 cycles here (12 with OVSNET_LONG=1); bench/soak.py runs 50 and more.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import subprocess

import pytest
from hardening_kit import (
    LONG,
    assert_same,
    daemon_pid,
    host_snapshot,
    ns_json,
    ovs_rows_of,
)

from ovsnet import apply
from ovsnet.lab import netns
from tests.support import leaks

pytestmark = pytest.mark.root

CYCLES = 12 if LONG else 5


def _measure(h, run_prefix: str) -> dict:
    ovsdb_pid = daemon_pid(h.ovs, "ovsdb-server")
    return {
        "namespaces": netns.listed(run_prefix),
        "host links": sorted(l["ifname"] for l in ns_json(h.ns, "link")),
        "gateway links": sorted(l["ifname"] for l in ns_json(h.gw, "link")),
        "ovsdb rows": ovs_rows_of(h),
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": len(os.listdir("/proc/self/task")),
        "children": len(leaks.children()),
        "ovsdb-server fds": len(os.listdir(f"/proc/{ovsdb_pid}/fd")),
    }


def test_soak_up_down_cycles_leak_nothing(host, run_prefix, monkeypatch):
    h = host
    checked = h.checked()
    target = dataclasses.replace(h.target, gateway_timeout=30.0)
    spawned: list = []
    real_popen_init = subprocess.Popen.__init__

    def spy(self, args, *a, **kw):
        spawned.append(args)
        return real_popen_init(self, args, *a, **kw)

    before = host_snapshot(h)
    # Cycle 0 warms up lazy imports and caches; its measurements are the baseline.
    apply.up(checked, "node1", target)
    apply.down(checked, "node1", target)
    base = _measure(h, run_prefix)
    rss = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss]
    monkeypatch.setattr(subprocess.Popen, "__init__", spy)
    for cycle in range(1, CYCLES + 1):
        up = apply.up(checked, "node1", target)
        assert up.applied, cycle
        assert apply.up(checked, "node1", target).applied == (), cycle  # re-apply is a no-op
        apply.down(checked, "node1", target)
        monkeypatch.setattr(subprocess.Popen, "__init__", real_popen_init)
        now = _measure(h, run_prefix)
        monkeypatch.setattr(subprocess.Popen, "__init__", spy)
        assert now == base, f"cycle {cycle}: {now} != {base}"
        rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    monkeypatch.setattr(subprocess.Popen, "__init__", real_popen_init)
    assert spawned == [], spawned
    assert_same(before, host_snapshot(h), f"after {CYCLES} cycles")
    print(f"\nsoak: {CYCLES} cycles, nothing leaked; {base}; peak RSS KiB per cycle {rss}")
