"""What the day-2 tests share (#13): a three-host topology, and the identity of everything a lab has.

The topology: node1 and node2 trunk mgmt, web and db to the lab switch, each
with Docker bridges for web and db; node2 also trunks mgmt and web over a
direct cable to node3, which has only web (a transit through node2, so that
a VLAN taken off one trunk changes who reaches whom). VLAN app (300) is
declared for the edits to use.

`identities` reads, with ovs-vsctl and ip (never ovsnet), the UUID of every
OVSDB row and the ifindex of every link of the lab's hosts, switch and
router: an edit must leave every one of them as it was, except those it
names.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import Mapping

from .commands import sh

DAY2 = '''\
name = "day2"

[vlans.mgmt]
id = 10
subnet = "192.168.10.0/24"
router = "192.168.10.1"

[vlans.web]
id = 100
subnet = "10.100.0.0/24"
router = "10.100.0.1"
host_slice = 26

[vlans.db]
id = 200
subnet = "10.200.0.0/24"
host_slice = 26

[vlans.app]
id = 300
subnet = "10.30.0.0/24"
router = "10.30.0.1"
host_slice = 26

[router]
vlans = ["mgmt", "web"]

[hosts.node1]
bridge = { name = "br-ovs", datapath = "netdev" }
[[hosts.node1.uplinks]]
nic = "eth1"
vlans = ["mgmt", "web", "db"]
native_vlan = "mgmt"
[hosts.node1.management]
addresses = ["192.168.10.11/24"]
gateway = "192.168.10.1"
dns = ["192.168.10.1"]
[[hosts.node1.docker]]
bridge = "br-web"
vlan = "web"
network = "web"
[[hosts.node1.docker]]
bridge = "br-db"
vlan = "db"
network = "db"

[hosts.node2]
bridge = { name = "br-ovs", datapath = "netdev" }
[[hosts.node2.uplinks]]
nic = "eth1"
vlans = ["mgmt", "web", "db"]
native_vlan = "mgmt"
[[hosts.node2.uplinks]]
nic = "eth2"
vlans = ["mgmt", "web"]
native_vlan = "mgmt"
[hosts.node2.management]
addresses = ["192.168.10.12/24"]
gateway = "192.168.10.1"
dns = ["192.168.10.1"]
[[hosts.node2.docker]]
bridge = "br-web"
vlan = "web"
network = "web"
[[hosts.node2.docker]]
bridge = "br-db"
vlan = "db"
network = "db"

[hosts.node3]
bridge = { name = "br-ovs", datapath = "netdev" }
[[hosts.node3.uplinks]]
nic = "eth1"
vlans = ["mgmt", "web"]
native_vlan = "mgmt"
[hosts.node3.management]
addresses = ["192.168.10.13/24"]
gateway = "192.168.10.1"
dns = ["192.168.10.1"]

[[endpoints]]
name = "web1"
host = "node1"
vlan = "web"
address = "10.100.0.11/24"

[[endpoints]]
name = "web2"
host = "node2"
vlan = "web"
address = "10.100.0.12/24"

[[endpoints]]
name = "db1"
host = "node1"
vlan = "db"
address = "10.200.0.11/24"

[[endpoints]]
name = "db2"
host = "node2"
vlan = "db"
address = "10.200.0.12/24"

[[endpoints]]
name = "web3"
host = "node3"
vlan = "web"
address = "10.100.0.13/24"
attach = "ovs"

[verify]
probe_image = "local/busybox:1"

[lab]
switch = "switch"

[[lab.cables]]
ends = ["node1:eth1", "switch"]

[[lab.cables]]
ends = ["node2:eth1", "switch"]

[[lab.cables]]
ends = ["node2:eth2", "node3:eth1"]
'''


class Edits:
    """The topology file of a run, edited in place by exact text replacements."""

    def __init__(self, path: Path, text: str = DAY2):
        self.path = path
        self.text = text
        path.write_text(text)

    def edit(self, old: str, new: str, count: int = 1) -> None:
        assert self.text.count(old) >= count, f"not in the topology {count} times: {old!r}"
        self.text = self.text.replace(old, new, count)
        self.path.write_text(self.text)

    def host_section(self, host: str, extra: str) -> None:
        """Add lines at the end of [hosts.HOST]'s own table (before its first sub-table)."""
        self.edit(f"[hosts.{host}]\nbridge = {{ name = \"br-ovs\", datapath = \"netdev\" }}\n",
                  f"[hosts.{host}]\nbridge = {{ name = \"br-ovs\", datapath = \"netdev\" }}\n{extra}")


def _rows(remote: str, table: str) -> dict[str, str]:
    raw = json.loads(sh("ovs-vsctl", f"--db={remote}", "--timeout=30", "--format=json", "--columns=_uuid,name", "list", table))
    return {row[1]: row[0][1] for row in raw["data"]}


def identities(ovs: Mapping[str, str], namespaces: Mapping[str, str]) -> dict[str, str]:
    """node -> OVSDB rows (by table and name) and links (by name): their UUIDs and ifindexes.

    ovs: node -> its OVSDB remote; namespaces: node -> its namespace.
    """
    out: dict[str, str] = {}
    for node, remote in ovs.items():
        for table in ("Bridge", "Port", "Interface"):
            for name, uuid in _rows(remote, table).items():
                out[f"{node} {table} {name}"] = uuid
    for node, ns in namespaces.items():
        for link in json.loads(sh("ip", "-n", ns, "-j", "link", "show") or "[]"):
            out[f"{node} link {link['ifname']}"] = str(link["ifindex"])
    return out


def docker_networks(docker_host: str) -> dict[str, str]:
    """Network name -> id on one lab dockerd."""
    import docker

    with closing(docker.DockerClient(base_url=docker_host, timeout=30)) as client:
        return {n["Name"]: n["Id"] for n in client.api.networks()}


def same_except(before: Mapping[str, str], after: Mapping[str, str], gone: set[str] = frozenset(), new: set[str] = frozenset()) -> None:
    """Everything of `before` is in `after` with the same identity, except what is named as gone; only `new` is new."""
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    assert changed == [], f"recreated (identity changed): {changed}"
    assert sorted(set(before) - set(after)) == sorted(gone), "gone"
    assert sorted(set(after) - set(before)) == sorted(new), "new"
