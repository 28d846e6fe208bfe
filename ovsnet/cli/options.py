"""What every command shares: the target options, --json/-q, one error wrapper, the exit codes.

containerlab's cmd/options.go, for typer: a command declares only its own
parameters; `command()` adds the shared ones to its signature and hands the
function a `Where` (which host: OVSDB, namespace, files) and an `Out` (how to
print), and turns every error into its message and exit code, never a
traceback.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from ovsnet.errors import EXIT_INTERNAL

FileArg = typer.Argument(..., help="The topology file (TOML).", show_default=False)
HostOpt = typer.Option(..., "--host", "-H", help="Which host of the topology this is.", show_default=False)
PrefixOpt = typer.Option(None, "--prefix", help="Name prefix of the lab (default: from the topology), so labs never collide.")

_TARGET = {
    "db": (Optional[str], typer.Option(None, "--db", help="OVSDB socket (default: the host's ovsdb setting, else unix:/var/run/openvswitch/db.sock).")),
    "netns": (Optional[str], typer.Option(None, "--netns", help="Apply inside this network namespace; its files are /etc/netns/NAME/* (the lab uses it).")),
    "state_dir": (Optional[str], typer.Option(None, "--state-dir", help="Where ovsnet keeps what the host had before it, and its locks.", envvar="OVSNET_STATE_DIR")),
    "resolv_conf": (Optional[str], typer.Option(None, "--resolv-conf", help="The resolv.conf whose nameservers ovsnet manages (default: the host's, or the namespace's).")),
    "root": (Optional[str], typer.Option(None, "--root", help="Where the host's network manager keeps its files (default /; a simulated host's own directory).")),
    "ovs_timeout": (Optional[float], typer.Option(None, "--ovs-timeout", metavar="SECONDS", show_default=False,
                                                  help="Seconds Open vSwitch may take per call (default 10; a slow or emulated host needs more).")),
    "docker_timeout": (Optional[float], typer.Option(None, "--docker-timeout", metavar="SECONDS", show_default=False,
                                                     help="Seconds the Docker Engine may take per call (default 10).")),
}
_OUTPUT = {
    "as_json": (bool, typer.Option(False, "--json", help="Machine-readable output on stdout.")),
    "quiet": (bool, typer.Option(False, "--quiet", "-q", help="Print only errors (the exit code says the rest).")),
}


@dataclass(frozen=True)
class Where:
    """The target options as given; `target()` fills in the host's defaults."""

    db: str | None = None
    netns: str | None = None
    state_dir: str | None = None
    resolv_conf: str | None = None
    root: str | None = None
    ovs_timeout: float | None = None
    docker_timeout: float | None = None

    @property
    def given(self) -> list[str]:
        return [f"--{f.name.replace('_', '-')}" for f in fields(self) if getattr(self, f.name) is not None]

    def target(self, checked: Any, host: str) -> Any:
        from ovsnet.apply import host_of
        from ovsnet.apply.target import Target, check_daemon_timeout

        h = host_of(checked, host)
        kw: dict[str, Any] = {"ovsdb": self.db or h.ovsdb, "netns": self.netns, "docker_host": h.docker_host}
        if self.state_dir:
            kw["state_dir"] = self.state_dir
        if self.resolv_conf:
            kw["resolv_conf"] = self.resolv_conf
        if self.root:
            kw["root"] = self.root
        if self.ovs_timeout is not None:
            kw["ovs_timeout"] = check_daemon_timeout("--ovs-timeout", self.ovs_timeout, "Open vSwitch")
        if self.docker_timeout is not None:
            kw["docker_timeout"] = check_daemon_timeout("--docker-timeout", self.docker_timeout, "the Docker Engine")
        return Target(**kw)


@dataclass(frozen=True)
class Out:
    json: bool = False
    quiet: bool = False

    @property
    def silent(self) -> bool:
        """Nothing but the result: no progress, no notes on stderr."""
        return self.json or self.quiet

    def print(self, text: str) -> None:
        if not self.silent:
            print(text)

    def data(self, body: Any) -> None:
        if self.json:
            print(json.dumps(body, indent=2, default=_jsonable))

    def note(self, text: str) -> None:
        if not self.silent:
            err(text)


def _jsonable(value: Any) -> Any:
    """Sets (a trunk's VLANs) as sorted lists; anything else as its text."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def fail(exc: BaseException) -> None:
    """Print an error plainly and exit with its code; never a traceback."""
    from ovsnet.errors import ConfigError, OvsnetError

    if isinstance(exc, ConfigError):
        errs = [f for f in exc.findings if f.severity == "error"]
        for f in exc.findings:
            err(f.render(exc.source))
        err(f"{exc.source}: {len(errs)} error(s); nothing was changed")
    elif isinstance(exc, OvsnetError):
        err(f"ovsnet: {exc}")
    else:
        err(f"ovsnet: internal error (a bug; please report it with this line): {type(exc).__name__}: {exc}")
        raise typer.Exit(EXIT_INTERNAL)
    raise typer.Exit(exc.exit_code)


def command(app: typer.Typer, name: str | None = None, *, target: bool = False, output: bool = True, **kw: Any) -> Callable:
    """Register fn as a command; add the shared options it asks for; map every error to its exit code.

    fn receives `where: Where` when target=True and `out: Out` when output=True.
    """

    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        own = [p for p in sig.parameters.values() if p.name not in ("where", "out")]
        shared: dict[str, tuple[Any, Any]] = {}
        if target:
            shared.update(_TARGET)
        if output:
            shared.update(_OUTPUT)
        extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann) for n, (ann, opt) in shared.items()]

        @functools.wraps(fn)
        def wrapper(**given: Any) -> Any:
            call = {k: v for k, v in given.items() if k not in shared}
            if target:
                call["where"] = Where(*(given[n] for n in _TARGET))
            if output:
                call["out"] = Out(given["as_json"], given["quiet"])
            try:
                return fn(**call)
            except (typer.Exit, typer.Abort, KeyboardInterrupt):
                raise
            except Exception as exc:
                fail(exc)

        wrapper.__signature__ = sig.replace(parameters=own + extra)  # type: ignore[attr-defined]
        return app.command(name, **kw)(wrapper)

    return deco


def checked(path: Path) -> Any:
    from ovsnet.topology import load_checked

    return load_checked(path)


def warnings(c: Any, out: Out) -> None:
    if out.silent:
        return
    from ovsnet.topology.positions import locate

    shown = locate(c.topology, c.warnings[:20])
    for w in shown:
        err(w.render(c.topology.source))
    if len(c.warnings) > len(shown):
        err(f"... and {len(c.warnings) - len(shown)} more warnings")
