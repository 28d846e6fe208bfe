"""The `ovsnet` command: parse arguments, call the library, render, map errors to exit codes.

Only this package prints or exits. Heavy imports (networkx, pyroute2, ovs,
docker) happen inside the commands so `ovsnet --help` stays fast. The exit
codes are listed in ovsnet.errors.
"""

from __future__ import annotations

import sys

import typer

from ovsnet.cli import host, importing, lab, picture, verify
from ovsnet.cli.options import err

app = typer.Typer(
    help="Container networks on Open vSwitch from one declarative file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
for part in (host.app, picture.app, importing.app, verify.app):
    app.registered_commands += part.registered_commands
app.add_typer(lab.app, name="lab")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err("ovsnet: interrupted")
        sys.exit(130)
