"""Fixtures for tests against real namespaces, netlink and Open vSwitch.

Every name carries a per-run prefix so two runs never collide, and every
fixture removes what it made when the test ends, pass or fail.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from ovsnet.apply.target import Target
from ovsnet.lab import netns
from ovsnet.lab.ovs_instance import OvsInstance
from tests.support.commands import sh
from tests.support.labhost import namespaces, node1_target, private_ovs, wire_uplink

pytestmark = pytest.mark.root


def pytest_collection_modifyitems(config, items):
    # Integration tests need root and OVS; say so loudly rather than skip quietly in CI.
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for tool in ("ovsdb-server", "ovs-vswitchd", "ovsdb-tool"):
        if shutil.which(tool) is None:
            missing.append(tool)
    if not missing:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"integration tests need: {', '.join(missing)}")
    skip = pytest.mark.skip(reason=f"needs {', '.join(missing)}")
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture
def run_prefix() -> str:
    return netns.unique_prefix("ovt")


@pytest.fixture
def make_ns(run_prefix):
    """Factory: make_ns("a") creates namespace <prefix>a; all removed at teardown."""
    with namespaces(run_prefix) as make:
        yield make


@dataclass(frozen=True)
class OvsHost:
    """A namespace with its own ovsdb-server and ovs-vswitchd."""

    netns: str
    instance: OvsInstance

    @property
    def remote(self) -> str:
        return self.instance.remote


@pytest.fixture
def ovs(make_ns, tmp_path_factory):
    """A private OVS in a fresh namespace; daemons stopped before the namespace goes.

    The run directory is named after the namespace, so the run prefix finds both.
    """
    name = make_ns("ovs")
    with private_ovs(name, tmp_path_factory.mktemp(name)) as instance:
        yield OvsHost(netns=name, instance=instance)


@dataclass(frozen=True)
class Node1:
    """The host of `lab_host`: namespace, gateway namespace, OVS, and where ovsnet applies."""

    ns: str
    gw: str
    ovs: OvsHost
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
