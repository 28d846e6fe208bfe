"""`ovsnet import`: the topology file that describes a host built by hand (or by ovsnet)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ovsnet.cli.options import Out, Where, command, err

app = typer.Typer()


@command(app, "import", target=True)
def import_host(
    host: str = typer.Option(..., "--host", "-H", help="The host's name in the file.", show_default=False),
    into: Optional[Path] = typer.Option(None, "--into", help="Add the host to this topology file (checked whole, address slices included) and write it back."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the file here (a new file) instead of printing it; with --into, write the result here."),
    name: Optional[str] = typer.Option(None, "--name", help="The topology's name in a new file (default: from ovsnet's marks on the host, else the file's name)."),
    docker_host: Optional[str] = typer.Option(None, "--docker-host", help="The Docker daemon to read networks from (default: DOCKER_HOST, else the local socket)."),
    *, where: Where, out: Out,
) -> None:
    """Read a host and write the topology file that describes it.

    The OVS bridge and its trunk (allowed VLANs, native VLAN), access ports,
    the management port with the host's addresses, default route and DNS, the
    Linux bridges joined to OVS by veth pairs, the Docker networks on them
    (subnet, gateway, ip_range); or the flat layout (the NIC in a Linux
    bridge). Guesses (a VLAN's name...) are comments in the file; whatever a
    topology cannot say is listed on stderr. `ovsnet plan FILE --host NAME`
    then finds only objects to adopt, and `ovsnet up --adopt` takes them over.
    """
    from ovsnet.apply.target import Target
    from ovsnet.errors import ConfigError, UsageError
    from ovsnet.importer import run
    from ovsnet.topology.model import DEFAULT_OVSDB

    if output is not None and output.exists() and (into is None or output.resolve() != into.resolve()):
        raise UsageError(f"{output} exists: import writes a new file (use --into {output} to add the host to it)")
    existing = None
    if into is not None:
        try:
            existing = run.Into(into.read_text(encoding="utf-8"), str(into))
        except OSError as exc:
            raise UsageError(f"cannot read {into}: {exc.strerror or exc}") from None
    target = Target(ovsdb=where.db or DEFAULT_OVSDB, netns=where.netns, resolv_conf=where.resolv_conf, docker_host=docker_host)
    current, notes = run.read(target)
    dest = output or into
    try:
        result = run.settle(host, current, existing, name, str(dest) if dest else "<import>", tuple(notes))
    except ConfigError as exc:
        # Said as import's own words: the file was never written.
        for f in exc.findings:
            err(f.render(exc.source))
        err(f"ovsnet import: with host {host} the file would not be valid ({sum(f.severity == 'error' for f in exc.findings)} error(s)); nothing was written")
        raise typer.Exit(exc.exit_code) from None
    if dest is not None:
        _write(dest, result.text)
    out.data({
        "host": host,
        "topology": result.checked.topology.name,
        "written": str(dest) if dest else None,
        "file": result.text,
        "left_out": list(result.left_out),
        "guesses": [{"path": g.path, "text": g.text} for g in result.imported.guesses],
        "warnings": [w.render(result.checked.topology.source) for w in result.checked.warnings],
    })
    if out.json:
        return
    for line in result.left_out:
        err(f"ovsnet import: left out: {line}")
    if not out.quiet:
        for w in result.checked.warnings:
            err(w.render(result.checked.topology.source))
    if dest is None:
        if not out.quiet:
            print(result.text, end="")
    else:
        out.print(f"wrote {dest}: host {host} ({len(result.left_out)} things left out, {len(result.imported.guesses)} guesses marked in comments)")


def _write(path: Path, text: str) -> None:
    """Atomically: a file that was valid stays valid until the new one is whole."""
    import os

    from ovsnet.errors import UsageError

    tmp = path.with_name(f".{path.name}.ovsnet-import")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
