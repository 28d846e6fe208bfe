"""The commands about one host: validate, plan, up, down, status, addresses, install, docker-config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from ovsnet.cli.options import (
    FileArg,
    HostOpt,
    Out,
    Where,
    checked,
    command,
    warnings,
)
from ovsnet.errors import EXIT_DRIFT, UsageError

app = typer.Typer()


@command(app)
def validate(file: Path = FileArg, *, out: Out) -> None:
    """Check a topology file: syntax, references, the graph, the address plan."""
    from ovsnet.errors import ConfigError

    try:
        c = checked(file)
    except ConfigError as exc:
        if out.json:
            out.data({"file": str(file), "valid": False, "findings": [_finding(f) for f in exc.findings]})
            raise typer.Exit(exc.exit_code) from None
        raise
    warnings(c, out)
    t = c.topology
    declared = sum(1 for _n, d in c.graph.nodes(data=True) if not d.get("implicit"))
    out.data({"file": str(file), "valid": True, "hosts": len(t.hosts), "vlans": len(t.vlans), "objects": declared,
              "findings": [_finding(f) for f in c.warnings]})
    out.print(f"{file}: valid: {len(t.hosts)} hosts, {len(t.vlans)} VLANs, {declared} objects, {len(c.warnings)} warnings")


def _finding(f: Any) -> dict[str, Any]:
    return {"severity": f.severity, "line": f.line, "column": f.column, "path": f.path, "message": f.message, "hint": f.hint}


@command(app, target=True)
def plan(
    file: Path = FileArg,
    host: str = HostOpt,
    offline: bool = typer.Option(False, "--offline", help="Plan building the host from nothing, without reading it."),
    adopt: bool = typer.Option(False, "--adopt", help="Plan taking over existing objects that are not ovsnet's."),
    detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode", help="Exit 1 when the plan has changes (0: in sync)."),
    *, where: Where, out: Out,
) -> None:
    """Show, in order, what `up` would create, change and delete on a host."""
    from ovsnet.plan.model import to_json
    from ovsnet.render.plan import plan_text

    c = checked(file)
    if offline:
        if where.given:
            raise UsageError(f"--offline plans from nothing and reads no host: {', '.join(where.given)} would be ignored; drop them, or drop --offline")
        from ovsnet.apply import host_of
        from ovsnet.plan import offline as offline_mod
        from ovsnet.plan import planner

        want = planner.desire(c.topology, host_of(c, host))
        p = planner.diff(want, offline_mod.from_nothing(want))
    else:
        from ovsnet.apply import plan_live

        p = plan_live(c, host, where.target(c, host), adopt=adopt)
    out.data(to_json(p))
    out.print(plan_text(p, offline=offline))
    if detailed_exitcode and not p.empty:
        raise typer.Exit(EXIT_DRIFT)


@command(app, target=True)
def up(
    file: Path = FileArg,
    host: str = HostOpt,
    adopt: bool = typer.Option(False, "--adopt", help="Take over existing bridges/ports/links that are not ovsnet's."),
    allow_uplink_move: bool = typer.Option(False, "--allow-uplink-move", help="Move the NIC even if an SSH session runs over it."),
    wait: float = typer.Option(0.0, "--wait", help="Seconds to wait for another ovsnet run on this host to finish."),
    gateway_timeout: Optional[float] = typer.Option(
        None, "--gateway-timeout", metavar="SECONDS", show_default=False,
        help="Seconds the gateway may take to answer (ARP) after the host's address moves, before the move is rolled back. Default 5, at most 300.",
    ),
    *, where: Where, out: Out,
) -> None:
    """Make the host match its part of the topology."""
    from dataclasses import replace

    from ovsnet import apply
    from ovsnet.render.plan import progress

    # Checked before the file is read: a bad option is refused before anything else.
    gw_timeout = apply.check_gateway_timeout(gateway_timeout) if gateway_timeout is not None else None
    c = checked(file)
    warnings(c, out)
    target = where.target(c, host)
    if gw_timeout is not None:
        target = replace(target, gateway_timeout=gw_timeout)
    with progress(out.silent) as report:
        result = apply.up(c, host, target, apply.UpOptions(adopt, allow_uplink_move, wait), report)
    _result(result, "up", out)


@command(app, target=True)
def down(
    file: Path = FileArg,
    host: str = HostOpt,
    wait: float = typer.Option(0.0, "--wait", help="Seconds to wait for another ovsnet run on this host to finish."),
    *, where: Where, out: Out,
) -> None:
    """Remove what ovsnet made on the host and put the NIC back as it was."""
    from ovsnet import apply
    from ovsnet.render.plan import progress

    c = checked(file)
    with progress(out.silent) as report:
        result = apply.down(c, host, where.target(c, host), wait, report)
    _result(result, "down", out)


def _result(result: Any, verb: str, out: Out) -> None:
    from ovsnet.plan.model import to_json

    body = to_json(result.plan)
    body["applied"] = len(result.applied)
    body["seconds"] = round(result.seconds, 3)
    out.data(body)
    for note in result.plan.notes:
        out.note(f"note: {note}")
    if not result.applied:
        out.print(f"{verb}: nothing to change; the host already matches ({result.seconds:.2f} s)")
    else:
        out.print(f"{verb}: {len(result.applied)} changes applied and verified in {result.seconds:.2f} s")


@command(app, target=True)
def status(file: Path = FileArg, host: str = HostOpt, *, where: Where, out: Out) -> None:
    """Report drift between the host and the topology (exit 0 in sync, 1 drift)."""
    from ovsnet.apply import drift
    from ovsnet.plan.model import to_json
    from ovsnet.render.plan import drift_text

    c = checked(file)
    p = drift(c, host, where.target(c, host))
    body = to_json(p)
    body["in_sync"] = p.empty and not p.blockers and not p.health
    out.data(body)
    out.print(drift_text(p))
    if p.changes or p.blockers or p.health:
        raise typer.Exit(EXIT_DRIFT)


@command(app)
def addresses(file: Path = FileArg, *, out: Out) -> None:
    """Show each host's container address slices per VLAN (Docker's --ip-range; a dual-stack VLAN's IPv6 one too)."""
    from ovsnet.topology import addressing

    c = checked(file)
    slices, _ = addressing.plan(c.topology)
    slices6 = addressing.plan6(c.topology)
    def order(k: tuple[str, str]) -> tuple[str, int, int]:
        net = (slices.get(k) or slices6[k]).network
        return k[1], net.version, int(net.network_address)

    keys = sorted(set(slices) | set(slices6), key=order)
    data = []
    for k in keys:
        s, s6 = slices.get(k), slices6.get(k)
        row: dict[str, object] = {"host": k[0], "vlan": k[1]}
        if s is not None:
            row.update(ip_range=str(s.network), explicit=s.explicit)
        if s6 is not None:
            row.update(ip_range6=str(s6.network), explicit6=s6.explicit)
        data.append(row)
        text = f"{k[1]:12} {k[0]:16} {str(s.network) if s else '-':20}{'  (explicit)' if s and s.explicit else ''}"
        if s6 is not None:
            # The IPv6 slice in a column of its own, after the IPv4 one and its "(explicit)".
            text = f"{text:64}  {s6.network}{'  (explicit)' if s6.explicit else ''}"
        out.print(text)
    out.data(data)


