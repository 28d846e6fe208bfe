"""A four-host fleet (topologies/fleet.toml: node1-3 with the seed's native
management VLAN, node4's tagged on its trunk and reached before ovsnet over
the lab's out-of-band link) rolled out by the real playbook over real SSH,
from hosts that start as fresh machines (`ovsnet lab up --ssh --no-apply`):
check mode changes nothing, a failing host stops the rollout, then the
rollout converges while a peer pings a host whose address moves under the
SSH session running the module (nothing lost), runs again with no change,
and teardown restores every host exactly, also with a state file deleted.

One lab for the whole module (building one costs about a minute); the tests
run in file order and each builds on the one before.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ovsnet import api
from ovsnet.lab import netns
from ovsnet.lab.ledger import load_lab
from tests.support.fleet import REPO, FleetLab, Pinger, fleet_lab

pytestmark = pytest.mark.root
FLEET = REPO / "topologies" / "fleet.toml"
HOSTS = ("node1", "node2", "node3", "node4")
# node4's NIC starts at 1400: up sets the topology's 1500, down must put 1400 back.
NODE4_MTU_BEFORE = 1400
RESULTS: dict[str, object] = {}  # figures for docs/fleet.md, printed at the end of the module


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    with fleet_lab(FLEET, netns.unique_prefix("ovt"), tmp) as lab:
        subprocess.run(["ip", "-n", lab.ns("node4"), "link", "set", "eth1", "mtu", str(NODE4_MTU_BEFORE)], check=True)
        lab.fresh = {h: lab.snapshot(h) for h in lab.hosts}
        yield lab
    Path(tmp, "figures.json").write_text(json.dumps(RESULTS, indent=2))
    print(f"\nfleet figures: {json.dumps(RESULTS)}")


def _switch(lab: FleetLab, *argv: str) -> None:
    lab.ovsnet("lab", "exec", str(FLEET), "switch", "--prefix", lab.prefix, "--", *argv)


def test_check_mode_changes_nothing_and_reports_every_fresh_host(fleet):
    run = fleet.playbook("rollout", "--check", "--diff")
    assert run.returncode == 0, run.output[-4000:]
    # node4's diff: its address moves onto a port tagged with the management VLAN.
    assert "+port:br-ovs/mgmt0: access tag 10 (internal), MAC of eth1  # create" in run.output
    assert "+port:br-ovs/eth1: trunk 10,100,200  # create" in run.output
    assert "-link:eth1: mtu 1400" in run.output or "link:eth1" in run.output
    # node1's, as the seed's: the management VLAN native on the trunk, the address moving off eth1.
    assert "+port:br-ovs/eth1: trunk 10,100,200, native 10 untagged  # create" in run.output
    assert "-address:eth1/192.168.10.11/24: 192.168.10.11/24" in run.output
    assert "+address:eth1/192.168.10.12/24: (absent)  # delete" in run.output
    plan_lines = [line for line in run.output.splitlines() if line.startswith("changed: [node")]
    assert {line.split("[")[1].split("]")[0] for line in plan_lines} == set(HOSTS)
    for h in HOSTS:
        assert fleet.snapshot(h) == fleet.fresh[h], h
    assert all(n > 0 for n in fleet.pending().values())
    RESULTS["check_seconds"] = round(run.seconds, 1)


def test_failing_host_rolls_back_and_stops_the_rollout(fleet):
    # node2's gateway goes silent: the switch drops its ARP requests for 192.168.10.1.
    flow = "priority=100,arp,in_port=h2-eth1,arp_tpa=192.168.10.1,actions=drop"
    _switch(fleet, "ovs-ofctl", "add-flow", "br-lab", flow)
    try:
        run = fleet.playbook("rollout", "-e", "ovsnet_serial=1")
    finally:
        _switch(fleet, "ovs-ofctl", "del-flows", "--strict", "br-lab", flow.replace(",actions=drop", ""))
    assert run.returncode != 0
    # The recap: node1 (batch 1) done, node2 failed, node3 and node4 never reached the rollout play.
    assert run.recap["node2"].failed == 1 and run.recap["node2"].rescued == 1, run.output[-4000:]
    assert "NO MORE HOSTS LEFT" in run.output
    assert run.recap["node1"].failed == 0 and run.recap["node3"].failed == 0 and run.recap["node4"].failed == 0
    assert "node2 failed at \"Apply" in run.output and "rolled back" in run.output
    assert "gateway" in run.output.split("node2 failed at", 1)[1][:2000]
    plans = fleet.pending()
    assert plans["node1"] == 0, "node1, of the batch before, stays configured"
    assert plans["node3"] > 0 and plans["node4"] > 0, "the batches after never ran"
    for h in ("node2", "node3", "node4"):
        assert fleet.snapshot(h) == fleet.fresh[h], h


def test_rollout_converges_and_verify_lab_passes(fleet, tmp_path):
    # node1 (configured in the batch before) pings node3 every 50 ms while node3's
    # address moves under the SSH session that runs the module.
    with Pinger(fleet.ns("node1"), "192.168.10.13", tmp_path / "ping.log") as pinger:
        run = fleet.playbook("rollout", "-e", "ovsnet_serial=2")
    assert run.returncode == 0, run.output[-6000:]
    assert all(r.failed == 0 and r.unreachable == 0 for r in run.recap.values())
    assert fleet.pending() == {h: 0 for h in HOSTS}
    sent, lost = pinger.lost_between(run.windows["node3"])
    RESULTS.update(rollout_seconds=round(run.seconds, 1), ping_during_node3_apply={"sent": sent, "lost": lost},
                   node3_apply_window=run.windows["node3"])
    assert sent > 0
    assert lost == 0, f"a peer lost {lost} of {sent} pings while node3's address moved: {pinger.log.read_text()[-3000:]}"
    fleet.ovsnet("lab", "attach", str(FLEET), "--prefix", fleet.prefix)
    verify = fleet.ovsnet("verify", str(FLEET), "--lab", "--prefix", fleet.prefix, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_same_rollout_again_reports_no_change(fleet):
    run = fleet.playbook("rollout", "-e", "ovsnet_serial=4")
    assert run.returncode == 0, run.output[-4000:]
    assert run.changed() == {h: 0 for h in HOSTS}, run.output[-4000:]
    RESULTS["second_rollout_seconds"] = round(run.seconds, 1)


def test_teardown_restores_every_host(fleet, tmp_path):
    # node4's state file is lost before the teardown (the next test checks what that costs).
    checked = api.load(FLEET)
    state = load_lab(checked.topology, fleet.prefix).state_dir / checked.topology.name / "node4.json"
    assert state.exists(), f"no record at {state}"
    state.unlink()
    # The controller pings node1 (its own address never moves) while the hosts go down.
    with Pinger(f"{fleet.prefix}-c", "192.168.10.11", tmp_path / "ping.log") as pinger:
        run = fleet.playbook("teardown")
    assert run.returncode == 0, run.output[-4000:]
    assert run.changed() == {h: 1 for h in HOSTS}
    for h in ("node1", "node2", "node3"):
        assert fleet.snapshot(h) == fleet.fresh[h], h
    sent, lost = pinger.lost_between(run.windows["node1"], after=5.0)
    RESULTS.update(teardown_seconds=round(run.seconds, 1), ping_during_node1_down={"sent": sent, "lost": lost})


def test_teardown_without_state_file_restores_dns_and_mtu(fleet):
    """The state file is gone: down restores the DNS servers and the MTU from the record's copy in OVSDB."""
    assert fleet.snapshot("node4") == fleet.fresh["node4"]
