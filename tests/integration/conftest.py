"""The integration tests' own fixture: node1 before ovsnet (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ovsnet.apply.target import Target
from ovsnet.lab.ovs_instance import OvsInstance
from tests.support.commands import sh
from tests.support.labhost import node1_target, wire_uplink

pytestmark = pytest.mark.root


@dataclass(frozen=True)
class Node1:
    """The host of `lab_host`: namespace, gateway namespace, OVS, and where ovsnet applies."""

    ns: str
    gw: str
    ovs: OvsInstance
    target: Target
    resolv: Path
    tag: str  # for the topology name: unique per run, so OVSDB marks never mix

    def vsctl(self, *args: str) -> str:
        return sh("ovs-vsctl", f"--db={self.ovs.remote}", *args).strip()


@pytest.fixture
def lab_host(ovs, make_ns, tmp_path, run_prefix):
    """node1 before ovsnet: eth1 holds 192.168.10.11/24 and the default route via the gateway."""
    gw = make_ns("gw")
    wire_uplink(ovs.netns, gw)
    target = node1_target(ovs.remote, ovs.netns, tmp_path, "search example.test\nnameserver 9.9.9.9\n", gateway_timeout=10.0)
    return Node1(ovs.netns, gw, ovs, target, Path(target.resolv_conf), run_prefix[-5:])
