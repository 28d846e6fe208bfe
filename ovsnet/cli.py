"""The `ovsnet` command: parse arguments, call the core, render, map errors to exit codes.

Only this module prints or exits. Heavy imports (networkx, pyroute2, ovs)
happen inside the commands so `ovsnet --help` stays fast.

Exit codes: 0 done / in sync, 1 drift or verify mismatch, 2 bad input,
3 backend error, 4 not applied as asked (rolled back), 5 refused, 6 locked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    help="Container networks on Open vSwitch from one declarative file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

FileArg = typer.Argument(..., help="The topology file (TOML).", show_default=False)
HostOpt = typer.Option(..., "--host", "-H", help="Which host of the topology this is.", show_default=False)
DbOpt = typer.Option(None, "--db", help="OVSDB socket (default: the host's ovsdb setting, else unix:/var/run/openvswitch/db.sock).")
NetnsOpt = typer.Option(None, "--netns", help="Apply inside this network namespace (the lab uses it).")
StateOpt = typer.Option(None, "--state-dir", help="Where ovsnet keeps the uplink's saved state and locks.", envvar="OVSNET_STATE_DIR")
ResolvOpt = typer.Option(None, "--resolv-conf", help="The resolv.conf whose nameservers ovsnet manages.")
JsonOpt = typer.Option(False, "--json", help="Machine-readable output.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="Print only errors.")


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def _fail(exc: Exception) -> None:
    """Print an ovsnet error plainly and exit with its code; never a traceback."""
    from ovsnet.errors import ConfigError, OvsnetError

    if isinstance(exc, ConfigError):
        errs = [f for f in exc.findings if f.severity == "error"]
        for f in exc.findings:
            _err(f.render(exc.source))
        _err(f"{exc.source}: {len(errs)} error(s); nothing was changed")
    elif isinstance(exc, OvsnetError):
        _err(f"ovsnet: {exc}")
    else:
        _err(f"ovsnet: unexpected {type(exc).__name__}: {exc}")
        raise typer.Exit(70)
    raise typer.Exit(exc.exit_code)


def _checked(path: Path):
    from ovsnet.topology import load_checked

    return load_checked(path)


def _target(checked, host: str, db, netns, state_dir, resolv_conf):
    from ovsnet.apply import host_of
    from ovsnet.target import Target

    h = host_of(checked, host)
    kw = {"ovsdb": db or h.ovsdb, "netns": netns, "docker_host": h.docker_host}
    if state_dir:
        kw["state_dir"] = state_dir
    if resolv_conf:
        kw["resolv_conf"] = resolv_conf
    return Target(**kw)


def _print_warnings(checked, quiet: bool) -> None:
    if quiet:
        return
    from ovsnet.topology.positions import locate

    shown = locate(checked.topology, checked.warnings[:20])
    for w in shown:
        _err(w.render(checked.topology.source))
    if len(checked.warnings) > len(shown):
        _err(f"... and {len(checked.warnings) - len(shown)} more warnings")


@app.command()
def validate(file: Path = FileArg, quiet: bool = QuietOpt) -> None:
    """Check a topology file: syntax, references, the graph, the address plan."""
    try:
        checked = _checked(file)
    except Exception as exc:
        _fail(exc)
    _print_warnings(checked, quiet)
    if not quiet:
        t = checked.topology
        declared = sum(1 for _n, d in checked.graph.nodes(data=True) if not d.get("implicit"))
        print(f"{file}: valid: {len(t.hosts)} hosts, {len(t.vlans)} VLANs, {declared} objects, {len(checked.warnings)} warnings")


@app.command()
def plan(
    file: Path = FileArg,
    host: str = HostOpt,
    offline: bool = typer.Option(False, "--offline", help="Plan building the host from nothing, without reading it."),
    adopt: bool = typer.Option(False, "--adopt", help="Plan taking over existing objects that are not ovsnet's."),
    as_json: bool = JsonOpt,
    db: Optional[str] = DbOpt,
    netns: Optional[str] = NetnsOpt,
    state_dir: Optional[str] = StateOpt,
    resolv_conf: Optional[str] = ResolvOpt,
) -> None:
    """Show, in order, what `up` would create, change and delete on a host."""
    try:
        checked = _checked(file)
        from ovsnet import plan as plan_mod

        if offline:
            from ovsnet import desired
            from ovsnet.apply import host_of

            want = desired.for_host(checked.topology, host_of(checked, host))
            p = plan_mod.diff(want, plan_mod.from_nothing(want))
        else:
            from ovsnet.apply import plan_live

            p = plan_live(checked, host, _target(checked, host, db, netns, state_dir, resolv_conf), adopt=adopt)
    except Exception as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(plan_mod.to_json(p), indent=2))
        return
    from ovsnet.render.plan import plan_text

    print(plan_text(p, offline=offline))


@app.command()
def up(
    file: Path = FileArg,
    host: str = HostOpt,
    adopt: bool = typer.Option(False, "--adopt", help="Take over existing bridges/ports/links that are not ovsnet's."),
    allow_uplink_move: bool = typer.Option(False, "--allow-uplink-move", help="Move the NIC even if this SSH session runs over it."),
    wait: float = typer.Option(0.0, "--wait", help="Seconds to wait for another ovsnet run on this host to finish."),
    gateway_timeout: Optional[float] = typer.Option(
        None, "--gateway-timeout", metavar="SECONDS", show_default=False,
        help="Seconds the gateway may take to answer (ARP) after the host's address moves, before the move is rolled back. Default 5, at most 300.",
    ),
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
    db: Optional[str] = DbOpt,
    netns: Optional[str] = NetnsOpt,
    state_dir: Optional[str] = StateOpt,
    resolv_conf: Optional[str] = ResolvOpt,
) -> None:
    """Make the host match its part of the topology."""
    try:
        from ovsnet.apply import check_gateway_timeout

        # Checked before the file is read: a bad option is refused before anything else.
        gw_timeout = check_gateway_timeout(gateway_timeout) if gateway_timeout is not None else None
        checked = _checked(file)
        _print_warnings(checked, quiet or as_json)
        from dataclasses import replace

        from ovsnet.apply import UpOptions
        from ovsnet.apply import up as do_up
        from ovsnet.render.plan import progress

        target = _target(checked, host, db, netns, state_dir, resolv_conf)
        if gw_timeout is not None:
            target = replace(target, gateway_timeout=gw_timeout)
        with progress(quiet or as_json) as report:
            result = do_up(checked, host, target, UpOptions(adopt, allow_uplink_move, wait), report)
    except Exception as exc:
        _fail(exc)
    _print_result(result, "up", as_json, quiet)


@app.command()
def down(
    file: Path = FileArg,
    host: str = HostOpt,
    wait: float = typer.Option(0.0, "--wait", help="Seconds to wait for another ovsnet run on this host to finish."),
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
    db: Optional[str] = DbOpt,
    netns: Optional[str] = NetnsOpt,
    state_dir: Optional[str] = StateOpt,
    resolv_conf: Optional[str] = ResolvOpt,
) -> None:
    """Remove what ovsnet made on the host and put the NIC back as it was."""
    try:
        checked = _checked(file)
        from ovsnet.apply import down as do_down
        from ovsnet.render.plan import progress

        target = _target(checked, host, db, netns, state_dir, resolv_conf)
        with progress(quiet or as_json) as report:
            result = do_down(checked, host, target, wait, report)
    except Exception as exc:
        _fail(exc)
    _print_result(result, "down", as_json, quiet)


def _print_result(result, verb: str, as_json: bool, quiet: bool) -> None:
    from ovsnet import plan as plan_mod

    if as_json:
        body = plan_mod.to_json(result.plan)
        body["applied"] = len(result.applied)
        body["seconds"] = round(result.seconds, 3)
        print(json.dumps(body, indent=2))
        return
    if quiet:
        return
    for note in result.plan.notes:
        _err(f"note: {note}")
    if not result.applied:
        print(f"{verb}: nothing to change; the host already matches ({result.seconds:.2f} s)")
    else:
        print(f"{verb}: {len(result.applied)} changes applied and verified in {result.seconds:.2f} s")


@app.command()
def status(
    file: Path = FileArg,
    host: str = HostOpt,
    as_json: bool = JsonOpt,
    db: Optional[str] = DbOpt,
    netns: Optional[str] = NetnsOpt,
    state_dir: Optional[str] = StateOpt,
    resolv_conf: Optional[str] = ResolvOpt,
) -> None:
    """Report drift between the host and the topology (exit 0 in sync, 1 drift, 2 error)."""
    try:
        checked = _checked(file)
        from ovsnet.apply import drift

        p = drift(checked, host, _target(checked, host, db, netns, state_dir, resolv_conf))
    except Exception as exc:
        _fail(exc)
    from ovsnet import plan as plan_mod

    if as_json:
        body = plan_mod.to_json(p)
        body["in_sync"] = p.empty and not p.blockers
        print(json.dumps(body, indent=2))
    else:
        from ovsnet.render.plan import drift_text

        print(drift_text(p))
    if p.changes or p.blockers:
        raise typer.Exit(1)


@app.command()
def graph(
    file: Path = FileArg,
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write a picture: .svg, .png, .pdf (Graphviz) or .dot."),
    fmt: str = typer.Option("tree", "--format", "-f", help="tree (terminal), dot, or mermaid (for Markdown)."),
) -> None:
    """Draw the bridge graph: a tree in the terminal, DOT/SVG/PNG, or Mermaid."""
    try:
        checked = _checked(file)
        from ovsnet.render import picture

        if output is not None:
            picture.render_file(checked.graph, output)
            print(f"wrote {output}")
            return
        renderers = {"tree": picture.to_tree, "dot": picture.to_dot, "mermaid": picture.to_mermaid}
        if fmt not in renderers:
            from ovsnet.errors import UsageError

            raise UsageError(f"unknown format '{fmt}'; use one of: {', '.join(renderers)}")
        print(renderers[fmt](checked.graph))
    except Exception as exc:
        _fail(exc)


@app.command()
def addresses(file: Path = FileArg, as_json: bool = JsonOpt) -> None:
    """Show each host's container address slice per VLAN (Docker's --ip-range)."""
    try:
        checked = _checked(file)
        from ovsnet.topology import addressing

        slices, _ = addressing.plan(checked.topology)
    except Exception as exc:
        _fail(exc)
    rows = sorted(slices.values(), key=lambda s: (s.vlan, s.network))
    if as_json:
        print(json.dumps([{"host": s.host, "vlan": s.vlan, "ip_range": str(s.network), "explicit": s.explicit} for s in rows], indent=2))
        return
    for s in rows:
        print(f"{s.vlan:12} {s.host:16} {str(s.network):20}{'  (explicit)' if s.explicit else ''}")


@app.command()
def install(
    file: Path = FileArg,
    host: str = HostOpt,
    unit_dir: Path = typer.Option(Path("/etc/systemd/system"), "--unit-dir", help="Where to write the unit."),
    print_only: bool = typer.Option(False, "--print", help="Print the unit instead of writing it."),
) -> None:
    """Write a systemd unit that runs `ovsnet up` at boot, after OVS and before Docker."""
    try:
        checked = _checked(file)
        from ovsnet.apply import host_of
        from ovsnet.systemd import unit_name, unit_text

        host_of(checked, host)
        text = unit_text(file.resolve(), host, sys.argv[0])
        if print_only:
            print(text, end="")
            return
        path = unit_dir / unit_name(checked.topology.name, host)
        path.write_text(text)
    except OSError as exc:
        _err(f"ovsnet: cannot write the unit: {exc}")
        raise typer.Exit(3)
    except Exception as exc:
        _fail(exc)
    print(f"wrote {path}; enable it with: systemctl enable {path.name}")


@app.command()
def verify(
    file: Path = FileArg,
    lab: bool = typer.Option(False, "--lab", help="Verify the lab built by `ovsnet lab up FILE` (pings and captures inside it)."),
    prefix: Optional[str] = typer.Option(None, "--prefix", help="Name prefix of the lab (default: from the topology); with --lab."),
    all_pairs: bool = typer.Option(False, "--all-pairs", help="Ping every pair even above 64 stations (no sampling)."),
    probes: Optional[bool] = typer.Option(
        None, "--probes/--no-probes",
        help="Start a probe container per Docker network (from the topology's [verify] probe_image) and include it "
             "in the matrix. Default: when the topology names a probe image and Docker is there (a lab: `lab up --docker`).",
        show_default=False,
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Prove the topology with real traffic: the reachability matrix, expected vs seen.

    The expected matrix comes from the graph: same VLAN reachable (also across
    hosts over the trunks), different VLANs unreachable unless the router
    joins both, containers never reaching a host's own address except through
    the router. Exit 0 when every pair matches, 1 on any mismatch or capture
    finding, 2 on bad input.

    With --lab: every station (each test endpoint, in its namespace, and each
    host's own address, in the host's namespace) pings the others concurrently,
    while tcpdump checks every trunk (each VLAN carries its own 802.1Q tag, the
    native VLAN none) and every endpoint port (no frame of another VLAN). Up to
    64 stations every pair is pinged; above that a sample: every pair between
    one representative per host/VLAN group and each host address, every station
    to each representative of its own VLAN, and to the other groups on its own
    host (--all-pairs for everything).

    Without --lab (on a real host): this machine pings every station from its
    own network namespace, and the result is compared with the expected row of
    the station(s) whose address it holds (its management address). Only that
    one row: containers' rows and the captures need --lab.

    Probes: when the topology names [verify] probe_image, verify starts one
    short-lived container from that local image on each Docker network (in a
    lab: of every host, with `lab up --docker`; on a host: of this host), gets
    its address from Docker, pings from and to it like an endpoint, and removes
    it at the end. --probes makes that mandatory (an error if Docker or the
    image is missing), --no-probes turns it off. A missing image is an error
    (exit 2): verify never pulls.
    """
    try:
        checked = _checked(file)
        from ovsnet import verify as verify_mod
        from ovsnet.lab import probe

        if lab:
            from ovsnet.lab import build

            the_lab = build.load_lab(checked.topology, prefix)
            report = probe.verify_lab(checked, the_lab, all_pairs=all_pairs, probes=probes, report=lambda m: None if as_json else _err(m))
        else:
            if prefix:
                from ovsnet.errors import UsageError

                raise UsageError("--prefix names a lab: use it with --lab")
            report = probe.verify_host(checked, probes=probes, report=lambda m: None if as_json else _err(m))
    except Exception as exc:
        _fail(exc)
    if as_json:
        print(json.dumps(verify_mod.to_json(report), indent=2))
    else:
        print(verify_mod.render_matrix(report))
    if not report.ok:
        raise typer.Exit(1)


