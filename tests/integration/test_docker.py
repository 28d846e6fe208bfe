"""Docker networks on the VLAN bridges, with a real Docker engine in the lab.

One lab of the seed topology for the whole module: each host gets a private
dockerd in its namespace (ovsnet.lab.docker), and `ovsnet up`'s own code
creates the networks through the Engine API. Containers are busybox running
`sleep`, from an image made locally (no registry is reachable).

If the engine cannot start these tests fail and say why: they never skip.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ovsnet import apply
from ovsnet.apply.target import Target
from ovsnet.backends.docker import Docker
from ovsnet.errors import BackendError, RefusedError
from ovsnet.lab import docker as lab_docker
from ovsnet.lab import names as lab_names
from ovsnet.lab import netns as netns_mod
from ovsnet.lab import run, teardown
from ovsnet.marks import DOCKER_OWNER_LABEL
from ovsnet.topology import Checked, addressing, load_checked
from tests.support.dockerlab import docker_processes, missing_for_engine

pytestmark = pytest.mark.root

SEED = Path(__file__).resolve().parents[2] / "topologies" / "seed.toml"


@dataclass
class DockerLab:
    checked: Checked
    lab: lab_names.Lab
    targets: dict[str, Target]
    clients: dict  # host -> docker.DockerClient of its lab dockerd

    def slice_of(self, host: str, vlan: str) -> ipaddress.IPv4Network:
        slices, _ = addressing.plan(self.checked.topology)
        return slices[(host, vlan)].network

    def networks(self, host: str):
        with Docker(self.targets[host].docker_host) as d:
            return d.read()


@pytest.fixture(scope="module")
def dlab(tmp_path_factory):
    missing = missing_for_engine()
    if missing:
        pytest.fail(f"the Docker tests need a real engine and busybox: {missing}")
    import docker

    checked = load_checked(SEED)
    prefix = netns_mod.unique_prefix("d")[:7]
    where = tmp_path_factory.mktemp("dk") / "lab"
    clients: dict = {}
    try:
        try:
            lab = run.up(checked, prefix, where, docker=True)
        except BackendError as exc:
            pytest.fail(f"the Docker engine could not start in the lab (this is a failure, not a skip):\n{exc}")
        targets = lab_names.targets(lab)
        for host in checked.topology.hosts:
            clients[host] = docker.DockerClient(base_url=targets[host].docker_host, timeout=60)
        yield DockerLab(checked, lab, targets, clients)
    finally:
        for c in clients.values():
            c.close()
        teardown.destroy(prefix, where)
        assert not netns_mod.listed(f"{prefix}-")
        assert docker_processes(f"/{prefix}-") == []
        assert not [m for m in lab_docker._mounts() if str(where) in m]
        assert not lab_docker._cgroup_namespaces(lab_names.LabNames(prefix))


@contextmanager
def containers(dl: DockerLab, *specs: tuple[str, str, str]):
    """Run ("host", "network", "name") containers for the block; always removed after."""
    made = []
    try:
        for host, network, name in specs:
            made.append(start(dl, host, network, name))
        yield made
    finally:
        for c in made:
            c.remove(force=True)


def start(dl: DockerLab, host: str, network: str, name: str, client=None):
    c = (client or dl.clients[host]).containers.run(lab_docker.IMAGE, ["sleep", "600"], name=name, network=network, detach=True)
    c.reload()
    return c


def address(container, network: str) -> str:
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def ping(container, addr: str, wait: int = 2) -> tuple[bool, str]:
    code, out = container.exec_run(["ping", "-c", "1", "-W", str(wait), addr])
    return code == 0, out.decode(errors="replace")


def ttl(output: str) -> int:
    m = re.search(r"ttl=(\d+)", output)
    assert m, output
    return int(m.group(1))


# --- the networks -------------------------------------------------------------------


def test_networks_on_the_vlan_bridges(dlab):
    topo = dlab.checked.topology
    for host in ("node1", "node2"):
        nets = dlab.networks(host)
        for name, bridge, vlan in (("web", "br-web", "web"), ("db", "br-db", "db")):
            n = nets[name]
            v = topo.vlans[vlan]
            assert n.driver == "bridge" and n.bridge == bridge, n
            assert n.subnet == str(v.subnet)
            assert n.gateway == (str(v.router) if v.router else None)
            assert n.ip_range == str(dlab.slice_of(host, vlan))
            assert n.mtu == v.mtu
            assert n.labels[DOCKER_OWNER_LABEL] == "seed" and n.owner == "seed"
        # inhibit_ipv4: the host has no address on the containers' bridges.
        out = subprocess.run(lab_names.exec_argv(dlab.lab, host, ["ip", "-4", "-o", "addr", "show", "dev", "br-web"]), capture_output=True, text=True, check=True).stdout
        assert out.strip() == ""
    # The two hosts hand out different ranges of one subnet.
    assert not dlab.slice_of("node1", "web").overlaps(dlab.slice_of("node2", "web"))


def test_second_up_changes_nothing(dlab):
    for host, target in dlab.targets.items():
        assert apply.drift(dlab.checked, host, target).empty, host
        result = apply.up(dlab.checked, host, target)
        assert result.applied == (), [c.line() for c in result.applied]


# --- packets ------------------------------------------------------------------------


def test_containers_on_web_ping_each_other_across_the_trunk(dlab):
    with containers(dlab, ("node1", "web", "trunk-a"), ("node2", "web", "trunk-b")) as (a, b):
        addr_a, addr_b = address(a, "web"), address(b, "web")
        assert ipaddress.ip_address(addr_a) in dlab.slice_of("node1", "web")
        assert ipaddress.ip_address(addr_b) in dlab.slice_of("node2", "web")
        ok, out = ping(a, addr_b)
        assert ok, out
        assert ttl(out) == 64  # same segment, no router on the way
        ok, out = ping(b, addr_a)
        assert ok, out
        # And the seed's test endpoint on node2's web bridge.
        ok, out = ping(a, "10.100.0.12")
        assert ok, out


def test_web_cannot_reach_db_and_hosts_only_through_the_router(dlab):
    specs = (("node1", "web", "iso-web"), ("node1", "db", "iso-db1"), ("node2", "db", "iso-db2"))
    with containers(dlab, *specs) as (web, db1, db2):
        # VLAN 100 cannot reach VLAN 200, on the same host or across the trunk.
        for other in (db1, db2):
            ok, out = ping(web, address(other, "db"), wait=1)
            assert not ok, out
        ok, out = ping(db1, address(db2, "db"))
        assert ok, out  # db itself works across the trunk
        # The seed routes mgmt and web: a web container reaches the hosts'
        # own addresses, one hop away (through the router, never directly).
        for host_addr in ("192.168.10.11", "192.168.10.12"):
            ok, out = ping(web, host_addr)
            assert ok, out
            assert ttl(out) == 63, out
        # db is not routed: its containers reach no host.
        for host_addr in ("192.168.10.11", "192.168.10.12"):
            ok, out = ping(db1, host_addr, wait=1)
            assert not ok, out
        # Without the router's web leg, web reaches no host either: there is no other path.
        rt = dlab.lab.names.router_ns
        leg = dlab.lab.names.router_leg(dlab.checked.topology.vlans["web"].id)
        subprocess.run(["ip", "-n", rt, "link", "set", leg, "down"], check=True)
        try:
            ok, out = ping(web, "192.168.10.11", wait=1)
            assert not ok, out
        finally:
            subprocess.run(["ip", "-n", rt, "link", "set", leg, "up"], check=True)


def test_twenty_containers_per_host_get_distinct_addresses_in_their_slice(dlab):
    import docker

    names = [(host, f"many-{host}-{i}") for host in ("node1", "node2") for i in range(20)]
    clients = {}

    def one(spec):
        host, name = spec
        # One client per thread: a requests session is not meant to be shared.
        client = docker.DockerClient(base_url=dlab.targets[host].docker_host, timeout=60)
        clients[name] = client
        return host, start(dlab, host, "web", name, client)

    made = []
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(one, spec) for spec in names]
            for f in futures:
                made.append(f.result())
        addrs = [ipaddress.ip_address(address(c, "web")) for _, c in made]
        assert len(addrs) == 40
        assert len(set(addrs)) == 40, sorted(addrs)
        for host, c in made:
            assert ipaddress.ip_address(address(c, "web")) in dlab.slice_of(host, "web"), (host, address(c, "web"))
        # The network lists them all: the names `down` would report.
        for host in ("node1", "node2"):
            assert set(dlab.networks(host)["web"].containers) == {n for h, n in names if h == host}
    finally:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda hc: hc[1].remove(force=True), made))
        for client in clients.values():
            client.close()


# --- down, and networks that are not ours ---------------------------------------------


def test_down_refuses_while_a_container_holds_a_network(dlab):
    checked, target = dlab.checked, dlab.targets["node1"]
    holder = start(dlab, "node1", "web", "holder")
    try:
        with pytest.raises(RefusedError) as err:
            apply.down(checked, "node1", target)
        msg = str(err.value)
        assert "holder" in msg and "docker-network:web" in msg, msg
        assert apply.drift(checked, "node1", target).empty  # nothing was changed
    finally:
        holder.remove(force=True)
    try:
        apply.down(checked, "node1", target)
        nets = dlab.networks("node1")
        assert "web" not in nets and "db" not in nets
        assert not any(n.owner == "seed" for n in nets.values())
    finally:
        apply.up(checked, "node1", target)  # the next tests want the host up
    assert apply.drift(checked, "node1", target).empty
    assert {"web", "db"} <= set(dlab.networks("node1"))


def test_foreign_network_with_the_same_name_blocks_up_unless_adopt(dlab):
    from ovsnet.apply import UpOptions

    checked, target = dlab.checked, dlab.targets["node2"]
    client = dlab.clients["node2"]
    client.networks.get("web").remove()  # ours, no containers
    foreign = client.networks.create("web", driver="bridge", options={"com.docker.network.bridge.name": "br-stranger"})
    try:
        with pytest.raises(RefusedError) as err:
            apply.up(checked, "node2", target)
        msg = str(err.value)
        assert "docker-network:web" in msg and "not ovsnet's" in msg, msg
        nets = dlab.networks("node2")
        assert nets["web"].id == foreign.id and nets["web"].owner is None  # left alone
        result = apply.up(checked, "node2", target, UpOptions(adopt=True))
        assert [c.resource for c in result.applied] == ["docker-network:web"]
    finally:
        # Whatever happened, leave node2 as the topology says.
        if dlab.networks("node2").get("web") is None or dlab.networks("node2")["web"].owner != "seed":
            for n in client.networks.list(names=["web"]):
                if n.name == "web":
                    n.remove()
            apply.up(checked, "node2", target)
    web = dlab.networks("node2")["web"]
    assert web.owner == "seed" and web.bridge == "br-web" and web.ip_range == str(dlab.slice_of("node2", "web"))
    assert apply.drift(checked, "node2", target).empty


# --- no engine ----------------------------------------------------------------------------


def test_unreachable_docker_is_a_clear_error(tmp_path):
    sock = tmp_path / "nothing.sock"
    with pytest.raises(BackendError) as err:
        Docker(f"unix://{sock}")
    msg = str(err.value)
    assert str(sock) in msg and "is dockerd running?" in msg


def test_inspect_answer_is_read_as_asked():
    from ovsnet.backends.docker import AUTO_SUBNET_LABEL, network_from_inspect

    info = {
        "Name": "web", "Id": "abc", "Driver": "bridge",
        "Options": {"com.docker.network.bridge.name": "br-web", "com.docker.network.driver.mtu": "9000"},
        "IPAM": {"Config": [{"Subnet": "fd00::/64", "Gateway": "fd00::1"}, {"Subnet": "10.100.0.0/24", "IPRange": "10.100.0.64/26", "Gateway": "10.100.0.1"}]},
        "Labels": {DOCKER_OWNER_LABEL: "seed"},
        "Containers": {"1": {"Name": "b"}, "2": {"Name": "a"}},
    }
    n = network_from_inspect(info)
    assert (n.bridge, n.subnet, n.gateway, n.ip_range, n.mtu, n.owner, n.containers) == ("br-web", "10.100.0.0/24", "10.100.0.1", "10.100.0.64/26", 9000, "seed", ("a", "b"))
    # A subnet Docker picked because none was asked reads back as none asked.
    auto = network_from_inspect({**info, "Labels": {AUTO_SUBNET_LABEL: "true"}, "IPAM": {"Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}})
    assert (auto.subnet, auto.gateway, auto.owner) == (None, None, None)
