"""The lab builder against real namespaces, veths, Open vSwitch and packets.

What the builder made is checked with independent tools (`ip`, `ovs-vsctl`,
`ping`, `ps`), never with the builder's own status(), except where status()
itself is under test. Every lab has a prefix unique to the test run and is
destroyed when its test ends, pass or fail.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from ovsnet.errors import UsageError
from ovsnet.lab import build as lab_build
from ovsnet.lab import endpoints as lab_endpoints
from ovsnet.lab import ledger, netns, teardown
from ovsnet.lab import names as lab_names
from ovsnet.lab.names import Lab, LabNames
from ovsnet.topology import load_checked
from ovsnet.topology.model import Attach, Topology

pytestmark = pytest.mark.root

SEED = Path(__file__).resolve().parents[2] / "topologies" / "seed.toml"


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=30)


def ip_json(ns: str, *args: str) -> list[dict]:
    return json.loads(run("ip", "-n", ns, "-j", *args).stdout or "[]")


def addresses(ns: str, ifname: str) -> set[str]:
    (entry,) = ip_json(ns, "addr", "show", "dev", ifname)
    return {f"{a['local']}/{a['prefixlen']}" for a in entry["addr_info"] if a.get("scope") != "link"}


def listed_namespaces(prefix: str) -> list[str]:
    # `ip netns list` prints "name (id: N)" once a namespace has an id.
    lines = run("ip", "netns", "list").stdout.splitlines()
    return sorted(line.split()[0] for line in lines if line.startswith(f"{prefix}-"))


def ovs_processes(prefix: str) -> list[str]:
    """Running OVS daemons whose command line names this lab; zombies have no arguments and don't count."""
    lines = run("ps", "-ww", "-eo", "pid=,args=").stdout.splitlines()
    return [
        line
        for line in lines
        if ("ovsdb-server" in line or "ovs-vswitchd" in line) and f"/{prefix}-" in line
    ]


def vsctl(db: str, *args: str) -> str:
    return run("ovs-vsctl", f"--db={db}", "--timeout=10", *args).stdout.strip()


def ping(ns: str, address: str, attempts: int = 3) -> bool:
    # The first packet may be spent on ARP across two userspace switches; a few single pings.
    for _ in range(attempts):
        if run("ip", "netns", "exec", ns, "ping", "-c1", "-W1", address, check=False).returncode == 0:
            return True
    return False


def assert_nothing_left(prefix: str, lab_dir: Path) -> None:
    assert listed_namespaces(prefix) == []
    assert ovs_processes(prefix) == []
    etc = Path("/etc/netns")
    assert not etc.exists() or [p.name for p in etc.iterdir() if p.name.startswith(f"{prefix}-")] == []
    assert not lab_dir.exists()


@pytest.fixture(scope="module")
def seed() -> Topology:
    return load_checked(SEED).topology


@pytest.fixture
def prefix() -> str:
    return netns.unique_prefix("ol")


@pytest.fixture
def lab_dir(prefix: str) -> Path:
    return lab_names.default_lab_dir(prefix)


@pytest.fixture
def cleanup(prefix: str, lab_dir: Path) -> Iterator[None]:
    """Destroy this test's lab at the end, whatever happened in the test."""
    try:
        yield
    finally:
        teardown.destroy(prefix, lab_dir)


@pytest.fixture(scope="module")
def seed_lab(seed: Topology) -> Iterator[Lab]:
    """One seed lab for the read-only checks; built once, destroyed at the end of the module."""
    prefix = netns.unique_prefix("ol")
    lab_dir = lab_names.default_lab_dir(prefix)
    try:
        yield lab_build.build(seed, prefix, lab_dir)
    finally:
        teardown.destroy(prefix, lab_dir)


# --- names -----------------------------------------------------------------


