"""`ovsnet verify`: the reachability matrix with real traffic, expected vs seen."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ovsnet.cli.options import FileArg, Out, checked, command
from ovsnet.errors import EXIT_DRIFT, UsageError

app = typer.Typer()


@command(app)
def verify(
    file: Path = FileArg,
    lab: bool = typer.Option(False, "--lab", help="Verify the lab built by `ovsnet lab up FILE` (pings and captures inside it)."),
    prefix: Optional[str] = typer.Option(None, "--prefix", help="Name prefix of the lab (default: from the topology); with --lab."),
    all_pairs: bool = typer.Option(False, "--all-pairs", help="Ping every pair even above 64 stations (no sampling)."),
    baseline: Optional[Path] = typer.Option(
        None, "--baseline", metavar="FILE",
        help="The JSON of an earlier `verify --json` (before an edit): also list the pairs that flipped (newly reachable, "
             "newly blocked) and whether the edit explains each. Exit 1 on a flip it does not explain.",
    ),
    probes: Optional[bool] = typer.Option(
        None, "--probes/--no-probes",
        help="Start a probe container per Docker network (from the topology's [verify] probe_image) and include it "
             "in the matrix. Default: when the topology names a probe image and Docker is there (a lab: `lab up --docker`).",
        show_default=False,
    ),
    *, out: Out,
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
    from ovsnet.render import verify as verify_text
    from ovsnet.verify import baseline as base_mod

    c = checked(file)
    # Read first: a bad baseline fails before minutes of pings.
    base = base_mod.load(baseline) if baseline is not None else None
    from ovsnet.render.plan import progress

    with progress(out.silent, "verifying") as report:
        result = _run(c, lab, prefix, all_pairs, probes, report)

    body = verify_text.to_json(result)
    flips = base_mod.compare(base, result) if base is not None else None
    if flips is not None:
        body["baseline"] = base_mod.to_json(flips)
    out.data(body)
    out.print(verify_text.render_matrix(result))
    if flips is not None:
        out.print(verify_text.render_flips(flips))
    if not result.ok or (flips is not None and not flips.ok):
        raise typer.Exit(EXIT_DRIFT)


def _run(c: Any, lab: bool, prefix: str | None, all_pairs: bool, probes: bool | None, report: Any) -> Any:
    if lab:
        from ovsnet.lab.ledger import load_lab
        from ovsnet.verify.lab import verify_lab

        return verify_lab(c, load_lab(c.topology, prefix), all_pairs=all_pairs, probes=probes, report=report)
    if prefix:
        raise UsageError("--prefix names a lab: use it with --lab")
    from ovsnet.verify.host import verify_host

    return verify_host(c, probes=probes, report=report)
