"""Fixtures for tests against real namespaces, netlink and Open vSwitch.

Every name carries a per-run prefix so two runs never collide, and every
fixture removes what it made when the test ends, pass or fail.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pytest

from ovsnet.lab import netns
from ovsnet.lab.ovs_instance import OvsInstance

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
    made: list[str] = []

    def factory(suffix: str) -> str:
        name = f"{run_prefix}{suffix}"
        netns.create(name)
        made.append(name)
        return name

    yield factory
    for name in reversed(made):
        netns.remove(name)


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
    instance = OvsInstance()
    # start() stops whatever it started if it fails part-way.
    instance.start(name, tmp_path_factory.mktemp(name))
    try:
        yield OvsHost(netns=name, instance=instance)
    finally:
        instance.stop()
