"""The seed as a fleet: real ansible-playbook runs from the lab's controller,
over real SSH into an sshd inside each simulated host, configuring hosts
that start as fresh machines (`ovsnet lab up --ssh --no-apply`).

One lab for the whole module; the tests run in file order and each builds on
the one before (check mode, rollout, the same rollout again, teardown), as a
user's first day with the collection would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ovsnet import api
from ovsnet.lab import netns
from ovsnet.lab.ledger import load_lab
from ovsnet.lab.names import targets
from tests.support.fleet import REPO, FleetLab, Pinger, fleet_lab

pytestmark = pytest.mark.root
SEED = REPO / "topologies" / "seed.toml"
RESULTS: dict[str, object] = {}  # figures for the report, written at the end of the module


@pytest.fixture(scope="module")
def seed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet-seed")
    with fleet_lab(SEED, netns.unique_prefix("ovt"), tmp) as lab:
        lab.fresh = {h: lab.snapshot(h) for h in lab.hosts}
        yield lab
    out = Path(tmp) / "figures.json"
    out.write_text(json.dumps(RESULTS, indent=2))
    print(f"\nfleet seed figures: {json.dumps(RESULTS)}")


def _in_sync(lab: FleetLab) -> dict[str, bool]:
    checked = api.load(SEED)
    lab_obj = load_lab(checked.topology, lab.prefix)
    return {h: api.status(checked, h, t).empty for h, t in targets(lab_obj).items()}


def test_check_mode_changes_nothing_and_reports_every_fresh_host(seed):
    run = seed.playbook("rollout", "--check", "--diff")
    assert run.returncode == 0, run.output[-4000:]
    # Every fresh host's plan task reports changed, with the plan as a diff a person reads.
    assert "+port:br-ovs/eth1: trunk 10,100,200, native 10 untagged  # create" in run.output
    assert "-address:eth1/192.168.10.11/24: 192.168.10.11/24" in run.output
    assert "+address:eth1/192.168.10.12/24: (absent)  # delete" in run.output
    plan_lines = [line for line in run.output.splitlines() if line.startswith("changed: [node")]
    assert {line.split("[")[1].split("]")[0] for line in plan_lines} >= {"node1", "node2"}
    # ...and nothing on the hosts changed.
    for h in seed.hosts:
        assert seed.snapshot(h) == seed.fresh[h], h
    assert _in_sync(seed) == {"node1": False, "node2": False}
    RESULTS["check_seconds"] = round(run.seconds, 1)


def test_rollout_converges_and_verify_lab_passes(seed, tmp_path):
    # node2 pings node1 every 50 ms while node1's address moves under the SSH session running the module.
    with Pinger(seed.ns("node2"), "192.168.10.11", tmp_path / "ping.log") as pinger:
        run = seed.playbook("rollout")
    assert run.returncode == 0, run.output[-6000:]
    assert set(run.recap) == {"node1", "node2"} and all(r.failed == 0 and r.unreachable == 0 for r in run.recap.values())
    assert _in_sync(seed) == {"node1": True, "node2": True}
    sent, lost = pinger.lost_between(run.windows["node1"])
    total_sent, total_lost = pinger.totals()
    RESULTS.update(rollout_seconds=round(run.seconds, 1), ping_during_node1_apply={"sent": sent, "lost": lost},
                   ping_whole_run={"sent": total_sent, "lost": total_lost}, node1_apply_window=run.windows["node1"])
    assert sent > 0
    assert lost == 0, f"a peer lost {lost} of {sent} pings while node1's address moved: {pinger.log.read_text()[-3000:]}"
    seed.ovsnet("lab", "attach", str(SEED), "--prefix", seed.prefix)
    verify = seed.ovsnet("verify", str(SEED), "--lab", "--prefix", seed.prefix, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_same_rollout_again_reports_no_change(seed):
    run = seed.playbook("rollout")
    assert run.returncode == 0, run.output[-4000:]
    assert run.changed() == {"node1": 0, "node2": 0}, run.output[-4000:]
    RESULTS["second_rollout_seconds"] = round(run.seconds, 1)


def test_teardown_restores_every_host_exactly(seed, tmp_path):
    # The controller pings node1 (the controller's address never moves; both hosts go down at once).
    with Pinger(f"{seed.prefix}-c", "192.168.10.11", tmp_path / "ping.log") as pinger:
        run = seed.playbook("teardown")
    assert run.returncode == 0, run.output[-4000:]
    assert all(r.changed == 1 and r.failed == 0 for r in run.recap.values()), run.output[-3000:]
    for h in seed.hosts:
        assert seed.snapshot(h) == seed.fresh[h], h
    sent, lost = pinger.lost_between(run.windows["node1"] + run.windows["node2"], after=5.0)
    RESULTS.update(teardown_seconds=round(run.seconds, 1), ping_during_down={"sent": sent, "lost": lost})
