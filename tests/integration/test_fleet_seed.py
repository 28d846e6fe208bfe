"""The seed's own topology (topologies/seed.toml, two hosts) rolled out by the real playbook over real SSH.

test_fleet_rollout.py covers the larger fleet (fleet.toml: node1-3 in the
seed's layout and node4 with a tagged management VLAN), with the failing
host, the pinging peer and the lost state file. This module is the seed file
itself, end to end, as a user of the seed would first try it: hosts that
start as fresh machines; check mode reports every host changed with a diff
and changes nothing; the rollout converges and `verify --lab` passes; the
same rollout again changes nothing; teardown restores every host exactly.

Beyond CI's time budget (a second fleet lab, about five minutes): runs with
OVSNET_LAB_TESTS=all.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from ovsnet.lab import netns
from tests.support.fleet import REPO, fleet_lab

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.environ.get("OVSNET_LAB_TESTS") != "all", reason="beyond CI's time budget: runs with OVSNET_LAB_TESTS=all")]
SEED = REPO / "topologies" / "seed.toml"
HOSTS = ("node1", "node2")


def test_the_seed_topology_rolls_out_over_ssh_and_tears_down(tmp_path):
    with fleet_lab(SEED, netns.unique_prefix("ovt"), tmp_path) as lab:
        assert lab.hosts == HOSTS
        fresh = {h: lab.snapshot(h) for h in HOSTS}

        run = lab.playbook("rollout", "--check", "--diff")
        assert run.returncode == 0, run.output[-4000:]
        assert "+port:br-ovs/eth1: trunk 10,100,200, native 10 untagged  # create" in run.output
        assert "-address:eth1/192.168.10.11/24: 192.168.10.11/24" in run.output
        changed = {line.split("[")[1].split("]")[0] for line in run.output.splitlines() if line.startswith("changed: [node")}
        assert changed == set(HOSTS)
        assert {h: lab.snapshot(h) for h in HOSTS} == fresh
        assert all(n > 0 for n in lab.pending().values())
        print(f"\nseed fleet: check {run.seconds:.0f} s", end="")

        run = lab.playbook("rollout", "-e", "ovsnet_serial=2")
        assert run.returncode == 0, run.output[-6000:]
        assert all(r.failed == 0 and r.unreachable == 0 and r.changed > 0 for r in run.recap.values()), run.recap
        assert lab.pending() == {h: 0 for h in HOSTS}
        lab.ovsnet("lab", "attach", str(SEED), "--prefix", lab.prefix)
        verify = lab.ovsnet("verify", str(SEED), "--lab", "--prefix", lab.prefix, check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        print(f", rollout {run.seconds:.0f} s", end="")

        run = lab.playbook("rollout", "-e", "ovsnet_serial=2")
        assert run.returncode == 0, run.output[-4000:]
        assert run.changed() == {h: 0 for h in HOSTS}, run.output[-4000:]
        print(f", again {run.seconds:.0f} s", end="")

        run = lab.playbook("teardown")
        assert run.returncode == 0, run.output[-4000:]
        assert run.changed() == {h: 1 for h in HOSTS}
        for h in HOSTS:
            assert lab.snapshot(h) == fresh[h], h
        assert "br-ovs" not in subprocess.run(["ip", "-n", lab.ns("node1"), "-o", "link"], capture_output=True, text=True).stdout
        print(f", teardown {run.seconds:.0f} s")
