"""`ovsnet lab up`: build the simulated network, then configure every host
with the very same apply code as `ovsnet up`, pointed at its namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ovsnet import apply
from ovsnet.errors import UsageError
from ovsnet.lab import build, endpoints, teardown
from ovsnet.lab import docker as lab_docker
from ovsnet.lab.names import Lab, LabNames, targets
from ovsnet.topology import Checked


def up(
    checked: Checked,
    prefix: str | None = None,
    lab_dir: Path | None = None,
    report: Callable[[str], None] = lambda _m: None,
    docker: bool = False,
    ssh: bool = False,
    configure: bool = True,
) -> Lab:
    """Build the lab and apply every host.

    docker=True: every host with Docker networks first gets a private
    dockerd in its namespace (and the local busybox image), and its
    Target.docker_host points at it, so that `ovsnet up`'s own code creates
    the networks through the Engine API. docker=False leaves Docker out: the
    plan notes that Docker is not reachable and applies the rest.

    ssh=True: an sshd in every host and a controller station (lab/ssh.py),
    so that Ansible can configure the hosts over real SSH. configure=False
    leaves the hosts as fresh machines (address still on the NIC) and the
    endpoints unplugged (`ovsnet lab attach` plugs them in afterwards).
    """
    names = LabNames.for_topology(checked.topology, prefix)
    if teardown.status(names.prefix, lab_dir).exists:
        # Checked here, not left to build(): a failure below destroys what was
        # made, and must never destroy a lab that was already there.
        raise UsageError(f"lab {names.prefix} already exists; `ovsnet lab down` it first")
    try:
        lab = build.build(checked.topology, prefix, lab_dir)
        report(f"lab {lab.prefix}: {len(lab.namespaces)} namespaces built")
        if docker:
            lab_docker.start(lab, report=report)
        # Hosts without a lab dockerd point at a socket that does not exist:
        # the lab never reaches the machine's own Docker.
        if ssh:
            from ovsnet.lab import fleet, ledger
            from ovsnet.lab import ssh as lab_ssh

            lab_ssh.start(lab, report)
            lab = ledger.load_lab(checked.topology, names.prefix, lab.lab_dir)
            (lab.lab_dir / fleet.INVENTORY_FILE).write_text(fleet.inventory_config(checked.topology.source, lab.prefix))
        if configure:
            for host, target in targets(lab).items():
                result = apply.up(checked, host, target, report=report)
                report(f"{host}: {len(result.applied)} changes applied in {result.seconds:.2f} s")
            endpoints.attach_endpoints(lab)
    except BaseException:
        # A half-built lab is of no use to anyone: remove all of it.
        teardown.destroy(names.prefix, lab_dir)
        raise
    return lab


def down(checked: Checked, prefix: str | None = None, lab_dir: Path | None = None) -> str:
    names = LabNames.for_topology(checked.topology, prefix)
    teardown.destroy(names.prefix, lab_dir)
    return names.prefix
