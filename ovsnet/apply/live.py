"""The open connections of one run, and how each backend applies a group of changes.

Each backend is opened only when a run needs it. `apply_groups` is the one
question the executor asks of any backend: apply these changes' ops, in
order, telling me (on_group) as each change completes; on failure the
exception carries `.touched`, the changes the backend applied at least in
part, which are undone on rollback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ovsnet.apply.target import Target
from ovsnet.current import Current, HostFiles, LinuxState, OvsState
from ovsnet.errors import BackendError, VerificationError

Report = Callable[[str], None]
OnGroup = Callable[[int], None]


def quiet(_: str) -> None:
    pass


@dataclass
class Live:
    target: Target
    report: Report = quiet
    _ovsdb: Any = None
    _netlink: Any = None
    _docker: Any = None
    _files: Any = None
    _ethtool: Any = None
    docker_error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ovsdb(self) -> Any:
        if self._ovsdb is None:
            from ovsnet.backends.ovsdb import Ovsdb

            self._ovsdb = Ovsdb(self.target.ovsdb, timeout=self.target.ovs_timeout)
        return self._ovsdb

    @property
    def netlink(self) -> Any:
        if self._netlink is None:
            from ovsnet.backends.netlink import Netlink

            self._netlink = Netlink(self.target.netns)
        return self._netlink

    @property
    def files(self) -> Any:
        if self._files is None:
            from ovsnet.backends.files import Files

            self._files = Files(self.target.resolv_conf_path)
        return self._files

    def docker(self) -> Any:
        """The Docker backend, or None when Docker is not reachable (reason kept)."""
        if self._docker is None and self.docker_error is None:
            try:
                from ovsnet.backends.docker import Docker
            except ImportError:
                self.docker_error = "Docker networks are not managed by this ovsnet build (the docker package is missing)"
                return None
            try:
                self._docker = Docker(self.target.docker_host, timeout=self.target.docker_timeout)
            except BackendError as exc:
                self.docker_error = str(exc)
        return self._docker

    def close(self) -> None:
        for b in (self._ovsdb, self._netlink, self._docker):
            if b is not None:
                b.close()

    def read(self, reads: frozenset[str]) -> Current:
        ovs = self.ovsdb.read() if "ovsdb" in reads else OvsState()
        linux: LinuxState = self.netlink.read()
        docker = None
        if "docker" in reads:
            d = self.docker()
            docker = d.read() if d is not None else None
        managed = {}
        files = None
        if "managers" in reads:
            from ovsnet import managers

            managed = managers.detect(self.target.files_root, linux.links, self.target.netns, self.target.shared_files)
            files = HostFiles(self.target.files_root)
        return Current(ovs, linux, self.files.nameservers(), docker, managed, files)

    # --- applying ---------------------------------------------------------------

    def apply_groups(self, backend: str, groups: Sequence[Sequence[Any]], on_group: OnGroup | None, wait: bool = True) -> None:
        if backend == "netlink":
            self.netlink.apply_groups(groups, on_group)
        elif backend == "ovsdb":
            self._ovsdb_groups(groups, on_group, wait)
        else:
            self._one_by_one(backend, groups, on_group)

    def _ovsdb_groups(self, groups: Sequence[Sequence[Any]], on_group: OnGroup | None, wait: bool) -> None:
        """Every OVSDB change of the run in one transaction; done when ovs-vswitchd has made its internal ports."""
        try:
            internal = self.ovsdb.transact([op for ops in groups for op in ops], wait=wait)
            if wait:
                for name in sorted(internal):
                    self.netlink.wait_link(name, timeout=self.target.ovs_timeout)
        except VerificationError as exc:
            # Committed but not (fully) applied by ovs-vswitchd: undo the rows too.
            exc.touched = list(range(len(groups)))  # type: ignore[attr-defined]
            raise
        for i in range(len(groups)):
            if on_group is not None:
                try:
                    on_group(i)
                except BaseException as exc:
                    exc.touched = list(range(len(groups)))  # type: ignore[attr-defined]
                    raise

    def _one_by_one(self, backend: str, groups: Sequence[Sequence[Any]], on_group: OnGroup | None) -> None:
        target = self._backend_object(backend)
        done: list[int] = []
        for i, ops in enumerate(groups):
            ran = 0
            try:
                for op in ops:
                    op.run(target)
                    ran += 1
                done.append(i)
                if on_group is not None:
                    on_group(i)
            except BaseException as exc:
                exc.touched = done + ([i] if ran and i not in done else [])  # type: ignore[attr-defined]
                raise

    def _backend_object(self, backend: str) -> Any:
        if backend == "files":
            return self.files
        if backend == "dhcp":
            from ovsnet.backends.dhcp import Dhclient

            return Dhclient(self.target.files_root, self.target.netns)
        if backend == "manager":
            from ovsnet.backends.manager import ManagerHost

            return ManagerHost(self.target.files_root, self.target.netns)
        if backend == "ethtool":
            if self._ethtool is None:
                from ovsnet.backends.ethtool import Ethtool

                self._ethtool = Ethtool(self.target.netns)
            return self._ethtool
        if backend == "sysctl":
            from ovsnet.backends.sysctl import Sysctl

            return Sysctl(self.target.netns)
        if backend == "docker":
            d = self.docker()
            if d is None:
                raise BackendError(self.docker_error or "Docker is not reachable")
            return d
        raise BackendError(f"no backend named {backend!r}")
