"""What every test directory shares: the per-run name prefix, namespaces, a private OVS, the root check.

Every name a test makes carries a per-run prefix (its stem says which suite
made it), so two runs never collide, and every fixture removes what it made
when the test ends, pass or fail. The bodies live in tests/support (plain
modules the benchmarks use too); these are the pytest wrappers.
"""

from __future__ import annotations

import os
import shutil

import pytest

from ovsnet.lab import netns
from tests.support import vm_background
from tests.support.labhost import namespaces, private_ovs

# The prefix stem of each suite, so a leftover says where it came from.
STEMS = {"integration": "ovt", "hardening": "ohd", "unit": "ovu", "vm": "ovv"}
ROOT_SUITES = ("integration", "hardening")
TOOLS = ("ovsdb-server", "ovs-vswitchd", "ovsdb-tool", "ovs-vsctl", "ip")
# OVSNET_VM_TESTS=background: the child pytest runs these (tests/support/vm_background.py).
collect_ignore_glob = list(vm_background.CHILD) if vm_background.BACKGROUND else []


def pytest_collection_modifyitems(config, items):
    if vm_background.BACKGROUND and not config.option.collectonly and any(item.path.name == vm_background.WAITER for item in items):
        vm_background.start(config)
    _require_root_tools(items)


def pytest_unconfigure(config):
    vm_background.stop(config)


def _require_root_tools(items):
    """Tests against real namespaces and OVS need root and the OVS binaries: in CI a missing one is an error, not a skip."""
    missing = ([] if os.geteuid() == 0 else ["root"]) + [t for t in TOOLS if shutil.which(t) is None]
    if not missing:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"the integration and hardening tests need: {', '.join(missing)}")
    skip = pytest.mark.skip(reason=f"needs {', '.join(missing)}")
    for item in items:
        suite = item.path.parent.name
        if suite == "integration" or (suite == "hardening" and item.get_closest_marker("root")):
            item.add_marker(skip)


@pytest.fixture
def run_prefix(request) -> str:
    return netns.unique_prefix(STEMS.get(request.path.parent.name, "otx"))


@pytest.fixture
def make_ns(run_prefix):
    """Factory: make_ns("a") creates namespace <prefix>a; all removed at teardown."""
    with namespaces(run_prefix) as make:
        yield make


@pytest.fixture
def ovs(make_ns, tmp_path_factory):
    """A private ovsdb-server + ovs-vswitchd in a fresh namespace; stopped before the namespace goes.

    The run directory is named after the namespace, so the run prefix finds both.
    """
    name = make_ns("ovs")
    with private_ovs(name, tmp_path_factory.mktemp(name)) as instance:
        yield instance
