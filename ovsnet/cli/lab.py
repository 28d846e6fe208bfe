"""`ovsnet lab`: every host of a topology simulated on this machine (namespaces + private OVS)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ovsnet.cli.options import FileArg, Out, PrefixOpt, checked, command, err
from ovsnet.errors import EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_EXEC_CANNOT_RUN, EXIT_EXEC_NOT_FOUND, EXIT_EXEC_OWN, OvsnetError

app = typer.Typer(help="Simulate every host of a topology on this machine (namespaces + private OVS).", no_args_is_help=True)


@command(app, "up")
def lab_up(
    file: Path = FileArg,
    prefix: Optional[str] = PrefixOpt,
    docker: bool = typer.Option(False, "--docker", help="Start a private dockerd in each host that has Docker networks, so `up` creates them."),
    ssh: bool = typer.Option(False, "--ssh", help="Run an OpenSSH server in each host and add a `controller` station on the management VLAN holding a key the hosts trust."),
    apply: bool = typer.Option(True, "--apply/--no-apply", help="--no-apply: leave the hosts as fresh machines (address on the NIC), for Ansible to configure."),
    *, out: Out,
) -> None:
    """Build the lab and configure each simulated host with `ovsnet up`'s own code.

    On a lab already built, converge it to the (edited) file instead: the
    lab's own changes (cables, switch ports, router legs, hosts and endpoints
    added or removed), then each host through `ovsnet up`'s code (a host with
    nothing to do says "no change"), then the removals. What cannot change in
    place is refused before anything changes (exit 5), with how to do it;
    `ovsnet lab plan FILE` shows it all first.
    """
    from ovsnet.lab import run
    from ovsnet.render.plan import progress

    c = checked(file)
    with progress(out.silent) as report:
        outcome = run.lab_up(c, prefix, None, report, docker=docker, ssh=ssh, configure=apply)
    lab, done = outcome.lab, outcome.converged
    body: dict[str, object] = {"prefix": lab.prefix, "namespaces": lab.namespaces, "configured": apply, "converged": done is not None}
    if done is not None:
        from ovsnet.lab.diff import for_json

        body["lab_changes"] = for_json(done.plan)["changes"]
        body["hosts"] = {h.host: {"applied": h.applied, "seconds": round(h.seconds, 3), "new": h.new} for h in done.hosts}
        body["removed"] = list(done.removed)
        body["seconds"] = round(done.seconds, 3)
    if ssh or (lab.lab_dir / "inventory.ovsnet.yml").exists():
        from ovsnet.lab.fleet import INVENTORY_FILE

        body["inventory"] = str(lab.lab_dir / INVENTORY_FILE)
    out.data(body)
    if done is not None:
        changed = [h for h in done.hosts if h.applied]
        out.print(f"lab {lab.prefix} converged in {done.seconds:.2f} s: {len(done.plan.changes)} lab changes, "
                  f"{len(changed)} of {len(done.hosts)} hosts changed ({sum(h.applied for h in changed)} changes), "
                  f"{len(done.hosts) - len(changed)} no change" + (f", removed {', '.join(done.removed)}" if done.removed else ""))
        return
    out.print(f"lab {lab.prefix} is up: {len(lab.namespaces)} namespaces; `ovsnet lab exec {file} NODE -- CMD` to look inside, `ovsnet lab down {file}` to remove it")
    if ssh:
        out.print(f"inventory: {body['inventory']}; run Ansible from the controller: "
                  f"ovsnet lab exec {file} controller -- ansible-playbook -i {body['inventory']} ovsnet.fleet.rollout")


@command(app, "plan")
def lab_plan(
    file: Path = FileArg,
    prefix: Optional[str] = PrefixOpt,
    detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode", help="Exit 1 when `lab up` has something to do (0: in sync)."),
    *, out: Out,
) -> None:
    """Show what `lab up` would change in a built lab: each host's plan (as `ovsnet plan`), the lab's own changes.

    Nothing is changed. Exit 0 (with --detailed-exitcode: 0 in sync, 1
    changes pending), 2 bad input or no lab, 3 a backend error.
    """
    from ovsnet.lab.review import review
    from ovsnet.render.labplan import lab_plan_text, lab_review_json

    r = review(checked(file), prefix)
    out.data(lab_review_json(r))
    out.print(lab_plan_text(r))
    if detailed_exitcode and r.pending:
        raise typer.Exit(EXIT_DRIFT)


@command(app, "down")
def lab_down(file: Path = FileArg, prefix: Optional[str] = PrefixOpt, *, out: Out) -> None:
    """Remove everything the lab made (also after a crash or a half-built lab)."""
    from ovsnet.lab import run

    name = run.down(checked(file), prefix)
    out.data({"prefix": name, "removed": True})
    out.print(f"lab {name} removed")


@command(app, "inventory")
def lab_inventory(file: Path = FileArg, prefix: Optional[str] = PrefixOpt, *, out: Out) -> None:
    """The lab's hosts as Ansible sees them (a lab built with --ssh): addresses and the ovsnet_* variables per host."""
    from ovsnet.lab import fleet
    from ovsnet.lab.ledger import load_lab

    c = checked(file)
    lab = load_lab(c.topology, prefix)
    hosts = fleet.host_vars(lab)
    out.data({"inventory": str(lab.lab_dir / fleet.INVENTORY_FILE), "all_vars": fleet.connection_vars(lab), "hosts": hosts})
    out.print(f"# {lab.lab_dir / fleet.INVENTORY_FILE}: ansible-playbook -i THIS_FILE ...")
    out.print(fleet.inventory_config(c.topology.source, lab.prefix).rstrip())
    for host, v in hosts.items():
        out.print(f"# {host}: ansible_host={v['ansible_host']} ovsnet_db={v['ovsnet_db']} ovsnet_venv={v['ovsnet_venv']}")


