"""The lab as an Ansible inventory: how the controller reaches each simulated
host, and where that host's ovsnet finds its OVSDB, files and venv.

Every lab host shares this machine's filesystem, so each gets its own
directory under <lab>/fleet/<host>/ (venv, wheels, topology copy, Ansible's
remote temp and async dirs) and its own OVSDB socket, state dir and
resolv.conf: the modules are pointed at the simulated host exactly as
`ovsnet lab up` points the apply code at it (names.targets).

The inventory plugin (ansible/plugins/inventory/topology.py, option `lab`)
and `ovsnet lab inventory` both read this, so there is one source.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ovsnet.errors import UsageError
from ovsnet.lab import ssh as lab_ssh
from ovsnet.lab.names import Lab, targets

FLEET_DIR = "fleet"
INVENTORY_FILE = "inventory.ovsnet.yml"


def host_dir(lab: Lab, host: str) -> Path:
    return lab.lab_dir / FLEET_DIR / host


def connection_vars(lab: Lab) -> dict[str, Any]:
    """What every host shares: the controller's key, the lab's own known_hosts, its own control sockets."""
    fleet = lab_ssh.load(lab)
    if fleet is None:
        raise UsageError(f"lab {lab.prefix} was built without --ssh: `ovsnet lab down` it and `ovsnet lab up FILE --ssh`")
    return {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(fleet.key),
        # Never root's own ~/.ssh/known_hosts, and never another lab's
        # control socket: two labs may use the very same addresses.
        "ansible_ssh_common_args": (f"-o UserKnownHostsFile={fleet.known_hosts} -o GlobalKnownHostsFile=/dev/null "
                                    "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"),
        "ansible_control_path_dir": str(fleet.control_dir),
        # The lab has no package index: ovsnet goes to the hosts as wheels only,
        # built for this Python (the wheelhouse's compiled wheels are), so the
        # hosts' venvs are made from the very interpreter this one runs on.
        "ovsnet_offline": True,
        "ovsnet_python": getattr(sys, "_base_executable", sys.executable),
        # The lab plugs its test endpoints in after the rollout (`ovsnet lab attach`):
        # the rollout's verify leaves them out, `ovsnet verify --lab` has them all.
        "ovsnet_verify_endpoints": False,
    }


def host_vars(lab: Lab) -> dict[str, dict[str, Any]]:
    """Per host: ansible_host and the ovsnet_* variables the playbooks pass to the modules."""
    fleet = lab_ssh.load(lab)
    if fleet is None:
        raise UsageError(f"lab {lab.prefix} was built without --ssh: `ovsnet lab down` it and `ovsnet lab up FILE --ssh`")
    out: dict[str, dict[str, Any]] = {}
    for host, t in targets(lab).items():
        st = fleet.stations.get(host)
        if st is None:
            continue  # no management address: nothing to SSH to
        d = host_dir(lab, host)
        out[host] = {
            "ansible_host": st.address,
            "ansible_remote_tmp": str(d / "tmp"),
            "ansible_async_dir": str(d / "async"),
            "ovsnet_dir": str(d),
            "ovsnet_venv": str(d / "venv"),
            "ovsnet_db": t.ovsdb,
            "ovsnet_state_dir": t.state_dir,
            "ovsnet_resolv_conf": t.resolv_conf,
            "ovsnet_datapath": t.datapath,
            "ovsnet_docker_host": t.docker_host,
            "ovsnet_ovs_timeout": t.ovs_timeout,
        }
    return out


def inventory_config(topology: str, prefix: str) -> str:
    """The inventory plugin's config file for this lab (what `lab up --ssh` writes and `lab inventory` prints)."""
    if not topology.startswith("<"):
        topology = str(Path(topology).resolve())
    return (
        "# ovsnet lab inventory: the hosts of the topology, reached over the lab's SSH\n"
        "plugin: ovsnet.fleet.topology\n"
        f"topology: {topology}\n"
        f"lab: {prefix}\n"
    )