@app.command("docker-config")
def docker_config(file: Path = FileArg, host: str = HostOpt) -> None:
    """For a flat-layout host: the daemon.json that puts Docker on its bridge (the seed's -b)."""
    try:
        checked = _checked(file)
        from ovsnet.docker_config import docker_config as make

        cfg = make(checked.topology, host)
    except Exception as exc:
        _fail(exc)
    print(cfg.json)
    for note in cfg.notes:
        _err(note)


lab_app = typer.Typer(help="Simulate every host of a topology on this machine (namespaces + private OVS).", no_args_is_help=True)
app.add_typer(lab_app, name="lab")
PrefixOpt = typer.Option(None, "--prefix", help="Name prefix of the lab (default: from the topology), so labs never collide.")


@lab_app.command("up")
def lab_up(
    file: Path = FileArg,
    prefix: Optional[str] = PrefixOpt,
    docker: bool = typer.Option(False, "--docker", help="Start a private dockerd in each host that has Docker networks, so `up` creates them."),
    quiet: bool = QuietOpt,
) -> None:
    """Build the lab and configure each simulated host with `ovsnet up`'s own code."""
    try:
        checked = _checked(file)
        from ovsnet.lab import run
        from ovsnet.render.plan import progress

        with progress(quiet) as report:
            lab = run.up(checked, prefix, None, report, docker=docker)
    except Exception as exc:
        _fail(exc)
    if not quiet:
        print(f"lab {lab.prefix} is up: {len(lab.namespaces)} namespaces; `ovsnet lab exec {file} NODE -- CMD` to look inside, `ovsnet lab down {file}` to remove it")


