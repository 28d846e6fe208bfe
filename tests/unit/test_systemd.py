"""The boot unit: runs `ovsnet up` after Open vSwitch and before Docker."""

from __future__ import annotations

import configparser
import shlex
import subprocess
import sys
from pathlib import Path

from ovsnet.systemd import unit_name, unit_text


def parse(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # systemd keys are case-sensitive
    cp.read_string(text)
    return cp


def test_unit_orders_after_ovs_and_before_docker():
    unit = parse(unit_text(Path("/etc/ovsnet/seed.toml"), "node1", "/usr/bin/ovsnet"))
    assert "openvswitch-switch.service" in unit["Unit"]["After"].split()
    assert "openvswitch-switch.service" in unit["Unit"]["Wants"].split()
    assert "docker.service" in unit["Unit"]["Before"].split()
    assert unit["Service"]["Type"] == "oneshot"
    assert unit["Service"]["RemainAfterExit"] == "yes"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_unit_runs_up_for_the_host_with_the_lock_wait():
    unit = parse(unit_text(Path("/etc/ovsnet/my topo.toml"), "node1", "/usr/bin/ovsnet"))
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[1:4] == ["up", "/etc/ovsnet/my topo.toml", "--host"]  # a path with a space stays one argument
    assert argv[4] == "node1"
    assert "--wait" in argv and "--quiet" in argv
    # At boot there is no SSH session to protect, and the unit must not stop at that check.
    assert "--allow-uplink-move" in argv


def test_unit_name_names_topology_and_host():
    assert unit_name("seed", "node1") == "ovsnet-seed-node1.service"


def test_install_command_writes_the_unit(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "ovsnet", "install", "topologies/seed.toml", "--host", "node2", "--unit-dir", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    unit = parse((tmp_path / "ovsnet-seed-node2.service").read_text())
    assert "node2" in unit["Service"]["ExecStart"]


def test_install_refuses_an_unknown_host(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "ovsnet", "install", "topologies/seed.toml", "--host", "nodeX", "--unit-dir", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert out.returncode == 2
    assert "no host named 'nodeX'" in out.stderr and "Traceback" not in out.stderr
    assert not list(tmp_path.iterdir())


def test_unit_runs_before_every_network_manager_and_after_ovs():
    """The management port must exist when a manager that was handed it starts (issue 15)."""
    unit = parse(unit_text(Path("/etc/ovsnet/seed.toml"), "node1", "/usr/bin/ovsnet"))
    before, after = unit["Unit"]["Before"].split(), unit["Unit"]["After"].split()
    for manager in ("systemd-networkd.service", "NetworkManager.service", "networking.service", "network.target"):
        assert manager in before, manager
    for ovs in ("openvswitch-switch.service", "ovs-vswitchd.service", "network-pre.target"):
        assert ovs in after, ovs
    assert not set(before) & set(after)
