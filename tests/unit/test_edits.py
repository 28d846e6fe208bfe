"""The planner on a host already configured, after an edit of the file: day-2 changes (#13).

Each edit is made to the seed's node1 and planned against node1 as it is
after a successful `up` (tests/unit/test_plan.py's `converged`).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ovsnet.backends.netlink.ops import NlAddAddress, NlDelAddress, NlPromoteSecondaries
from ovsnet.current import Address, Route
from ovsnet.kinds.docker_network import DockerCreateNetwork, DockerRemoveNetwork
from ovsnet.plan import planner
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.load import parse
from tests.unit.test_plan import SEED, converged


def edited(old: str, new: str, count: int = 1):
    text = SEED.read_text()
    assert text.count(old) >= count, old
    return parse(text.replace(old, new, count), str(SEED))


@pytest.fixture(scope="module")
def seed():
    return parse(SEED.read_text(), str(SEED))


@pytest.fixture(scope="module")
def before(seed):
    return converged(planner.desire(seed, seed.hosts["node1"]), seed)


def plan(topo, current):
    return planner.diff(planner.desire(topo, topo.hosts["node1"]), current)


def test_a_new_management_address_moves_the_host_again_safely(before):
    topo = edited('addresses = ["192.168.10.11/24"]', 'addresses = ["192.168.10.21/24"]')
    p = plan(topo, before)
    assert [c.line() for c in p.changes] == [
        "create  address:mgmt0/192.168.10.21/24  192.168.10.21/24",
        "delete  address:mgmt0/192.168.10.11/24  192.168.10.11/24",
    ]
    # The new address first, the old one last, and the same promise as the first move.
    add, remove = p.changes
    assert add.ops == (NlAddAddress("mgmt0", "192.168.10.21/24"),)
    # Same subnet: the old address is the primary, whose removal would take the new one (a secondary) with it.
    assert remove.ops == (NlPromoteSecondaries("mgmt0"), NlDelAddress("mgmt0", "192.168.10.11/24"))
    assert remove.undo == (NlAddAddress("mgmt0", "192.168.10.11/24"),)
    assert p.moves_from == ("mgmt0",)
    assert [c.describe() for c in p.checks] == ["the gateway check (192.168.10.1 on mgmt0, ARP)"]
    # What the NIC had before the first up stays what down puts back: nothing new is kept.
    assert "uplink" not in p.keep


def test_a_new_management_vlan_retags_the_port_then_checks_the_gateway(before):
    # The host's address moves to the web VLAN, tagged on the trunk, its gateway the web router.
    text = SEED.read_text().replace(
        'port = "mgmt0"\naddresses = ["192.168.10.11/24"]\ngateway = "192.168.10.1"',
        'port = "mgmt0"\nvlan = "web"\naddresses = ["10.100.0.50/24"]\ngateway = "10.100.0.1"', 1)
    topo = parse(text, str(SEED))
    p = plan(topo, before)
    lines = [c.line() for c in p.changes]
    assert lines[0] == "modify  port:br-ovs/mgmt0  access tag 10 (internal) -> access tag 100 (internal)"
    assert p.changes[0].phase is Phase.OVSDB
    assert "create  address:mgmt0/10.100.0.50/24  10.100.0.50/24" in lines
    assert "move    route:default  via 192.168.10.1 dev mgmt0 -> via 10.100.0.1 dev mgmt0" in lines
    assert lines[-1] == "delete  address:mgmt0/192.168.10.11/24  192.168.10.11/24"
    # Another subnet: nothing of the new one goes with the old address.
    assert p.changes[-1].ops == (NlDelAddress("mgmt0", "192.168.10.11/24"),)
    assert p.moves_from == ("mgmt0",)
    assert [c.describe() for c in p.checks] == ["the gateway check (10.100.0.1 on mgmt0, ARP)"]


def test_a_retagged_management_port_alone_is_checked_too(before):
    # Same address, another VLAN: only the OVS tag changes, and the gateway must still answer.
    text = SEED.read_text().replace('port = "mgmt0"\naddresses', 'port = "mgmt0"\nvlan = "web"\naddresses', 1)
    p = plan(parse(text, str(SEED)), before)
    assert [c.line() for c in p.changes] == ["modify  port:br-ovs/mgmt0  access tag 10 (internal) -> access tag 100 (internal)"]
    assert p.moves_from == ("mgmt0",)
    assert [c.describe() for c in p.checks] == ["the gateway check (192.168.10.1 on mgmt0, ARP)"]


def test_a_lease_on_the_port_is_never_taken_for_a_stale_address(before):
    linux = replace(before.linux, addresses=before.linux.addresses + (Address("mgmt0", "192.168.10.99/24", valid=600),))
    p = plan(parse(SEED.read_text(), str(SEED)), replace(before, linux=linux))
    assert p.changes == () and p.moves_from == ()


def test_an_unchanged_host_moves_nothing(seed, before):
    p = plan(seed, before)
    assert p.empty and p.checks == () and p.moves_from == ()


def test_a_vlan_added_to_the_trunk_is_one_port_change(before):
    text = SEED.read_text().replace("[router]", '[vlans.app]\nid = 300\nsubnet = "10.30.0.0/24"\n\n[router]', 1)
    text = text.replace('vlans = ["mgmt", "web", "db"]', 'vlans = ["mgmt", "web", "db", "app"]', 1)
    p = plan(parse(text, str(SEED)), before)
    assert [c.line() for c in p.changes] == [
        "modify  port:br-ovs/eth1  trunk 10,100,200, native 10 untagged -> trunk 10,100,200,300, native 10 untagged"]
    assert p.checks == () and p.moves_from == ()


def test_a_docker_bridge_retagged_to_another_network_removes_the_old_network_first(before):
    # br-db moves to the web VLAN's neighbour app (300) with a network of another name on the same bridge.
    text = SEED.read_text().replace("[router]", '[vlans.app]\nid = 300\nsubnet = "10.30.0.0/24"\n\n[router]', 1)
    text = text.replace('vlans = ["mgmt", "web", "db"]', 'vlans = ["mgmt", "web", "app"]', 1)
    text = text.replace('bridge = "br-db"\nvlan = "db"\nnetwork = "db"', 'bridge = "br-db"\nvlan = "app"\nnetwork = "app"', 1)
    text = text.replace('name = "db1"\nhost = "node1"\nvlan = "db"\naddress = "10.200.0.11/24"',
                        'name = "db1"\nhost = "node1"\nvlan = "app"\naddress = "10.30.0.11/24"')
    p = plan(parse(text, str(SEED)), before)
    docker = [c for c in p.changes if c.phase is Phase.DOCKER]
    assert [(c.action, c.resource) for c in docker] == [
        (Action.DELETE, "docker-network:db"), (Action.CREATE, "docker-network:app")]
    # Docker refuses a second network on one bridge: the old one goes before the new one comes.
    assert docker[0].ops == (DockerRemoveNetwork("db"),)
    assert isinstance(docker[1].ops[0], DockerCreateNetwork) and docker[1].ops[0].spec.bridge == "br-db"
    retag = next(c for c in p.changes if c.resource == "port:br-ovs/ovs-br-db")
    assert retag.line() == "modify  port:br-ovs/ovs-br-db  access tag 200 -> access tag 300"


def test_a_docker_network_resized_is_recreated(before):
    p = plan(edited("host_slice = 26            # 64 container", "host_slice = 27            # 64 container"), before)
    (c,) = p.changes
    assert c.action is Action.MODIFY and c.resource == "docker-network:web"
    assert c.ops[0] == DockerRemoveNetwork("web") and c.ops[1].spec.ip_range != before.docker["web"].ip_range


def test_an_access_port_added_and_removed(before, seed):
    text = SEED.read_text().replace('[hosts.node1.management]', '[[hosts.node1.access_ports]]\ninterface = "eth9"\nvlan = "web"\n\n[hosts.node1.management]', 1)
    p = plan(parse(text, str(SEED)), before)
    assert [c.line() for c in p.changes] == ["create  port:br-ovs/eth9  access tag 100"]
    # Once made, taking it out of the file deletes it again.
    from ovsnet.current import OvsInterface, OvsPort
    from ovsnet.marks import OWNER_KEY, ROLE_KEY

    port = OvsPort("eth9", "br-ovs", 100, frozenset(), "access", (OvsInterface("eth9", "", 7),), {OWNER_KEY: "seed", ROLE_KEY: "access"})
    ovs = replace(before.ovs, ports={**before.ovs.ports, "eth9": port})
    p = plan(seed, replace(before, ovs=ovs))
    assert [c.line() for c in p.changes] == ["delete  port:br-ovs/eth9  access tag 100"]


def test_a_changed_gateway_moves_the_default_route_and_is_checked(before):
    routes = before.linux.routes + (Route("192.168.20.0/24", "mgmt0", None, 0, "kernel"),)
    current = replace(before, linux=replace(before.linux, routes=routes))
    topo = edited('gateway = "192.168.10.1"', 'gateway = "192.168.10.254"')
    p = plan(topo, current)
    assert [c.line() for c in p.changes] == ["move    route:default  via 192.168.10.1 dev mgmt0 -> via 192.168.10.254 dev mgmt0"]
    assert p.moves_from == ("mgmt0",)
    assert [c.describe() for c in p.checks] == ["the gateway check (192.168.10.254 on mgmt0, ARP)"]
