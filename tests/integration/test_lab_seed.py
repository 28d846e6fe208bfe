"""The seed topology in the lab: every host configured by `ovsnet up`'s code,
then real packets across the trunk and the switch."""

from __future__ import annotations

import subprocess

import pytest

from ovsnet import apply
from ovsnet.lab import names as lab_names
from ovsnet.lab import netns as netns_mod
from ovsnet.lab import run, teardown
from ovsnet.topology import load_checked

pytestmark = pytest.mark.root


def ping(lab, node: str, addr: str) -> bool:
    argv = lab_names.exec_argv(lab, node, ["ping", "-c", "1", "-W", "1", addr])
    return subprocess.run(argv, capture_output=True).returncode == 0


@pytest.fixture
def seed_lab(tmp_path):
    checked = load_checked("topologies/seed.toml")
    prefix = netns_mod.unique_prefix("s")[:7]
    try:
        lab = run.up(checked, prefix, tmp_path / "lab")
        yield checked, lab
    finally:
        teardown.destroy(prefix, tmp_path / "lab")
        assert not netns_mod.listed(f"{prefix}-")


def test_seed_lab_isolation_and_reachability(seed_lab):
    checked, lab = seed_lab
    for host, target in lab_names.targets(lab).items():
        assert apply.drift(checked, host, target).empty, host
    assert ping(lab, "web1", "10.100.0.12")  # same VLAN, across the trunk
    assert ping(lab, "db1", "10.200.0.12")
    assert not ping(lab, "web1", "10.200.0.12")  # VLAN 100 cannot reach VLAN 200
    assert ping(lab, "web1", "192.168.10.12")  # the router joins web and mgmt
    assert not ping(lab, "db1", "192.168.10.11")  # db is not routed: hosts unreachable
    assert ping(lab, "node1", "192.168.10.12")  # hosts over their moved uplinks
    # A second up changes nothing on any host.
    for host, target in lab_names.targets(lab).items():
        assert apply.up(checked, host, target).applied == ()