def test_names_fit_the_kernel_and_keep_the_prefix(seed):
    names = LabNames.for_topology(seed, "ab12cd34")
    every = [*names.nodes().values(), names.spare_ns, names.temp_link(9999)]
    every += [names.endpoint_link(e) for e in names.endpoints]
    every += [names.switch_port("node1", "eth1"), names.switch_port("node2", "a-very-long-nic")]
    assert all(len(n.encode()) <= 15 for n in every), every
    assert all(names.owns(n) for n in names.nodes().values())
    assert names.host_ns("node1") == "ab12cd34-h1"
    assert names.host_ns("node2") == "ab12cd34-h2"
    assert not names.owns("ab12cd345-h1")  # another lab whose prefix merely starts the same


def test_default_prefix_differs_per_topology(seed):
    other = dataclasses.replace(seed, name="seed2")
    assert lab_names.default_prefix(seed) == lab_names.default_prefix(seed)
    assert lab_names.default_prefix(seed) != lab_names.default_prefix(other)
    assert LabNames.for_topology(seed).prefix == lab_names.default_prefix(seed)


@pytest.mark.parametrize("bad", ["", "a", "Ab12", "ab-12", "ab123456789", "1abc"])
def test_bad_prefixes_are_refused(bad):
    with pytest.raises(UsageError):
        LabNames(bad)


# --- the built seed lab -------------------------------------------------------


def test_every_node_has_its_namespace(seed_lab):
    assert listed_namespaces(seed_lab.prefix) == sorted(seed_lab.namespaces.values())
    assert set(seed_lab.namespaces) == {"node1", "node2", "switch", "router", "web1", "web2", "db1", "db2"}


def test_switch_ports_mirror_the_host_uplinks(seed_lab):
    db = seed_lab.ovs[seed_lab.names.switch_ns].remote
    show = vsctl(db, "show")
    assert "Bridge br-lab" in show and "datapath_type: netdev" in show
    assert sorted(vsctl(db, "list-ports", "br-lab").split()) == ["h1-eth1", "h2-eth1", "r10", "r100"]
    for port in ("h1-eth1", "h2-eth1"):
        assert vsctl(db, "get", "Port", port, "trunks") == "[10, 100, 200]"
        assert vsctl(db, "get", "Port", port, "tag") == "10"
        assert vsctl(db, "get", "Port", port, "vlan_mode") == "native-untagged"
        assert vsctl(db, "get", "Interface", port, "ofport") not in ("-1", "[]")
    for port, tag in (("r10", "10"), ("r100", "100")):
        assert vsctl(db, "get", "Port", port, "tag") == tag
        assert vsctl(db, "get", "Port", port, "trunks") == "[]"


def test_cables_join_each_host_nic_to_its_switch_port(seed_lab):
    sw = seed_lab.names.switch_ns
    for host, port in (("node1", "h1-eth1"), ("node2", "h2-eth1")):
        (nic,) = ip_json(seed_lab.ns(host), "link", "show", "dev", "eth1")
        (far,) = ip_json(sw, "link", "show", "dev", port)
        # Each end of a veth names the other's ifindex.
        assert nic["link_index"] == far["ifindex"] and far["link_index"] == nic["ifindex"]


