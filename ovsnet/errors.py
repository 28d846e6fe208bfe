"""One error type per kind of failure; the CLI maps each to an exit code.

Library code raises these and never prints or exits.
"""

from __future__ import annotations

from dataclasses import dataclass


class OvsnetError(Exception):
    """Base of every error ovsnet reports to a person."""

    exit_code = 1


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

    exit_code = 2

    def __init__(self, source: str, findings: list[Finding]):
        self.source = source
        self.findings = findings
        super().__init__("\n".join(f.render(source) for f in findings))


class UsageError(OvsnetError):
    """The command line asks for something that does not exist (a host name, a file)."""

    exit_code = 2


class BackendError(OvsnetError):
    """OVSDB, netlink or Docker refused or could not be reached."""

    exit_code = 3


class VerificationError(OvsnetError):
    """The switch or kernel did not end up as asked (timeout, ofport -1, gateway silent)."""

    exit_code = 4


class RefusedError(OvsnetError):
    """A safety rule stopped the apply before it changed anything."""

    exit_code = 5


class LockedError(OvsnetError):
    """Another ovsnet apply holds this host's lock."""

    exit_code = 6
