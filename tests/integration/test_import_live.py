"""`ovsnet import` and `ovsnet graph --live` on real simulated hosts: lab namespaces, private OVS, real Docker engines.

Hosts built by hand (tests/support/handbuilt.py: ovs-vsctl, ip and the
docker client, as the seed types them) are imported, the file is checked,
`plan` finds only objects to adopt, and `up --adopt` takes them over while
pings run across them: no packet lost, no OVSDB row or link replaced, and
`verify --lab` passes afterwards. Hosts ovsnet configured itself import back
to their part of the topology. A lab broken by hand is drawn with exactly
its breakages marked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import pytest

from ovsnet.apply import plan_live
from ovsnet.apply.target import Target
from ovsnet.lab import build, endpoints, run, teardown
from ovsnet.lab import docker as lab_docker
from ovsnet.lab import netns as netns_mod
from ovsnet.lab.names import exec_argv, targets
from ovsnet.topology import load_checked
from tests.support.commands import ns_json, sh, vsctl
from tests.support.dockerlab import docker_processes, missing_for_engine
from tests.support.handbuilt import DockerVlan, Where, docker, dockerd_on_bridge, flat_host, vlan_host
from tests.support.shapes import shape

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
OVSNET = str(ROOT / ".venv" / "bin" / "ovsnet")
SEED = ROOT / "topologies" / "seed.toml"
FLAT = ROOT / "topologies" / "flat.toml"


def cli(*args: str, docker_host: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": docker_host or "unix:///nonexistent/olv-no-docker.sock"}
    p = subprocess.run([OVSNET, *args], capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    if check and p.returncode != 0:
        raise AssertionError(f"ovsnet {' '.join(args[:3])} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def on(t: Target) -> list[str]:
    """The target options that point ovsnet at one simulated host."""
    return ["--netns", t.netns or "", "--db", t.ovsdb, "--resolv-conf", t.resolv_conf or "", "--state-dir", t.state_dir]


def where(t: Target, docker_host: str | None = None) -> Where:
    return Where(t.netns or "", t.ovsdb, docker_host or t.docker_host, Path(t.resolv_conf or ""))


@contextmanager
def lab_of(path: Path, *, docker: bool = False, configured: bool = False):
    """A lab of `path`: hosts as before ovsnet (built only), or configured by `ovsnet lab up`; always destroyed."""
    if docker and missing_for_engine():
        pytest.fail(f"these tests need a real Docker engine: {missing_for_engine()}")
    checked = load_checked(path)
    prefix = netns_mod.unique_prefix("olv")
    try:
        if configured:
            lab = run.up(checked, prefix, docker=docker)
        else:
            lab = build.build(checked.topology, prefix)
            if docker:
                lab_docker.start(lab)
        yield checked, lab
    finally:
        teardown.destroy(prefix)
        assert not netns_mod.listed(f"{prefix}-")
        assert docker_processes(f"/{prefix}-") == []


def identities(t: Target) -> dict:
    """What adoption must not replace: every OVSDB row's UUID and every link's index."""
    rows = {}
    for table in ("Bridge", "Port", "Interface"):
        data = json.loads(vsctl(t.ovsdb, "--format=json", "--columns=_uuid,name", "list", table))["data"]
        rows.update({(table, name): uuid[1] for uuid, name in data})
    return {"ovsdb": rows, "links": {lk["ifname"]: lk["ifindex"] for lk in ns_json(t.netns or "", "link")}}


@contextmanager
def pinging(lab, pairs: dict[str, tuple[str, str]]):
    """Pings every 50 ms for the block; yields {name: (sent, received)}, filled in when the block ends."""
    procs = {k: subprocess.Popen(exec_argv(lab, node, ["ping", "-i", "0.05", addr]), stdout=subprocess.PIPE, text=True)
             for k, (node, addr) in pairs.items()}
    seen: dict[str, tuple[int, int]] = {}
    try:
        time.sleep(1.0)
        yield seen
        time.sleep(1.0)
    finally:
        for k, p in procs.items():
            p.send_signal(signal.SIGINT)
            out = p.communicate(timeout=20)[0]
            m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
            seen[k] = (int(m[1]), int(m[2])) if m else (0, 0)


def sections(path: Path) -> tuple[str, str]:
    """A topology file cut in two: its head (name, VLANs, router), to import hosts into, and what names
    hosts (endpoints, the lab's cables, with [verify] between them), to add once the hosts are in."""
    text = path.read_text()
    head, rest = text.split("[hosts.", 1)
    return head, rest[rest.index("\n# Test endpoints"):]


# --- the seed's layout, built by hand -----------------------------------------------------------


SEED_ADDRESS = {"node1": "192.168.10.11/24", "node2": "192.168.10.12/24"}
# node2's ranges are not the slices the address plan gives it: import pins them.
SEED_RANGES = {"node1": ("10.100.0.64/26", "10.200.0.64/26"), "node2": ("10.100.0.128/26", "10.200.0.192/26")}
ADOPTED = {"bridge:br-ovs", "port:br-ovs/eth1", "port:br-ovs/mgmt0", "port:br-ovs/ovs-br-web", "port:br-ovs/ovs-br-db",
           "link:br-web", "link:br-db", "veth:ovs-br-web/lnx-br-web", "veth:ovs-br-db/lnx-br-db"}


def test_seed_built_by_hand_is_imported_and_adopted_without_a_lost_packet(tmp_path):
    """Two Docker bridges on two VLANs and a native management VLAN, on each of two hosts, with real Docker networks."""
    with lab_of(SEED, docker=True) as (_, lab):
        tg = targets(lab)
        for host, addr in SEED_ADDRESS.items():
            web, db = SEED_RANGES[host]
            vlan_host(where(tg[host]), nic="eth1", vids=[10, 100, 200], native=10, mgmt_tag=10, address=addr, gateway="192.168.10.1",
                      dns="192.168.10.1", docker_vlans=[DockerVlan("br-web", 100, "web", "10.100.0.0/24", "10.100.0.1", web),
                                                         DockerVlan("br-db", 200, "db", "10.200.0.0/24", None, db)])
        dh = {h: t.docker_host for h, t in tg.items()}

        # A file of its own: valid, guesses in comments, nothing left out.
        own = tmp_path / "node1.toml"
        r = cli("import", "--host", "node1", *on(tg["node1"]), "-o", str(own), docker_host=dh["node1"])
        assert r.stderr == ""
        assert "[vlans.vlan100]  # name guessed: nothing on the host names VLAN 100" in own.read_text()
        assert cli("validate", str(own)).stdout.startswith(f"{own}: valid: 1 hosts, 3 VLANs")
        # Its plan: nothing to change, only objects in the way until adopted.
        p = json.loads(cli("plan", str(own), "--host", "node1", *on(tg["node1"]), "--json", docker_host=dh["node1"]).stdout)
        assert p["changes"] == []
        assert {b["resource"] for b in p["blockers"]} == ADOPTED | {"docker-network:web", "docker-network:db"}
        p = json.loads(cli("plan", str(own), "--host", "node1", *on(tg["node1"]), "--adopt", "--json", docker_host=dh["node1"]).stdout)
        assert p["blockers"] == []
        # Reported to the lead: a Docker network cannot take a label, so --adopt recreates it (same settings, new id).
        assert {(c["action"], c["resource"]) for c in p["changes"]} == {("adopt", r) for r in ADOPTED} | {("modify", "docker-network:web"), ("modify", "docker-network:db")}

        # Both hosts into the seed's own file, stripped of its hosts: its VLAN names, its lab, its probes.
        site = tmp_path / "seed.toml"
        skeleton, eps = sections(SEED)
        site.write_text(skeleton)
        for host in SEED_ADDRESS:
            cli("import", "--host", host, *on(tg[host]), "--into", str(site), docker_host=dh[host])
        site.write_text(site.read_text() + eps)
        c = load_checked(site)
        assert [str(d.ip_range) for d in c.topology.hosts["node2"].docker] == list(SEED_RANGES["node2"])
        assert c.topology.hosts["node1"].uplinks[0].vlans == ("mgmt", "web", "db")

        endpoints.attach_endpoints(lab)
        before = {h: identities(t) for h, t in tg.items()}
        pairs = {"web1->web2": ("web1", "10.100.0.12"), "db2->db1": ("db2", "10.200.0.11"),
                 "router->node1": (lab.names.router or "", "192.168.10.11"), "router->node2": (lab.names.router or "", "192.168.10.12")}
        with pinging(lab, pairs) as seen:
            for host in SEED_ADDRESS:
                cli("up", str(site), "--host", host, "--adopt", *on(tg[host]), docker_host=dh[host])
        assert all(sent > 20 and got == sent for sent, got in seen.values()), seen
        assert {h: identities(t) for h, t in tg.items()} == before
        for host in SEED_ADDRESS:
            assert cli("status", str(site), "--host", host, *on(tg[host]), docker_host=dh[host], check=False).returncode == 0
        v = cli("verify", str(site), "--lab", "--prefix", lab.prefix, check=False)
        assert v.returncode == 0, v.stdout[-3000:] + v.stderr[-2000:]
        assert "OK:" in v.stdout and "web@node2" in v.stdout


# --- the flat layout, built by hand ----------------------------------------------------------------


def test_flat_built_by_hand_is_imported_and_adopted_without_a_lost_packet(tmp_path):
    """The NIC in a Linux bridge holding the host's address, dockerd on `-b br0` with the host's slice."""
    with lab_of(FLAT) as (_, lab):
        tg = targets(lab)
        for host, addr in (("node1", "192.168.1.11/24"), ("node2", "192.168.1.12/24")):
            flat_host(where(tg[host]), nic="eth0", address=addr, gateway="192.168.1.1", dns="192.168.1.1")
        dh = {"node1": dockerd_on_bridge(lab, "node1", "br0", "192.168.1.64/26"), "node2": None}
        site = tmp_path / "flat.toml"
        skeleton, eps = sections(FLAT)
        site.write_text(skeleton)
        r = cli("import", "--host", "node1", *on(tg["node1"]), "--into", str(site), docker_host=dh["node1"])
        assert r.stderr == ""  # Docker's network on br0 hands out exactly the host's slice: nothing to say
        r = cli("import", "--host", "node2", *on(tg["node2"]), "--into", str(site))
        assert r.stderr.splitlines() == ["ovsnet import: left out: Docker was not read (Docker is not reachable at unix:///nonexistent/olv-no-docker.sock: "
                                         "no socket /nonexistent/olv-no-docker.sock; is dockerd running? (Docker installed: apt-get install docker.io)): "
                                         "no Docker network is imported"]
        text = site.read_text()
        assert "dockerd -b br0" in text and "[vlans." not in text[len(skeleton):]  # the file's VLAN lan, no new one
        site.write_text(text + eps)
        c = load_checked(site)
        assert asdict(c.topology.hosts["node1"].flat) == {"bridge": "br0", "nic": "eth0", "vlan": "lan", "network": None}
        for host in ("node1", "node2"):
            p = json.loads(cli("plan", str(site), "--host", host, *on(tg[host]), "--adopt", "--json", docker_host=dh[host]).stdout)
            assert [(c["action"], c["resource"]) for c in p["changes"]] == [("adopt", "link:br0")]

        endpoints.attach_endpoints(lab)
        before = {h: identities_links(t) for h, t in tg.items()}
        router = lab.names.router or ""
        with pinging(lab, {"app1->app2": ("app1", "192.168.1.22"), "router->node1": (router, "192.168.1.11"), "router->node2": (router, "192.168.1.12")}) as seen:
            for host in ("node1", "node2"):
                cli("up", str(site), "--host", host, "--adopt", *on(tg[host]), docker_host=dh[host])
        assert all(sent > 20 and got == sent for sent, got in seen.values()), seen
        assert {h: identities_links(t) for h, t in tg.items()} == before
        v = cli("verify", str(site), "--lab", "--prefix", lab.prefix, check=False)
        assert v.returncode == 0, v.stdout[-3000:] + v.stderr[-2000:]


def identities_links(t: Target) -> dict[str, int]:
    return {lk["ifname"]: lk["ifindex"] for lk in ns_json(t.netns or "", "link")}


# --- tagged management, no native VLAN, an access port ----------------------------------------------------


TAGGED = """\
name = "tagged"
[vlans.admin]
id = 5
subnet = "172.16.5.0/24"
router = "172.16.5.1"
[vlans.storage]
id = 300
subnet = "10.30.0.0/24"
[router]
vlans = ["admin"]
[hosts.store1]
bridge = { name = "br-int", datapath = "netdev" }
[[hosts.store1.uplinks]]
nic = "eth1"
vlans = ["admin", "storage"]
[hosts.store1.management]
vlan = "admin"
port = "adm0"
addresses = ["172.16.5.21/24"]
gateway = "172.16.5.1"
[[hosts.store1.access_ports]]
interface = "eth2"
vlan = "storage"
[lab]
switch = "sw"
[[lab.cables]]
ends = ["store1:eth1", "sw"]
"""


def test_tagged_management_and_an_access_port_built_by_hand(tmp_path):
    lab_file = tmp_path / "tagged.toml"
    lab_file.write_text(TAGGED)
    with lab_of(lab_file) as (_, lab):
        t = targets(lab)["store1"]
        w = where(t)
        vsctl(w.ovsdb, "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev")
        vsctl(w.ovsdb, "add-port", "br-int", "eth1", "trunks=5,300")
        vsctl(w.ovsdb, "add-port", "br-int", "adm0", "tag=5", "--", "set", "interface", "adm0", "type=internal")
        vsctl(w.ovsdb, "add-port", "br-int", "eth2", "tag=300")
        sh("ip", "-n", w.ns, "-batch", "-", input="link set adm0 up\naddr add 172.16.5.21/24 dev adm0\n"
                                                  "route replace default via 172.16.5.1 dev adm0\naddr del 172.16.5.21/24 dev eth1\n")
        out = tmp_path / "store1.toml"
        r = cli("import", "--host", "store1", *on(t), "-o", str(out))
        assert "Docker was not read" in r.stderr
        h = load_checked(out).topology.hosts["store1"]
        assert (h.bridge.name, h.uplinks[0].vlans, h.uplinks[0].native_vlan) == ("br-int", ("vlan5", "vlan300"), None)
        assert (h.management.port, h.management.vlan, [a.vlan for a in h.access_ports]) == ("adm0", "vlan5", ["vlan300"])
        p = json.loads(cli("plan", str(out), "--host", "store1", *on(t), "--adopt", "--json").stdout)
        assert {(c["action"], c["resource"]) for c in p["changes"]} == {("adopt", "bridge:br-int"), ("adopt", "port:br-int/eth1"),
                                                                         ("adopt", "port:br-int/adm0"), ("adopt", "port:br-int/eth2")}
        before = identities(t)
        with pinging(lab, {"router->store1": (lab.names.router or "", "172.16.5.21")}) as seen:
            cli("up", str(out), "--host", "store1", "--adopt", *on(t))
        assert all(sent > 20 and got == sent for sent, got in seen.values()), seen
        assert identities(t) == before
        assert cli("status", str(out), "--host", "store1", *on(t), check=False).returncode == 0


# --- hosts ovsnet configured: import round trip, then a lab broken by hand, drawn -----------------------


@pytest.mark.parametrize("path", sorted((ROOT / "topologies").glob("*.toml")), ids=lambda p: p.stem)
def test_every_topology_through_lab_up_imports_back(path, tmp_path):
    with lab_of(path, docker=True, configured=True) as (checked, lab):
        for host, t in targets(lab).items():
            out = tmp_path / f"{host}.toml"
            r = cli("import", "--host", host, *on(t), "-o", str(out), docker_host=lab_docker.docker_host(lab, host))
            # What the lab adds to a host is not the topology's: its test endpoints; and a host without Docker networks has no dockerd.
            said = ("a test endpoint of ovsnet's lab", "test endpoints' interfaces", "left out: Docker was not read")
            assert all(any(s in line for s in said) for line in r.stderr.splitlines()), r.stderr
            imported = load_checked(out).topology
            assert imported.name == checked.topology.name  # from ovsnet's marks
            # The lab forces the netdev datapath; the file says what the host has.
            want = shape(checked.topology, host)
            for row in want.get("ovs-bridge", []):
                row["datapath"] = "netdev"
            for row in want.get("veth", []):
                row["finish_checksums"] = True  # what a veth feeding a netdev bridge needs
            assert shape(imported, host) == want
            assert cli("status", str(out), "--host", host, *on(t), docker_host=lab_docker.docker_host(lab, host), check=False).returncode == 0
        if path == SEED:
            _break_and_draw(checked, lab, tmp_path)


def _break_and_draw(checked, lab, tmp_path: Path) -> None:
    """The issue's breakages, by hand: the picture and --json mark exactly those."""
    tg = targets(lab)
    n1, n2 = tg["node1"], tg["node2"]
    vsctl(n1.ovsdb, "set", "port", "ovs-br-db", "tag=300")  # a tag changed
    vsctl(n1.ovsdb, "set", "port", "eth1", "trunks=10,100")  # a VLAN removed from a trunk
    sh("ip", "-n", n2.netns or "", "-batch", "-", input="link add fp0 type veth peer name fp1\nlink set fp0 up\nlink set fp1 up\n")
    vsctl(n2.ovsdb, "add-port", "br-ovs", "fp0", "tag=100")  # a foreign port
    docker(where(n2), "network", "rm", "web")  # a Docker network deleted
    expected = {("node1", "port:br-ovs/ovs-br-db", "different"), ("node1", "port:br-ovs/eth1", "different"),
                ("node2", "port:br-ovs/fp0", "foreign"), ("node2", "docker-network:web", "missing")}
    g = json.loads(cli("graph", str(SEED), "--live", "--lab", "--prefix", lab.prefix, "--json").stdout)
    assert {(m["host"], m["resource"], m["mark"]) for m in g["graph"]["marks"]} == expected
    # What `ovsnet plan` says of each host (pointed at it as the lab points it: netdev datapath) is what the picture marks.
    for host, t in tg.items():
        p = plan_live(checked, host, t)
        assert {c.resource for c in p.changes} | {b.resource for b in p.blockers} == {
            m["resource"] for m in g["graph"]["marks"] if m["host"] == host and m["from"] != "bridge"}
    nodes = {n["id"]: n for n in g["nodes"]}
    assert nodes["veth:node2/fp1"]["faded"] is True and nodes["docker_network:node2/web"]["ghost"] is True
    svg = tmp_path / "broken.svg"
    cli("graph", str(SEED), "--live", "--lab", "--prefix", lab.prefix, "-o", str(svg))
    text = svg.read_text()
    for word in ("DIFFERENT", "FOREIGN", "MISSING", "now access tag 300; the file: access tag 200", "DIFFERENT: trunk 10,100 (native 10)",
                 "on ovsnet&#39;s bridge br&#45;ovs but not in the file", "faded: not ovsnet&#39;s and not in the way"):
        assert word in text, word  # (Graphviz writes ' and - as character references)
    # Each mark's word once per marked node, and once in the legend.
    assert (text.count(">MISSING<"), text.count(">FOREIGN<"), text.count(">DIFFERENT<"), text.count(">EXTRA<")) == (2, 2, 3, 1)
    png = Path(os.environ.get("OVSNET_LIVE_PNG", tmp_path / "broken.png"))
    cli("graph", str(SEED), "--live", "--lab", "--prefix", lab.prefix, "-o", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
