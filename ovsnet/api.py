"""ovsnet as a library: load a topology, plan, apply, check drift, tear down, verify.

What the CLI and the Ansible modules call; nothing here prints or exits.
Every failure is an ovsnet.errors.OvsnetError with its exit code, and
plans and results turn into plain data with `as_data`.

    from ovsnet import api
    topo = api.load("topology.toml")
    plan = api.plan(topo, "node1")               # what up would do, in order
    result = api.up(topo, "node1")               # apply, check, roll back on failure
    api.status(topo, "node1").empty              # in sync?
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ovsnet.errors import OvsnetError

__all__ = ["OvsnetError", "as_data", "down", "load", "plan", "status", "target", "up", "verify"]


def load(path: str | Path) -> Any:
    """Read and validate a topology file (ConfigError with every finding when it is not valid)."""
    from ovsnet.topology import load_checked

    return load_checked(path)


def target(checked: Any, host: str, *, db: str | None = None, netns: str | None = None, state_dir: str | None = None,
           resolv_conf: str | None = None, gateway_timeout: float | None = None, root: str | None = None) -> Any:
    """Where `host` lives: its OVSDB, network namespace and files (the host's own defaults when not given)."""
    from dataclasses import replace

    from ovsnet.apply import check_gateway_timeout, host_of
    from ovsnet.apply.target import Target

    h = host_of(checked, host)
    t = Target(ovsdb=db or h.ovsdb, netns=netns, docker_host=h.docker_host, resolv_conf=resolv_conf)
    if state_dir:
        t = replace(t, state_dir=state_dir)
    if root:
        t = replace(t, root=root)
    if gateway_timeout is not None:
        t = replace(t, gateway_timeout=check_gateway_timeout(gateway_timeout))
    return t


def plan(checked: Any, host: str, where: Any = None, *, adopt: bool = False) -> Any:
    from ovsnet.apply import plan_live

    return plan_live(checked, host, where or target(checked, host), adopt=adopt)


def status(checked: Any, host: str, where: Any = None) -> Any:
    """The plan `up` would run now: empty means in sync."""
    from ovsnet.apply import drift

    return drift(checked, host, where or target(checked, host))


def up(checked: Any, host: str, where: Any = None, *, adopt: bool = False, allow_uplink_move: bool = False,
       wait: float = 0.0, report: Callable[[str], None] | None = None) -> Any:
    from ovsnet import apply

    return apply.up(checked, host, where or target(checked, host), apply.UpOptions(adopt, allow_uplink_move, wait),
                    report or (lambda _m: None))


def down(checked: Any, host: str, where: Any = None, *, wait: float = 0.0, report: Callable[[str], None] | None = None) -> Any:
    from ovsnet import apply

    return apply.down(checked, host, where or target(checked, host), wait, report or (lambda _m: None))


def verify(checked: Any, *, probes: bool | None = None, report: Callable[[str], None] | None = None) -> Any:
    """This host's row of the reachability matrix, with real pings (see `ovsnet verify --help`)."""
    from ovsnet.verify.host import verify_host

    return verify_host(checked, probes=probes, report=report or (lambda _m: None))


def as_data(obj: Any) -> dict[str, Any]:
    """A Plan, an apply Result or a verify Report as JSON-ready data (what `--json` prints)."""
    from ovsnet.apply.run import Result
    from ovsnet.plan.model import Plan, to_json

    if isinstance(obj, Plan):
        return to_json(obj)
    if isinstance(obj, Result):
        body = to_json(obj.plan)
        body["applied"] = [c.resource for c in obj.applied]
        body["seconds"] = round(obj.seconds, 3)
        return body
    from ovsnet.render.verify import to_json as verify_json

    return verify_json(obj)