@command(app, "attach")
def lab_attach(file: Path = FileArg, prefix: Optional[str] = PrefixOpt, *, out: Out) -> None:
    """Plug the test endpoints into their hosts, once the hosts are configured (after `lab up --no-apply` and a rollout)."""
    from ovsnet.lab import endpoints
    from ovsnet.lab.ledger import load_lab

    lab = load_lab(checked(file).topology, prefix)
    endpoints.attach_endpoints(lab)
    out.data({"prefix": lab.prefix, "endpoints": list(lab.names.endpoints)})
    out.print(f"lab {lab.prefix}: {len(lab.names.endpoints)} endpoints plugged in")


@command(app, "status")
def lab_status(file: Path = FileArg, prefix: Optional[str] = PrefixOpt, *, out: Out) -> None:
    """What of the lab exists (namespaces, daemons) and its drift from the file, per host and of the lab itself.

    Exit 0 in sync, 1 drift (or a lab not completely built), 2 when there is no lab.
    """
    from ovsnet.lab import teardown
    from ovsnet.lab.names import LabNames

    c = checked(file)
    st = teardown.status(LabNames.for_topology(c.topology, prefix).prefix)
    state = "complete" if st.complete else "incomplete" if st.exists else "absent"
    body: dict[str, object] = {"prefix": st.prefix, "state": state, "namespaces": list(st.namespaces), "daemons": [str(d) for d in st.daemons]}
    r = None
    if st.complete:
        from ovsnet.lab.review import review
        from ovsnet.render.labplan import lab_review_json

        r = review(c, prefix)
        body.update({"in_sync": r.in_sync, "drift": lab_review_json(r)})
    out.data(body)
    out.print(f"lab {st.prefix}: {state}")
    for ns in st.namespaces:
        out.print(f"  namespace {ns}")
    for d in st.daemons:
        out.print(f"  daemon {d}")
    if r is not None:
        from ovsnet.render.labplan import lab_drift_text

        out.print(lab_drift_text(r))
    if not st.exists:
        raise typer.Exit(EXIT_BAD_INPUT)
    if r is None or not r.in_sync:
        raise typer.Exit(EXIT_DRIFT)


@app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab_exec(ctx: typer.Context, file: Path = FileArg, node: str = typer.Argument(..., help="A host, endpoint, 'switch' or 'router'."),
             prefix: Optional[str] = PrefixOpt) -> None:
    """Run a command inside a simulated host or endpoint: lab exec FILE NODE -- CMD...

    The command's own exit code is passed through. ovsnet's own errors (no such
    lab or node, no command) exit 125, a command that cannot run 126, one that
    does not exist 127, as `docker exec` does.
    """
    import os
    import shutil
    import subprocess

    if not ctx.args:
        err("ovsnet: give the command after --, e.g. lab exec seed.toml node1 -- ip addr")
        raise typer.Exit(EXIT_EXEC_OWN)
    try:
        from ovsnet.lab import docker as lab_docker
        from ovsnet.lab.ledger import load_lab
        from ovsnet.lab.names import exec_argv

        c = checked(file)
        lab = load_lab(c.topology, prefix)
        argv = exec_argv(lab, node, ctx.args)
        dockerd = lab_docker.docker_host(lab, node) if node in c.topology.hosts else None
    except OvsnetError as exc:
        err(f"ovsnet: {exc}")
        raise typer.Exit(EXIT_EXEC_OWN) from None
    # `ip netns exec` shares this mount namespace: the command resolves here as it would there.
    program = shutil.which(ctx.args[0])
    if program is None:
        err(f"ovsnet: {ctx.args[0]}: command not found")
        raise typer.Exit(EXIT_EXEC_NOT_FOUND)
    if dockerd:
        # `docker ps` inside a lab host talks to that host's own dockerd.
        argv = argv[:4] + ["env", f"DOCKER_HOST={dockerd}"] + argv[4:]
    inventory = lab.lab_dir / "inventory.ovsnet.yml"
    if node == "controller" and node not in c.topology.hosts and inventory.exists() and "ANSIBLE_INVENTORY" not in os.environ:
        # Ansible on the controller finds the lab's hosts without -i.
        argv = argv[:4] + ["env", f"ANSIBLE_INVENTORY={inventory}"] + argv[4:]
    try:
        code = subprocess.run(argv).returncode
    except OSError as exc:
        err(f"ovsnet: cannot run {ctx.args[0]}: {exc.strerror}")
        raise typer.Exit(EXIT_EXEC_CANNOT_RUN) from None
    raise typer.Exit(code)
