"""`ovsnet verify` with probe containers, on a real Docker engine in the seed lab.

One lab of topologies/seed.toml for the module, built with `lab up --docker`
(a private dockerd per host, the local busybox image the seed names as its
probe image), in the default lab directory so that the command itself
(`ovsnet verify --lab --prefix P`) finds it. Tests that break the lab put it
back with `ovsnet up`'s own code. The lab is destroyed at the end, pass or
fail, and checked gone; every test checks that no probe container is left.

If the engine cannot start, these tests fail and say why: they never skip.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from ovsnet import apply
from ovsnet.apply.target import Target
from ovsnet.backends.docker import Docker
from ovsnet.errors import BackendError
from ovsnet.lab import docker as lab_docker
from ovsnet.lab import names as lab_names
from ovsnet.lab import netns, run, teardown
from ovsnet.render.verify import render_matrix
from ovsnet.topology import Checked, addressing, load_checked
from ovsnet.verify import containers, pings
from ovsnet.verify.lab import verify_lab
from tests.support.dockerlab import docker_processes, missing_for_engine

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "topologies" / "seed.toml"
OVSNET = [sys.executable, "-m", "ovsnet"]
HOSTS = ("node1", "node2")
NETWORKS = ("web", "db")  # in the seed each network is named after its VLAN


@dataclass
class ProbeLab:
    checked: Checked
    lab: lab_names.Lab
    prefix: str
    targets: dict[str, Target]
    clients: dict  # host -> docker.DockerClient of its lab dockerd

    def slice_of(self, host: str, vlan: str) -> ipaddress.IPv4Network:
        slices, _ = addressing.plan(self.checked.topology)
        return slices[(host, vlan)].network

    def probe_containers(self) -> list[str]:
        """Every container carrying ovsnet's probe label, running or not, on both engines."""
        return sorted(c.name for client in self.clients.values()
                      for c in client.containers.list(all=True, filters={"label": containers.PROBE_LABEL}))

    def cli(self, *args: str, topology: Path = SEED) -> subprocess.CompletedProcess:
        return subprocess.run([*OVSNET, "verify", str(topology), "--lab", "--prefix", self.prefix, *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=240)


@pytest.fixture(scope="module")
def plab():
    missing = missing_for_engine(("nsenter",))
    if missing:
        pytest.fail(f"probe tests need a real engine and busybox: {missing}")
    import docker

    checked = load_checked(SEED)
    assert checked.topology.verify.probe_image == lab_docker.IMAGE
    prefix = netns.unique_prefix("vp")[:7]
    lab_dir = lab_names.default_lab_dir(prefix)
    clients: dict = {}
    try:
        try:
            lab = run.up(checked, prefix, docker=True)
        except BackendError as exc:
            pytest.fail(f"the Docker engine could not start in the lab (this is a failure, not a skip):\n{exc}")
        targets = lab_names.targets(lab)
        for host in HOSTS:
            clients[host] = docker.DockerClient(base_url=targets[host].docker_host, timeout=60)
        yield ProbeLab(checked, lab, prefix, targets, clients)
    finally:
        for c in clients.values():
            c.close()
        teardown.destroy(prefix)
        assert netns.listed(f"{prefix}-") == []
        assert docker_processes(f"/{prefix}-") == []
        assert not lab_dir.exists()


@pytest.fixture
def no_probe_left(plab):
    """Each test starts with no probe container and must end with none."""
    assert plab.probe_containers() == []
    yield
    assert plab.probe_containers() == []


def vsctl(lab: lab_names.Lab, host: str, *args: str) -> None:
    rundir = lab.ovs_of(host).rundir
    subprocess.run(["ovs-vsctl", f"--db=unix:{rundir}/db.sock", "--timeout=10", *args], check=True, capture_output=True)


def marks(body: dict) -> dict[tuple[str, str], str]:
    return {(p["src"], p["dst"]): p["mark"] for p in body["pairs"]}


# --- the matrix with probes ----------------------------------------------------------------


def test_verify_with_probes_passes_and_lists_a_probe_per_network(plab, no_probe_left):
    r = plab.cli("--json")
    assert r.returncode == 0, r.stdout + r.stderr
    body = json.loads(r.stdout)
    assert body["ok"] and body["probed"] == len(body["pairs"]) == 90, body["mismatches"]
    # A probe per Docker network per host, its address from Docker inside that host's slice.
    got = {(p["host"], p["network"]): p for p in body["probes"]}
    assert set(got) == {(h, n) for h in HOSTS for n in NETWORKS}
    for (host, net), p in got.items():
        assert p["name"] == f"{net}@{host}" and p["image"] == lab_docker.IMAGE
        assert ipaddress.ip_interface(p["address"]).ip in plab.slice_of(host, net), p
        assert p["in_slice"] and p["slice"] == str(plab.slice_of(host, net))
    kinds = {s["name"]: s["kind"] for s in body["stations"]}
    assert sorted(n for n, k in kinds.items() if k == "probe") == sorted(f"{n}@{h}" for h in HOSTS for n in NETWORKS)
    m = marks(body)
    # web: the other host's web probe and the web endpoints on its own segment; hosts via the router.
    for a, b in (("web@node1", "web@node2"), ("web@node1", "web1"), ("web@node1", "web2"), ("web@node2", "web1")):
        assert m[(a, b)] == m[(b, a)] == "ok", (a, b)
    for web in ("web@node1", "web@node2"):
        for host in HOSTS:
            assert m[(web, host)] == m[(host, web)] == "R", (web, host)
    # db: nothing outside db, from or to either db probe.
    db = {"db1", "db2", "db@node1", "db@node2"}
    for probe_name in ("db@node1", "db@node2"):
        for other in kinds:
            if other == probe_name:
                continue
            want = "ok" if other in db else "--"
            assert m[(probe_name, other)] == m[(other, probe_name)] == want, (probe_name, other)
    # tcpdump watched each probe's port like an endpoint's.
    watched = {c["endpoint"] for c in body["captures"] if c["role"] == "endpoint"}
    assert watched == {"web1", "web2", "db1", "db2", *(p["name"] for p in got.values())}
    assert not body["findings"] and body["timings"]["start probes"] > 0


def test_text_output_and_no_probes(plab, no_probe_left):
    r = plab.cli()
    assert r.returncode == 0, r.stdout + r.stderr
    header = r.stdout.splitlines()[1].split()
    assert header[3:] == ["web1", "web2", "db1", "db2", "web@node1", "db@node1", "web@node2", "db@node2", "node1", "node2"]
    assert "OK: 90 pairs probed, 0 mismatches, 0 capture findings" in r.stdout
    off = plab.cli("--no-probes")
    assert off.returncode == 0 and "OK: 30 pairs probed" in off.stdout and "@" not in off.stdout.splitlines()[1]


def test_a_vlan_removed_from_a_trunk_breaks_exactly_its_pairs_probes_included(plab, no_probe_left):
    checked, lab = plab.checked, plab.lab
    vsctl(lab, "node2", "set", "Port", "eth1", "trunks=10,200")  # VLAN 100 no longer crosses node2's eth1
    try:
        report = verify_lab(checked, lab, probes=True)
    finally:
        apply.up(checked, "node2", plab.targets["node2"])  # ovsnet puts the trunk back
    assert apply.drift(checked, "node2", plab.targets["node2"]).empty
    cut = {"web2", "web@node2"}  # web on node2: still each other, nothing beyond the trunk
    beyond = {"web1", "web@node1", "node1", "node2"}
    broken = {(a, b) for a in cut for b in beyond} | {(b, a) for a in cut for b in beyond}
    assert report.broken_pairs() == broken, render_matrix(report)
    assert all(not p.reached for p in report.mismatches)
    trunk = lab.switch_ports["node2:eth1"]
    assert {(f.interface, f.kind, f.vlan) for f in report.findings} == {(trunk, "missing", 100)}


def test_a_docker_bridge_on_the_wrong_vlan_breaks_exactly_its_pairs(plab, no_probe_left):
    checked, lab = plab.checked, plab.lab
    vsctl(lab, "node1", "set", "Port", "ovs-br-db", "tag=100")  # node1's db bridge (db1 and its probe) into web
    try:
        report = verify_lab(checked, lab, probes=True)
    finally:
        apply.up(checked, "node1", plab.targets["node1"])
    assert apply.drift(checked, "node1", plab.targets["node1"]).empty
    moved, rest = {"db1", "db@node1"}, {"db2", "db@node2"}
    broken = {(a, b) for a in moved for b in rest} | {(b, a) for a in moved for b in rest}
    assert report.broken_pairs() == broken, render_matrix(report)
    # The probe's own port sees web's frames: it is a capture point like db1's.
    found = {(f.node, f.interface, f.kind, f.vlan) for f in report.findings if f.role == "endpoint"}
    (port,) = [c.interface for c in report.captures if c.owner == "db@node1"]
    assert ("node1", port, "foreign-frame", 100) in found, found
    assert ("node1", lab.names.endpoint_link("db1"), "foreign-frame", 100) in found, found


# --- nothing left behind ------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_probes_removed_when_a_ping_fails_hard(plab, no_probe_left, monkeypatch, error):
    real = pings._ping
    calls = []

    def boom(argv):
        if argv[0] == "nsenter":  # a ping from a probe container
            calls.append(argv)
            assert plab.probe_containers(), "the probes should exist while verify runs"
            raise error("ping blew up")
        return real(argv)

    monkeypatch.setattr(pings, "_ping", boom)
    with pytest.raises(error, match="ping blew up"):
        verify_lab(plab.checked, plab.lab, probes=True)
    assert calls


def test_probes_removed_when_one_cannot_start(plab, no_probe_left, monkeypatch):
    real = Docker.run_container
    lock, started = threading.Lock(), []

    def third_fails(self, image, command, **kw):
        with lock:
            started.append(kw["name"])
            n = len(started)
        if n == 3:
            raise BackendError("no room for a third probe")
        return real(self, image, command, **kw)

    monkeypatch.setattr(Docker, "run_container", third_fails)
    with pytest.raises(BackendError, match="no room for a third probe"):
        verify_lab(plab.checked, plab.lab, probes=True)
    assert len(started) == 4


def test_stale_probes_are_removed_and_a_running_verify_s_are_kept(plab, no_probe_left):
    client = plab.clients["node1"]
    tag = uuid.uuid4().hex[:6]

    def labels(owner: str) -> dict:
        return {containers.PROBE_LABEL: "seed", containers.OWNER_LABEL: owner,
                containers.HOST_LABEL: "node1", containers.NETWORK_LABEL: "web"}

    boot = containers._boot_id()
    # This pid with another start time: the verify that made it is gone.
    dead = client.containers.run(lab_docker.IMAGE, ["sleep", "600"], name=f"stale-dead-{tag}", network="web",
                                 labels=labels(f"{boot}:{os.getpid()}:1:dead"), detach=True)
    stopped = client.containers.create(lab_docker.IMAGE, ["sleep", "600"], name=f"stale-stopped-{tag}",
                                       network="web", labels=labels(containers.owner_token()))
    live = client.containers.run(lab_docker.IMAGE, ["sleep", "600"], name=f"live-{tag}", network="web",
                                 labels=labels(containers.owner_token()), detach=True)
    made = [dead, stopped, live]
    try:
        report = verify_lab(plab.checked, plab.lab, probes=True)
        assert report.ok, render_matrix(report)
        assert plab.probe_containers() == [f"live-{tag}"]  # another verify's, still running: left alone
        assert "removed 2 probe containers left by an earlier verify" in report.notes
    finally:
        for c in made:
            try:
                c.remove(force=True)
            except Exception:
                pass


# --- bad input ---------------------------------------------------------------------------------


def test_a_missing_image_is_a_clear_error(plab, no_probe_left, tmp_path):
    path = tmp_path / "seed.toml"
    path.write_text(SEED.read_text().replace('probe_image = "local/busybox:1"', 'probe_image = "local/absent:1"'))
    r = plab.cli(topology=path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "local/absent:1" in r.stderr and "docker import" in r.stderr and "never pulls" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    off = plab.cli("--no-probes", topology=path)  # and verify without probes still runs
    assert off.returncode == 0, off.stdout + off.stderr


# --- on a host ----------------------------------------------------------------------------------


def test_verify_on_a_host_starts_that_hosts_probes(plab, no_probe_left):
    """`ovsnet verify FILE` run inside lab host node1 (its namespace, its dockerd): node1's row,
    and the rows of node1's two probes."""
    argv = lab_names.exec_argv(plab.lab, "node1", ["env", f"DOCKER_HOST={plab.targets['node1'].docker_host}",
                                                 *OVSNET, "verify", str(SEED), "--json"])
    r = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    body = json.loads(r.stdout)
    assert body["mode"] == "host" and body["ok"], body["mismatches"]
    assert [p["name"] for p in body["probes"]] == ["web@node1", "db@node1"]
    assert {p["src"] for p in body["pairs"]} == {"node1", "web@node1", "db@node1"}
    assert not [s for s in body["stations"] if s["name"].endswith("@node2")]
    m = marks(body)
    assert m[("web@node1", "web2")] == "ok" and m[("web@node1", "node2")] == "R" and m[("node1", "web@node1")] == "R"
    assert m[("db@node1", "db2")] == "ok" and m[("db@node1", "node2")] == "--" and m[("node1", "db@node1")] == "--"
    assert any("other hosts' probes do not exist" in n for n in body["notes"])
