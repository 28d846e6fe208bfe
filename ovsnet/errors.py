"""One error type per kind of failure, each with its exit code; the CLI maps them.

Library code raises these and never prints or exits. The exit codes, all of
them (README "Exit codes"):

  0  done, or in sync            4  not applied as asked (rolled back)
  1  drift, changes pending, or  5  refused for safety, nothing changed
     a verify mismatch           6  another run holds the host's lock
  2  bad input (file, options)  70  internal error: a bug in ovsnet
  3  backend error (OVSDB, netlink, Docker unreachable or refusing)

`ovsnet lab exec` passes the command's own exit code through and uses, like
`docker exec`, 125 for its own errors (no such lab or node), 126 for a
command that cannot run and 127 for one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_BAD_INPUT = 2
EXIT_BACKEND = 3
EXIT_NOT_APPLIED = 4
EXIT_REFUSED = 5
EXIT_LOCKED = 6
EXIT_INTERNAL = 70
EXIT_EXEC_OWN, EXIT_EXEC_CANNOT_RUN, EXIT_EXEC_NOT_FOUND = 125, 126, 127


class OvsnetError(Exception):
    """Base of every error ovsnet reports to a person."""

    exit_code = EXIT_DRIFT


@dataclass(frozen=True)
class Finding:
    """One problem in a topology file, located by its key path."""

    path: str  # "hosts.db1.docker[0].vlan", or "" for the whole file
    message: str
    hint: str = ""
    severity: str = "error"  # or "warning"
    line: int | None = None
    column: int | None = None

    def render(self, source: str) -> str:
        where = source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.path:
            where += f": {self.path}"
        text = f"{where}: {self.severity}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(OvsnetError):
    """The topology file cannot be read or is not valid; carries every finding."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, source: str, findings: list[Finding]):
        self.source = source
        self.findings = findings
        super().__init__("\n".join(f.render(source) for f in findings))


class UsageError(OvsnetError):
    """The command line asks for something that does not exist (a host name, a file)."""

    exit_code = EXIT_BAD_INPUT


class BackendError(OvsnetError):
    """OVSDB, netlink or Docker refused or could not be reached."""

    exit_code = EXIT_BACKEND


class VerificationError(OvsnetError):
    """The switch or kernel did not end up as asked (timeout, ofport -1, gateway silent)."""

    exit_code = EXIT_NOT_APPLIED


class RefusedError(OvsnetError):
    """A safety rule stopped the apply before it changed anything."""

    exit_code = EXIT_REFUSED


class LockedError(OvsnetError):
    """Another ovsnet apply holds this host's lock."""

    exit_code = EXIT_LOCKED