def test_router_has_a_leg_per_routed_vlan_and_forwards(seed_lab):
    rt = seed_lab.ns("router")
    assert addresses(rt, "v10") == {"192.168.10.1/24"}
    assert addresses(rt, "v100") == {"10.100.0.1/24"}
    assert {link["ifname"] for link in ip_json(rt, "link")} == {"lo", "v10", "v100"}
    forward = run("ip", "netns", "exec", rt, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()
    assert forward == "1"


def test_hosts_look_as_before_ovsnet(seed_lab):
    for host, address in (("node1", "192.168.10.11/24"), ("node2", "192.168.10.12/24")):
        ns = seed_lab.ns(host)
        assert addresses(ns, "eth1") == {address}
        (nic,) = ip_json(ns, "link", "show", "dev", "eth1")
        assert "UP" in nic["flags"]
        defaults = [r for r in ip_json(ns, "route") if r["dst"] == "default"]
        assert [(r["gateway"], r["dev"]) for r in defaults] == [("192.168.10.1", "eth1")]
        # A private OVS is running, with nothing configured yet: apply's job.
        assert vsctl(seed_lab.ovs_of(host).remote, "list-br") == ""
        assert resolv_conf(seed_lab, host).exists()


def resolv_conf(lab: Lab, host: str) -> Path:
    return Path("/etc/netns") / lab.ns(host) / "resolv.conf"


def test_host_reaches_the_router_untagged_before_any_apply(seed_lab):
    # eth1 sends untagged; the switch port's native VLAN 10 carries it to the router's v10.
    assert ping(seed_lab.ns("node1"), "192.168.10.1")
    assert ping(seed_lab.ns("node2"), "192.168.10.11")


def test_targets_point_apply_at_the_lab(seed_lab):
    targets = lab_names.targets(seed_lab)
    assert set(targets) == {"node1", "node2"}
    t = targets["node1"]
    ns = seed_lab.ns("node1")
    assert t.netns == ns
    assert t.datapath == "netdev"
    assert t.resolv_conf == f"/etc/netns/{ns}/resolv.conf"
    assert t.state_dir == str(seed_lab.lab_dir / "state")
    assert t.ovsdb.startswith("unix:") and os.path.exists(t.ovsdb[len("unix:"):])
    # The remote is really node1's own OVS: it answers from inside node1's namespace.
    assert vsctl(t.ovsdb, "get", "Open_vSwitch", ".", "ovs_version")


def test_exec_argv_runs_in_the_node(seed_lab):
    out = run(*lab_names.exec_argv(seed_lab, "router", ["ip", "-j", "addr"])).stdout
    assert "192.168.10.1" in out
    # OVS tools inside a host find that host's own OVS without being told.
    assert run(*lab_names.exec_argv(seed_lab, "node1", ["ovs-vsctl", "--timeout=5", "show"])).returncode == 0
    with pytest.raises(UsageError):
        lab_names.exec_argv(seed_lab, "nowhere", ["true"])


def test_load_lab_finds_the_built_lab(seed_lab, seed):
    again = ledger.load_lab(seed, seed_lab.prefix, seed_lab.lab_dir)
    assert again.ovs == seed_lab.ovs and again.switch_ports == seed_lab.switch_ports
    assert lab_names.targets(again) == lab_names.targets(seed_lab)


def test_status_reports_the_running_lab(seed_lab):
    st = teardown.status(seed_lab.prefix, seed_lab.lab_dir)
    assert st.complete and st.state_file
    assert list(st.namespaces) == sorted(seed_lab.namespaces.values())
    assert sorted(d.program for d in st.daemons) == ["ovs-vswitchd"] * 3 + ["ovsdb-server"] * 3


def test_building_twice_is_refused(seed_lab, seed):
    with pytest.raises(UsageError, match="already exists"):
        lab_build.build(seed, seed_lab.prefix, seed_lab.lab_dir)


# --- endpoints ------------------------------------------------------------------


def test_endpoints_attach_to_bridges_made_by_apply(seed, prefix, lab_dir, cleanup):
    # db1 straight on OVS, the others on their Docker bridges.
    endpoints = tuple(
        dataclasses.replace(ep, attach=Attach.OVS) if ep.name == "db1" else ep for ep in seed.endpoints
    )
    topo = dataclasses.replace(seed, endpoints=endpoints)
    lab = lab_build.build(topo, prefix, lab_dir)
    # A stand-in for apply: only the bridges the endpoints plug into.
    for host in ("node1", "node2"):
        for bridge in ("br-web", "br-db"):
            run("ip", "-n", lab.ns(host), "link", "add", bridge, "type", "bridge")
    vsctl(lab.ovs_of("node1").remote, "add-br", "br-ovs", "--", "set", "Bridge", "br-ovs", "datapath_type=netdev")

    lab_endpoints.attach_endpoints(lab)
    lab_endpoints.attach_endpoints(lab)  # a second run leaves plugged endpoints alone

    h1, h2 = lab.ns("node1"), lab.ns("node2")
    web1, web2, db1 = (lab.names.endpoint_link(e) for e in ("web1", "web2", "db1"))
    assert [link["ifname"] for link in ip_json(h1, "link", "show", "master", "br-web")] == [web1]
    assert [link["ifname"] for link in ip_json(h2, "link", "show", "master", "br-web")] == [web2]
    assert ip_json(h1, "link", "show", "master", "br-db") == []
    assert vsctl(lab.ovs_of("node1").remote, "get", "Port", db1, "tag") == "200"

    e1 = lab.ns("web1")
    assert addresses(e1, "eth0") == {"10.100.0.11/24"}
    defaults = [r for r in ip_json(e1, "route") if r["dst"] == "default"]
    assert [(r["gateway"], r["dev"]) for r in defaults] == [("10.100.0.1", "eth0")]
    # db has no router: no default route.
    assert [r for r in ip_json(lab.ns("db2"), "route") if r["dst"] == "default"] == []


# --- destroy -------------------------------------------------------------------------


def test_destroy_removes_everything(seed, prefix, lab_dir, cleanup):
    started = time.monotonic()
    lab = lab_build.build(seed, prefix, lab_dir)
    built = time.monotonic()
    assert len(listed_namespaces(prefix)) == 8
    assert len(ovs_processes(prefix)) == 6
    # Something else running in a lab namespace must not keep it alive.
    sleeper = subprocess.Popen(["ip", "netns", "exec", lab.ns("node1"), "sleep", "60"])
    try:
        teardown.destroy(prefix, lab_dir)
        done = time.monotonic()
        assert sleeper.wait(timeout=10) != 0
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
    assert_nothing_left(prefix, lab_dir)
    assert not teardown.status(prefix, lab_dir).exists
    print(f"seed lab: build {built - started:.2f} s, destroy {done - built:.2f} s")
    teardown.destroy(prefix, lab_dir)  # again: nothing to do, no error


def test_destroy_after_a_build_that_failed_halfway(seed, prefix, lab_dir, cleanup, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("injected failure after the switch is up")

    monkeypatch.setattr(lab_build, "prepare_host", broken)  # the first host: after the switch and router
    with pytest.raises(RuntimeError, match="injected"):
        lab_build.build(seed, prefix, lab_dir)
    # Half a lab is there: the switch runs with its ports.
    assert len(listed_namespaces(prefix)) == 8
    assert len(ovs_processes(prefix)) == 6
    switch_db = f"unix:{lab_dir}/ovs/{prefix}-sw/db.sock"
    assert "h1-eth1" in vsctl(switch_db, "list-ports", "br-lab")
    assert not teardown.status(prefix, lab_dir).complete

    teardown.destroy(prefix, lab_dir)
    assert_nothing_left(prefix, lab_dir)


def test_destroy_without_the_state_file(seed, prefix, lab_dir, cleanup):
    """A lab whose state file is lost is still found: namespaces by prefix, daemons by their run directory."""
    lab_build.build(seed, prefix, lab_dir)
    (lab_dir / ledger.STATE_FILE).unlink()
    assert len(ovs_processes(prefix)) == 6

    teardown.destroy(prefix, lab_dir)
    assert_nothing_left(prefix, lab_dir)


def test_destroy_touches_nothing_without_the_prefix(prefix, lab_dir, cleanup):
    lookalike = f"{prefix}9-h1"  # starts like the prefix, but is another lab's
    netns.create(lookalike)
    try:
        teardown.destroy(prefix, lab_dir)  # nothing of this lab exists: no error either
        assert netns.exists(lookalike)
    finally:
        netns.remove(lookalike)
