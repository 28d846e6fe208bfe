"""Topology texts of the tests and benchmarks, written once from the seed.

Every integration test, hardening test and benchmark applies the seed's
layout (topologies/seed.toml) to one simulated host, node1. Each caller
picks its own topology name, because ovsnet marks what it creates with that
name and two runs must never take each other's objects for their own; a few
tests also vary the gateway or the VLAN of br-db.
"""

from __future__ import annotations

# labhost wires the simulated host with these, so the topology and the host agree.
MGMT_GATEWAY = "192.168.10.1"
NODE1_ADDRESS = "192.168.10.11/24"

SEED_VLANS = """\
[vlans.mgmt]
id = 10
subnet = "192.168.10.0/24"
router = "192.168.10.1"
[vlans.web]
id = 100
subnet = "10.100.0.0/24"
router = "10.100.0.1"
[vlans.db]
id = 200
subnet = "10.200.0.0/24"
"""

SEED_ROUTER = """\
[router]
vlans = ["mgmt", "web"]
"""


def node1(name: str, *, gateway: str = MGMT_GATEWAY, db_vlan: str = "db", router: bool = False, mgmt_port: bool = False) -> str:
    """The seed's node1 alone: eth1 trunked into br-ovs, br-web and br-db for Docker.

    The bridge is on the netdev datapath because the simulated host's
    ovs-vswitchd is userspace-only. `router` adds the seed's [router];
    `mgmt_port` names the management port mgmt0 rather than relying on the
    default (the hardening tests pin every name they later look for).
    """
    port = 'port = "mgmt0"\n' if mgmt_port else ""
    return f'\nname = "{name}"\n{SEED_VLANS}\n' + (SEED_ROUTER + "\n" if router else "") + f"""\
[hosts.node1]
bridge = {{ name = "br-ovs", datapath = "netdev" }}
[[hosts.node1.uplinks]]
nic = "eth1"
vlans = ["mgmt", "web", "db"]
native_vlan = "mgmt"
[hosts.node1.management]
{port}addresses = ["{NODE1_ADDRESS}"]
gateway = "{gateway}"
dns = ["192.168.10.1"]
[[hosts.node1.docker]]
bridge = "br-web"
vlan = "web"
[[hosts.node1.docker]]
bridge = "br-db"
vlan = "{db_vlan}"
"""


def as_template(text: str, *fields: str) -> str:
    """`text` as a str.format template whose only fields are `fields`.

    Tests keep TOPOLOGY constants that they `.format(tag=...)`; TOML's own
    braces (inline tables) must then be doubled.
    """
    out = text.replace("{", "{{").replace("}", "}}")
    for f in fields:
        out = out.replace("{{" + f + "}}", "{" + f + "}")
    return out


def tagged_ports(n: int, name: str, first_vlan: int, bridge: str = "br-ovs") -> str:
    """node1 with N Docker bridges b<i>, each on its own VLAN first_vlan + i: N tagged OVS access ports.

    No DNS and no router, so that what is timed is the bridges, veths and ports.
    """
    out = [f'name = "{name}"', "[vlans.mgmt]", "id = 10", 'subnet = "192.168.10.0/24"', f'router = "{MGMT_GATEWAY}"']
    for i in range(n):
        out += [f"[vlans.v{i}]", f"id = {first_vlan + i}"]
    out += [
        "[hosts.node1]",
        f'bridge = {{ name = "{bridge}", datapath = "netdev" }}',
        "[[hosts.node1.uplinks]]",
        'nic = "eth1"',
        "vlans = [" + ", ".join(['"mgmt"'] + [f'"v{i}"' for i in range(n)]) + "]",
        'native_vlan = "mgmt"',
        "[hosts.node1.management]",
        f'addresses = ["{NODE1_ADDRESS}"]',
        f'gateway = "{MGMT_GATEWAY}"',
    ]
    for i in range(n):
        out += ["[[hosts.node1.docker]]", f'bridge = "b{i}"', f'vlan = "v{i}"']
    return "\n".join(out) + "\n"


# The benchmarks' labs (bench/load.py, bench/lab_converge.py): K hosts trunked to one lab switch.
LAB_VLANS = (("mgmt", 10, "192.168.10"), ("web", 100, "10.100.0"), ("db", 200, "10.200.0"), ("app", 300, "10.30.0"))
LAB_TRUNK = 'vlans = ["mgmt", "web", "db", "app"]'


def lab_hosts(k: int, name: str, *, extra_vlans: tuple[tuple[str, int, str], ...] = (), host_slice: int | None = None) -> str:
    """K hosts, each trunking LAB_TRUNK with Docker networks on web, db and app and an endpoint on web;
    extra_vlans are declared and left for an edit to use."""
    out = [f'name = "{name}"']
    for vlan, vid, net in LAB_VLANS + extra_vlans:
        out += [f"[vlans.{vlan}]", f"id = {vid}", f'subnet = "{net}.0/24"', f'router = "{net}.1"']
        if host_slice is not None:
            out.append(f"host_slice = {host_slice}")
    out += ["[router]", 'vlans = ["mgmt", "web", "app"]']
    for h in range(1, k + 1):
        out += [
            f"[hosts.node{h}]",
            'bridge = { name = "br-ovs", datapath = "netdev" }',
            f"[[hosts.node{h}.uplinks]]",
            'nic = "eth1"',
            LAB_TRUNK,
            'native_vlan = "mgmt"',
            f"[hosts.node{h}.management]",
            f'addresses = ["192.168.10.{10 + h}/24"]',
            'gateway = "192.168.10.1"',
            'dns = ["192.168.10.1"]',
        ]
        for v in ("web", "db", "app"):
            out += [f"[[hosts.node{h}.docker]]", f'bridge = "br-{v}"', f'vlan = "{v}"', f'network = "{v}"']
    for h in range(1, k + 1):
        out += ["[[endpoints]]", f'name = "web{h}"', f'host = "node{h}"', 'vlan = "web"', f'address = "10.100.0.{100 + h}/24"']
    out += ["[lab]", 'switch = "switch"']
    for h in range(1, k + 1):
        out += ["[[lab.cables]]", f'ends = ["node{h}:eth1", "switch"]']
    return "\n".join(out) + "\n"


def growing(names: list[str], vlans: list[str]) -> str:
    """Hosts named `names`, each trunking web and db with a Docker network on each, after the
    given [vlans.*] lines: for the property that appending a host never moves a slice."""
    out = ['name = "grow"', *vlans]
    for n in names:
        out += [
            f"[hosts.{n}]",
            f"[[hosts.{n}.uplinks]]", 'nic = "eth1"', 'vlans = ["web", "db"]',
            f"[[hosts.{n}.docker]]", 'bridge = "br-web"', 'vlan = "web"', 'network = "web"',
            f"[[hosts.{n}.docker]]", 'bridge = "br-db"', 'vlan = "db"', 'network = "db"',
        ]
    return "\n".join(out) + "\n"


def two_nic_bond(name: str) -> str:
    """node1 alone, its uplink an OVS bond of eth1 and eth2 (no LACP) trunking the management VLAN natively."""
    return f"""name = "{name}"
[vlans.mgmt]
id = 10
subnet = "192.168.10.0/24"
router = "{MGMT_GATEWAY}"

[hosts.node1]
bridge = {{ name = "br-ovs", datapath = "netdev" }}

[[hosts.node1.uplinks]]
nics = ["eth1", "eth2"]
bond = "bond0"
vlans = ["mgmt"]
native_vlan = "mgmt"

[hosts.node1.management]
addresses = ["{NODE1_ADDRESS}"]
gateway = "{MGMT_GATEWAY}"
"""
