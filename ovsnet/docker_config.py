"""`ovsnet docker-config`: the daemon.json settings of a flat-layout host (pure).

In the flat layout (the seed's first way: the NIC straight into a Linux
bridge) containers use Docker's default network, put on that bridge by the
daemon's own `"bridge"` setting (the seed's `dockerd -b br0`). ovsnet cannot
create that network through the API; it prints the settings instead: the
bridge, this host's slice of the segment as `"fixed-cidr"` (so two hosts on
one segment never hand out one address), the segment's router as the
containers' `"default-gateway"`, and the MTU. dockerd reads them only when
it starts.

In the vlan layout the Docker networks are ordinary networks that
`ovsnet up` creates through the Engine API: there is nothing to put in
daemon.json, and asking for it is a usage error that says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ovsnet.errors import UsageError
from ovsnet.topology import addressing
from ovsnet.topology.model import DEFAULT_MTU, Layout, Topology

DAEMON_JSON = "/etc/docker/daemon.json"


@dataclass(frozen=True)
class DockerConfig:
    host: str
    settings: dict[str, Any]  # the daemon.json keys, in the order they are printed
    notes: tuple[str, ...]  # what to do with them; for a person, not for the file

    @property
    def json(self) -> str:
        return json.dumps(self.settings, indent=2) + "\n"

    def text(self) -> str:
        """The JSON, then the notes as `#` lines (print the JSON to stdout, the notes to stderr, to redirect cleanly)."""
        return self.json + "".join(f"# {n}\n" for n in self.notes)


def daemon_settings(topo: Topology, host_name: str) -> dict[str, Any]:
    """The daemon.json keys for a flat-layout host: bridge, fixed-cidr, default-gateway, mtu."""
    return docker_config(topo, host_name).settings


def docker_config(topo: Topology, host_name: str) -> DockerConfig:
    if host_name not in topo.hosts:
        raise UsageError(f"no host named '{host_name}' in {topo.source}; hosts: {', '.join(topo.hosts)}")
    host = topo.hosts[host_name]
    if host.layout is not Layout.FLAT or host.flat is None:
        nets = [d.network for d in host.docker if d.network]
        what = f"its Docker networks ({', '.join(nets)})" if nets else "its Docker networks"
        raise UsageError(
            f"host {host_name} uses the vlan layout: {what} are created by `ovsnet up` through the Docker API "
            "on each VLAN's Linux bridge, so there is no daemon.json setting to make; "
            "docker-config is for flat-layout hosts"
        )
    flat = host.flat
    settings: dict[str, Any] = {"bridge": flat.bridge}
    notes: list[str] = []
    vlan = topo.vlans[flat.vlan] if flat.vlan else None
    if vlan is not None:
        slices, _ = addressing.plan(topo)
        sl = slices.get((host_name, vlan.name))
        if sl is not None:
            settings["fixed-cidr"] = str(sl.network)
        else:
            notes.append(f"VLAN {vlan.name} has no subnet: no fixed-cidr, so this host's containers may take addresses another host's take")
        if vlan.router is not None:
            settings["default-gateway"] = str(vlan.router)
        settings["mtu"] = vlan.mtu
        if vlan.subnet6 is not None:
            notes.append(f"VLAN {vlan.name}'s IPv6 subnet is not written here: a flat host's dockerd gets IPv4 keys only")
    else:
        settings["mtu"] = DEFAULT_MTU
        notes.append(f"the flat bridge names no VLAN (hosts.{host_name}.flat.vlan): no fixed-cidr or gateway can be computed")
    notes.append(f"merge these keys into {DAEMON_JSON} on {host_name} (drop any \"bip\": it cannot be combined with \"bridge\")")
    notes.append("restart dockerd for it to take effect (systemctl restart docker); running containers keep their old addresses until restarted")
    return DockerConfig(host_name, settings, tuple(notes))


def docker_config_text(topo: Topology, host_name: str) -> str:
    """What `ovsnet docker-config FILE --host NAME` prints: the JSON and what to do with it."""
    return docker_config(topo, host_name).text()