@lab_app.command("down")
def lab_down(file: Path = FileArg, prefix: Optional[str] = PrefixOpt) -> None:
    """Remove everything the lab made (also after a crash or a half-built lab)."""
    try:
        checked = _checked(file)
        from ovsnet.lab import run

        name = run.down(checked, prefix)
    except Exception as exc:
        _fail(exc)
    print(f"lab {name} removed")


@lab_app.command("status")
def lab_status(file: Path = FileArg, prefix: Optional[str] = PrefixOpt) -> None:
    """What of the lab exists: namespaces and OVS daemons."""
    try:
        checked = _checked(file)
        from ovsnet.lab import build

        st = build.status(build.LabNames.for_topology(checked.topology, prefix).prefix)
    except Exception as exc:
        _fail(exc)
    print(f"lab {st.prefix}: {'complete' if st.complete else 'incomplete' if st.exists else 'absent'}")
    for ns in st.namespaces:
        print(f"  namespace {ns}")
    for d in st.daemons:
        print(f"  daemon {d}")
    if not st.exists:
        raise typer.Exit(1)


@lab_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab_exec(ctx: typer.Context, file: Path = FileArg, node: str = typer.Argument(..., help="A host, endpoint, 'switch' or 'router'."), prefix: Optional[str] = PrefixOpt) -> None:
    """Run a command inside a simulated host or endpoint: lab exec FILE NODE -- CMD..."""
    import subprocess

    try:
        checked = _checked(file)
        from ovsnet.lab import build

        from ovsnet.lab import docker as lab_docker

        lab = build.load_lab(checked.topology, prefix)
        argv = build.exec_argv(lab, node, ctx.args)
        dockerd = lab_docker.docker_host(lab, node) if node in checked.topology.hosts else None
        if dockerd:
            # `docker ps` inside a lab host talks to that host's own dockerd.
            argv = argv[:4] + ["env", f"DOCKER_HOST={dockerd}"] + argv[4:]
    except Exception as exc:
        _fail(exc)
    if not ctx.args:
        _err("ovsnet: give the command after --, e.g. lab exec seed.toml node1 -- ip addr")
        raise typer.Exit(2)
    raise typer.Exit(subprocess.run(argv).returncode)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        _err("ovsnet: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
