"""`ovsnet lab up`: build the simulated network, then configure every host
with the very same apply code as `ovsnet up`, pointed at its namespace; on a
lab already built, converge it to the (edited) file instead (lab/converge.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ovsnet import apply
from ovsnet.errors import UsageError
from ovsnet.lab import build, endpoints, ledger, teardown
from ovsnet.lab import docker as lab_docker
from ovsnet.lab.converge import AfterChange, Converged, converge, host_hook
from ovsnet.lab.names import Lab, LabNames, targets
from ovsnet.lab.observe import load_built
from ovsnet.topology import Checked


@dataclass(frozen=True)
class Outcome:
    lab: Lab
    converged: Converged | None = None  # None: built from nothing


def up(
    checked: Checked,
    prefix: str | None = None,
    lab_dir: Path | None = None,
    report: Callable[[str], None] = lambda _m: None,
    docker: bool = False,
    ssh: bool = False,
    configure: bool = True,
) -> Lab:
    """Build the lab and apply every host, or converge the lab already built (see lab_up)."""
    return lab_up(checked, prefix, lab_dir, report, docker=docker, ssh=ssh, configure=configure).lab


def lab_up(
    checked: Checked,
    prefix: str | None = None,
    lab_dir: Path | None = None,
    report: Callable[[str], None] = lambda _m: None,
    docker: bool = False,
    ssh: bool = False,
    configure: bool = True,
    after_change: AfterChange | None = None,
) -> Outcome:
    """Build the lab and apply every host; a lab already built is converged to the file instead.

    Converging (lab/converge.py) makes only what the edit changed: the lab's
    own objects, then each host through `ovsnet up`'s code (a host with
    nothing to do is left alone), then the removals. Nothing of a lab that
    was already there is ever destroyed by a failure here.

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
    topo = checked.topology
    st = teardown.status(names.prefix, lab_dir)
    if st.exists:
        # Checked here, not left to build(): a failure below destroys what was
        # made, and must never destroy a lab that was already there.
        if not st.complete:
            raise UsageError(f"lab {names.prefix} exists but was not completely built; `ovsnet lab down {topo.source}` it first")
        built = load_built(names.prefix, lab_dir, topo.name, topo.source)
        done = converge(checked, built, docker=docker, ssh=ssh, configure=configure, report=report, after_change=after_change)
        return Outcome(done.lab, done)
    try:
        lab = build.build(checked.topology, prefix, lab_dir)
        report(f"lab {lab.prefix}: {len(lab.namespaces)} namespaces built")
        if docker:
            started = lab_docker.start(lab, report=report)
            ledger.Ledger.reopen(lab.lab_dir).docker(list(started))
        # Hosts without a lab dockerd point at a socket that does not exist:
        # the lab never reaches the machine's own Docker.
        if ssh:
            from ovsnet.lab import fleet
            from ovsnet.lab import ssh as lab_ssh

            lab_ssh.start(lab, report)
            lab = ledger.load_lab(checked.topology, names.prefix, lab.lab_dir)
            (lab.lab_dir / fleet.INVENTORY_FILE).write_text(fleet.inventory_config(checked.topology.source, lab.prefix))
        if configure:
            for host, target in targets(lab).items():
                result = apply.up(checked, host, target, apply.UpOptions(after_change=host_hook(after_change, host)), report=report)
                report(f"{host}: {len(result.applied)} changes applied in {result.seconds:.2f} s")
            endpoints.attach_endpoints(lab)
    except BaseException:
        # A half-built lab is of no use to anyone: remove all of it.
        teardown.destroy(names.prefix, lab_dir)
        raise
    return Outcome(lab)


def down(checked: Checked, prefix: str | None = None, lab_dir: Path | None = None) -> str:
    names = LabNames.for_topology(checked.topology, prefix)
    teardown.destroy(names.prefix, lab_dir)
    return names.prefix