@command(app)
def install(
    file: Path = FileArg,
    host: str = HostOpt,
    unit_dir: Path = typer.Option(Path("/etc/systemd/system"), "--unit-dir", help="Where to write the unit."),
    print_only: bool = typer.Option(False, "--print", help="Print the unit instead of writing it."),
    *, out: Out,
) -> None:
    """Write a systemd unit that runs `ovsnet up` at boot, after OVS and before Docker."""
    from ovsnet.apply import host_of
    from ovsnet.errors import BackendError
    from ovsnet.systemd import unit_name, unit_text

    c = checked(file)
    host_of(c, host)
    text = unit_text(file.resolve(), host, sys.argv[0])
    path = unit_dir / unit_name(c.topology.name, host)
    if print_only:
        out.data({"unit": path.name, "text": text})
        if not out.silent:
            print(text, end="")
        return
    try:
        path.write_text(text)
    except OSError as exc:
        raise BackendError(f"cannot write the unit {path}: {exc.strerror}") from None
    out.data({"unit": path.name, "path": str(path)})
    out.print(f"wrote {path}; enable it with: systemctl enable {path.name}")


@command(app, "docker-config")
def docker_config(file: Path = FileArg, host: str = HostOpt, *, out: Out) -> None:
    """For a flat-layout host: the daemon.json that puts Docker on its bridge (the seed's -b)."""
    from ovsnet.docker_config import docker_config as make

    cfg = make(checked(file).topology, host)
    if not out.quiet:
        print(cfg.json)  # daemon.json is JSON already: the same with or without --json
    for note in cfg.notes:
        out.note(note)
