"""Day-2 changes on one host through the entry point a real host uses (#13, items 5 and 6).

A lab built with `--no-apply --docker` gives fresh simulated hosts; node1 is
then configured and edited only with `ovsnet plan/up/down FILE --host node1
--netns NS --db DB --state-dir DIR`, as an operator would on a real host
(no --resolv-conf, no --root: the namespace's own files by default). Every
kind of edit the lab converges is made here too: VLANs on the trunk, Docker
bridges added, retagged, resized and removed, an access port, the router's
VLANs (nothing for the host to do), and the host's own address and VLAN
moved again through the first move's safe order and gateway check (and
rolled back when the gateway stays silent). This machine's /etc/resolv.conf
is checked byte for byte after every run.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ovsnet.lab import docker as lab_docker
from ovsnet.lab import netns, run, teardown
from ovsnet.lab.ledger import load_lab
from ovsnet.lab.names import default_lab_dir, targets
from ovsnet.topology import load_checked
from tests.support.commands import sh
from tests.support.day2 import Edits
from tests.support.dockerlab import missing_for_engine

pytestmark = pytest.mark.root

OVSNET = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "ovsnet")
RESOLV = Path("/etc/resolv.conf")


class Host:
    def __init__(self, file: Edits, prefix: str):
        self.file, self.prefix = file, prefix
        lab = load_lab(load_checked(file.path).topology, prefix)
        t = targets(lab)["node1"]
        self.ns, self.db = t.netns, t.ovsdb
        self.where = ["--host", "node1", "--netns", t.netns, "--db", t.ovsdb, "--state-dir", t.state_dir]
        self.env = {**os.environ, "DOCKER_HOST": lab_docker.docker_host(lab, "node1") or ""}
        self.machine_resolv = RESOLV.read_bytes() if RESOLV.exists() else None

    def ovsnet(self, verb: str, *args: str) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([OVSNET, verb, str(self.file.path), *self.where, *args], capture_output=True, text=True,
                           timeout=300, env=self.env)
        # Never this machine's: whatever the run did, /etc/resolv.conf is as it was, byte for byte.
        assert (RESOLV.read_bytes() if RESOLV.exists() else None) == self.machine_resolv
        return p

    def pending(self) -> list[str]:
        """`plan --detailed-exitcode --json`: the changes (exit 1), or [] (exit 0)."""
        p = self.ovsnet("plan", "--detailed-exitcode", "--json")
        assert p.returncode in (0, 1), p.stderr
        changes = [f"{c['action']} {c['resource']}" for c in json.loads(p.stdout)["changes"]]
        assert (p.returncode == 1) == bool(changes)
        return changes

    def up(self, *args: str) -> str:
        p = self.ovsnet("up", *args)
        assert p.returncode == 0, p.stderr
        assert self.pending() == []
        return p.stdout

    def addresses(self, ifname: str) -> set[str]:
        (entry,) = json.loads(sh("ip", "-n", self.ns, "-j", "addr", "show", "dev", ifname))
        return {f"{a['local']}/{a['prefixlen']}" for a in entry["addr_info"] if a.get("scope") == "global"}

    def default_route(self) -> tuple[str, str]:
        (r,) = [r for r in json.loads(sh("ip", "-n", self.ns, "-j", "route")) if r["dst"] == "default"]
        return r["gateway"], r["dev"]


@pytest.fixture(scope="module")
def node1(tmp_path_factory):
    missing = missing_for_engine()
    if missing:
        pytest.fail(f"these tests need a real engine and busybox: {missing}")
    prefix = netns.unique_prefix("od2")
    file = Edits(tmp_path_factory.mktemp("he") / "day2.toml")
    try:
        run.lab_up(load_checked(file.path), prefix, docker=True, configure=False)
        yield Host(file, prefix)
    finally:
        teardown.destroy(prefix, default_lab_dir(prefix))
        assert not netns.listed(f"{prefix}-")


def test_first_up_writes_the_namespaces_resolv_conf_only(node1):
    own = Path(f"/etc/netns/{node1.ns}/resolv.conf")
    before = own.read_text()
    assert "nameserver" not in before
    changes = node1.pending()
    assert "modify dns:nameservers" in changes and "create bridge:br-ovs" in changes
    out = node1.up()
    assert "changes applied and verified" in out
    assert own.read_text() == before + "nameserver 192.168.10.1\n"
    assert node1.addresses("mgmt0") == {"192.168.10.11/24"} and node1.addresses("eth1") == set()
    node1.saved = before  # type: ignore[attr-defined]


def test_a_vlan_a_docker_bridge_and_an_access_port_added(node1):
    # A NIC plugged in for the access port (a veth: this machine's kernel has no dummy links).
    sh("ip", "-n", node1.ns, "link", "add", "eth3", "type", "veth", "peer", "name", "eth3-far")
    sh("ip", "-n", node1.ns, "link", "set", "eth3", "up")
    node1.file.edit('vlans = ["mgmt", "web", "db"]', 'vlans = ["mgmt", "web", "db", "app"]')
    node1.file.edit('[[hosts.node1.docker]]\nbridge = "br-db"', '[[hosts.node1.docker]]\nbridge = "br-app"\nvlan = "app"\nnetwork = "app"\n\n[[hosts.node1.docker]]\nbridge = "br-db"')
    node1.file.edit("[hosts.node1.management]", '[[hosts.node1.access_ports]]\ninterface = "eth3"\nvlan = "web"\n\n[hosts.node1.management]')
    assert node1.pending() == [
        "create link:br-app", "create veth:ovs-br-app/lnx-br-app", "modify link:lnx-br-app",
        "modify port:br-ovs/eth1", "create port:br-ovs/ovs-br-app", "create port:br-ovs/eth3",
        "create docker-network:app",
    ]
    node1.up()
    assert sh("ovs-vsctl", f"--db={node1.db}", "get", "Port", "eth3", "tag").strip() == "100"


def test_a_docker_bridge_retagged_a_network_resized_a_vlan_and_a_port_removed(node1):
    node1.file.edit('[vlans.app]', '[vlans.stor]\nid = 400\nsubnet = "10.40.0.0/24"\n\n[vlans.app]')
    node1.file.edit('vlans = ["mgmt", "web", "db", "app"]', 'vlans = ["mgmt", "web", "db", "stor"]')
    node1.file.edit('bridge = "br-app"\nvlan = "app"\nnetwork = "app"', 'bridge = "br-app"\nvlan = "stor"\nnetwork = "stor"')
    node1.file.edit('router = "10.100.0.1"\nhost_slice = 26', 'router = "10.100.0.1"\nhost_slice = 27')
    node1.file.edit('[[hosts.node1.access_ports]]\ninterface = "eth3"\nvlan = "web"\n\n', "")
    assert node1.pending() == [
        "modify port:br-ovs/eth1", "modify port:br-ovs/ovs-br-app", "delete port:br-ovs/eth3",
        "delete docker-network:app", "modify docker-network:web", "create docker-network:stor",
    ]
    node1.up()
    node1.file.edit('[[hosts.node1.docker]]\nbridge = "br-app"\nvlan = "stor"\nnetwork = "stor"\n\n', "")
    gone = node1.pending()
    assert gone[:3] == ["delete port:br-ovs/ovs-br-app", "delete docker-network:stor", "delete link:br-app"]
    # The veth pair goes with either end (the planner names the end the kernel listed first).
    assert gone[3:] in (["delete link:ovs-br-app"], ["delete link:lnx-br-app"])
    node1.up()
    assert not {"br-app", "ovs-br-app", "lnx-br-app"} & {link["ifname"] for link in json.loads(sh("ip", "-n", node1.ns, "-j", "link"))}


def test_the_routers_vlans_are_nothing_for_a_host_to_do(node1):
    node1.file.edit('[router]\nvlans = ["mgmt", "web"]', '[router]\nvlans = ["mgmt", "web", "app"]')
    assert node1.pending() == []


def test_a_new_management_address_moves_the_host_again_with_the_gateway_check(node1):
    node1.file.edit('addresses = ["192.168.10.11/24"]', 'addresses = ["192.168.10.21/24"]')
    plan = node1.ovsnet("plan")
    assert "create  address:mgmt0/192.168.10.21/24" in plan.stdout and "delete  address:mgmt0/192.168.10.11/24" in plan.stdout
    assert "After the move ovsnet checks that the gateway answers, and puts mgmt0 back as it was if not." in plan.stdout
    node1.up("--gateway-timeout", "30")
    assert node1.addresses("mgmt0") == {"192.168.10.21/24"}
    assert node1.default_route() == ("192.168.10.1", "mgmt0")


def test_a_new_management_vlan_retags_the_port_and_moves_the_address(node1):
    # The host moves to the web VLAN (tagged on the trunk); the lab's router answers there at 10.100.0.1.
    node1.file.edit('[hosts.node1.management]\naddresses = ["192.168.10.21/24"]\ngateway = "192.168.10.1"',
                    '[hosts.node1.management]\nvlan = "web"\naddresses = ["10.100.0.21/24"]\ngateway = "10.100.0.1"')
    assert node1.pending()[:1] == ["modify port:br-ovs/mgmt0"]
    node1.up("--gateway-timeout", "30")
    assert sh("ovs-vsctl", f"--db={node1.db}", "get", "Port", "mgmt0", "tag").strip() == "100"
    assert node1.addresses("mgmt0") == {"10.100.0.21/24"} and node1.default_route() == ("10.100.0.1", "mgmt0")
    assert subprocess.run(["ip", "netns", "exec", node1.ns, "ping", "-c", "2", "-W", "2", "192.168.10.12"],
                          capture_output=True).returncode == 0  # node2, through the router


def test_a_silent_gateway_puts_everything_back(node1):
    before = (node1.addresses("mgmt0"), node1.default_route(), sh("ovs-vsctl", f"--db={node1.db}", "get", "Port", "mgmt0", "tag").strip())
    node1.file.edit('vlan = "web"\naddresses = ["10.100.0.21/24"]\ngateway = "10.100.0.1"',
                    'addresses = ["192.168.10.31/24"]\ngateway = "192.168.10.254"')  # back on mgmt, a gateway nobody answers for
    p = node1.ovsnet("up", "--gateway-timeout", "2")
    assert p.returncode == 4, p.stderr
    assert "gateway 192.168.10.254 did not answer on mgmt0 within 2 s" in p.stderr and "rolled back" in p.stderr
    assert (node1.addresses("mgmt0"), node1.default_route(), sh("ovs-vsctl", f"--db={node1.db}", "get", "Port", "mgmt0", "tag").strip()) == before
    node1.file.edit('addresses = ["192.168.10.31/24"]\ngateway = "192.168.10.254"', 'addresses = ["192.168.10.11/24"]\ngateway = "192.168.10.1"')
    node1.up("--gateway-timeout", "30")
    assert node1.addresses("mgmt0") == {"192.168.10.11/24"}


def test_down_puts_the_host_and_its_resolv_conf_back(node1):
    p = node1.ovsnet("down")
    assert p.returncode == 0, p.stderr
    assert Path(f"/etc/netns/{node1.ns}/resolv.conf").read_text() == node1.saved  # type: ignore[attr-defined]
    assert node1.addresses("eth1") == {"192.168.10.11/24"} and node1.default_route() == ("192.168.10.1", "eth1")
    assert sh("ovs-vsctl", f"--db={node1.db}", "list-br").strip() == ""
