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

__all__ = ["OvsnetError", "as_data", "down", "load", "plan", "plan_down", "status", "target", "up", "verify"]


def load(path: str | Path) -> Any:
    """Read and validate a topology file (ConfigError with every finding when it is not valid)."""
    from ovsnet.topology import load_checked

    return load_checked(path)


def target(checked: Any, host: str, *, db: str | None = None, netns: str | None = None, state_dir: str | None = None,
           resolv_conf: str | None = None, gateway_timeout: float | None = None, docker_host: str | None = None,
           datapath: str | None = None, ovs_timeout: float | None = None, root: str | None = None,
           docker_timeout: float | None = None) -> Any:
    """Where `host` lives: its OVSDB, network namespace and files (the host's own defaults when not given).

    datapath overrides the topology's (a lab host has only the userspace one);
    ovs_timeout is how long ovs-vswitchd may take to apply a transaction,
    docker_timeout how long the Docker Engine may take per call; root
    is where the host's own files are (/etc/resolv.conf, network managers' files).
    """
    from dataclasses import replace

    from ovsnet.apply import check_gateway_timeout, host_of
    from ovsnet.apply.target import Target, check_daemon_timeout

    h = host_of(checked, host)
    t = Target(ovsdb=db or h.ovsdb, netns=netns, docker_host=docker_host or h.docker_host, resolv_conf=resolv_conf, datapath=datapath)
    if state_dir:
        t = replace(t, state_dir=state_dir)
    if root:
        t = replace(t, root=root)
    if gateway_timeout is not None:
        t = replace(t, gateway_timeout=check_gateway_timeout(gateway_timeout))
    if ovs_timeout is not None:
        t = replace(t, ovs_timeout=check_daemon_timeout("ovs_timeout", ovs_timeout, "Open vSwitch"))
    if docker_timeout is not None:
        t = replace(t, docker_timeout=check_daemon_timeout("docker_timeout", docker_timeout, "the Docker Engine"))
    return t


def plan(checked: Any, host: str, where: Any = None, *, adopt: bool = False) -> Any:
    from ovsnet.apply import plan_live

    return plan_live(checked, host, where or target(checked, host), adopt=adopt)


def plan_down(checked: Any, host: str, where: Any = None) -> Any:
    """The plan `down` would run now (its check mode): what it removes and puts back, nothing changed.

    The same reads and teardown planning as apply.down, without the lock:
    a plan only reads.
    """
    from ovsnet.apply import host_of, record
    from ovsnet.apply.live import Live
    from ovsnet.kinds import Settings
    from ovsnet.plan import planner

    h = host_of(checked, host)
    t = where or target(checked, host)
    live = Live(t)
    try:
        saved = record.read(t.state_dir, checked.topology.name, h.name)
        want = planner.desire(checked.topology, h, Settings(datapath=t.datapath, adopt=False, docker=True))
        current = live.read(planner.reads(want))
        return planner.teardown(want, current, saved.parts if saved else None)
    finally:
        live.close()


def status(checked: Any, host: str, where: Any = None) -> Any:
    """The plan `up` would run now: empty means in sync."""
    from ovsnet.apply import drift

    return drift(checked, host, where or target(checked, host))


def up(checked: Any, host: str, where: Any = None, *, adopt: bool = False, allow_uplink_move: bool = False,
       wait: float = 0.0, report: Callable[[str], None] | None = None) -> Any:
    from ovsnet import apply

    return apply.up(checked, host, where or target(checked, host), apply.UpOptions(adopt, allow_uplink_move, wait),
                    report or (lambda _m: None))


def down(checked: Any, host: str, where: Any = None, *, wait: float = 0.0, report: Callable[[str], None] | None = None,
         gateway_check: bool = True) -> Any:
    """gateway_check=False: a host reached out of band, whose NIC had no in-band path before ovsnet either."""
    from ovsnet import apply

    return apply.down(checked, host, where or target(checked, host), wait, report or (lambda _m: None), gateway_check=gateway_check)


def verify(checked: Any, *, probes: bool | None = None, docker_host: str | None = None, hosts: Any = None,
           endpoints: bool = True, report: Callable[[str], None] | None = None) -> Any:
    """This host's row of the reachability matrix, with real pings (see `ovsnet verify --help`).

    hosts: only the stations of these hosts count (a rollout's hosts configured
    so far: those of later batches are not ready yet); endpoints=False leaves
    the topology's test endpoints out (a lab plugs them in after the rollout).
    """
    from ovsnet.verify.host import verify_host

    if hosts is not None or not endpoints:
        checked = _only(checked, set(checked.topology.hosts) if hosts is None else set(hosts), endpoints)
    return verify_host(checked, probes=probes, docker_host=docker_host, report=report or (lambda _m: None))


def _only(checked: Any, hosts: set[str], endpoints: bool) -> Any:
    """The topology cut down to these hosts (their cables, their endpoints), checked again."""
    from dataclasses import replace

    from ovsnet.errors import UsageError
    from ovsnet.topology import check

    topo = checked.topology
    unknown = hosts - set(topo.hosts)
    if unknown:
        raise UsageError(f"no host named {', '.join(sorted(unknown))} in {topo.source}; hosts: {', '.join(topo.hosts)}")
    lab = topo.lab
    if lab is not None:
        def kept(end: Any) -> bool:
            return end.node not in topo.hosts or end.node in hosts
        lab = replace(lab, cables=tuple(c for c in lab.cables if kept(c.a) and kept(c.b)))
    cut = replace(topo, hosts={n: h for n, h in topo.hosts.items() if n in hosts}, lab=lab,
                  endpoints=tuple(e for e in topo.endpoints if endpoints and e.host in hosts))
    return check(cut)


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
