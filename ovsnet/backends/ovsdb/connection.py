"""A connection to ovsdb-server through python-ovs's IDL: synced reads, commits, "applied" waits.

Talks JSON-RPC to ovsdb-server directly (no ovs-vsctl) so that every Ovs*
operation of an apply lands in one atomic transaction, and waits on
next_cfg/cur_cfg like ovs-vsctl and ovsdbapp do, so that "done" means
"ovs-vswitchd has applied it", not merely "the database accepted it".

`ovs` is imported inside functions only: the CLI imports this module lazily
and python-ovs is slow to import and absent on machines that only validate.
"""

from __future__ import annotations

import errno
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ovsnet.backends.ovsdb.read import COLUMNS, snapshot
from ovsnet.backends.ovsdb.rows import first, live, root_row, txn_error
from ovsnet.backends.ovsdb.txn import Txn
from ovsnet.current import OvsState
from ovsnet.errors import BackendError, VerificationError

if TYPE_CHECKING:
    from types import TracebackType

    from ovs.db.idl import Idl, Transaction

DATABASE = "Open_vSwitch"


class _Deadline:
    """One time budget, in the clock ovs.poller uses (monotonic milliseconds)."""

    def __init__(self, seconds: float):
        self.start = time.monotonic()
        self.seconds = seconds
        self.ms = (self.start + seconds) * 1000.0

    def expired(self) -> bool:
        return time.monotonic() >= self.start + self.seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def _strerror(code: int) -> str:
    import ovs.util

    if code == ovs.util.EOF:
        return "connection closed by the server"
    return os.strerror(code)


class Ovsdb:
    """A connection to one ovsdb-server's Open_vSwitch database.

    Connects on first use; use as a context manager (or call close()) so the
    socket is released.
    """

    def __init__(self, remote: str, timeout: float = 10.0):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.remote = remote
        self.timeout = timeout
        self._idl: Idl | None = None
        from ovsnet.backends.ovsdb import ovsjson

        ovsjson.install()

    def __enter__(self) -> Ovsdb:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._idl is not None:
            self._idl.close()
            self._idl = None

    # --- public operations -------------------------------------------------

    def read(self) -> OvsState:
        """The database now: one select transaction (select.py), or the IDL for remotes it does not speak."""
        from ovsnet.backends.ovsdb import select

        try:
            state = select.read(self.remote, self.timeout)
        except OSError as exc:
            raise self._unreachable(exc.strerror or str(exc)) from None
        except select.ReadError as exc:
            raise BackendError(f"ovsdb-server at {self.remote}: {exc}") from None
        if state is not None:
            return state
        return self.read_through_idl()

    def read_through_idl(self) -> OvsState:
        idl = self._synced(_Deadline(self.timeout))
        return snapshot(idl)

    def ensure_root(self) -> None:
        """Create the Open_vSwitch root row of a brand-new database (`ovs-vsctl init`)."""
        from ovs.db.idl import Transaction

        deadline = _Deadline(self.timeout)
        idl = self._synced(deadline)
        if root_row(idl) is not None:
            return
        txn = Transaction(idl)
        txn.insert(idl.tables["Open_vSwitch"])
        status = self._commit(idl, txn, deadline)
        if status in (Transaction.SUCCESS, Transaction.UNCHANGED):
            return
        # Another client may have initialised it at the same moment (the table
        # allows one row); that is the end state we wanted.
        if root_row(self._synced(deadline)) is not None:
            return
        raise BackendError(
            f"cannot create the Open_vSwitch row at {self.remote}: {txn_error(txn)}"
        )

    def transact(self, ops: Sequence[Any], wait: bool = True) -> set[str]:
        """Execute all `ops` in one OVSDB transaction; with `wait`, until ovs-vswitchd applied it.

        Returns the names of the internal ports it added: ovs-vswitchd makes
        their kernel links after cur_cfg, so a caller that needs them waits.
        """
        from ovs.db.idl import Transaction

        if not ops:
            return set()
        deadline = _Deadline(self.timeout)
        while True:
            idl = self._synced(deadline)
            txn = Transaction(idl)
            try:
                built = Txn(idl, self.remote)
                built.build(ops)
            except BaseException:
                txn.abort()
                raise
            status = self._commit(idl, txn, deadline)
            if status in (Transaction.SUCCESS, Transaction.UNCHANGED):
                break
            if status == Transaction.TRY_AGAIN:
                # A verified column changed under us or the connection dropped:
                # rebuild from the fresh contents, as ovs-vsctl does.
                if not deadline.expired():
                    continue
                raise BackendError(
                    f"OVSDB transaction at {self.remote} not committed: the database kept "
                    f"changing under it or the connection kept dropping for {self.timeout:g} s"
                )
            raise BackendError(
                f"OVSDB transaction at {self.remote} failed, nothing was changed: "
                f"{txn_error(txn)}"
            )
        if not wait:
            return built.internal_added
        if status == Transaction.SUCCESS:
            self._wait_applied(idl, txn.get_increment_new_value())
        self._verify_interfaces(idl, built.interfaces_to_check)
        return built.internal_added

    # --- connection --------------------------------------------------------

    def _connected(self, deadline: _Deadline) -> Idl:
        if self._idl is None:
            self._idl = self._open(deadline)
        return self._idl

    def _open(self, deadline: _Deadline) -> Idl:
        import ovs.db.idl

        helper = ovs.db.idl.SchemaHelper(schema_json=self._fetch_schema(deadline))
        for table, columns in COLUMNS.items():
            helper.register_columns(table, columns)
        idl = ovs.db.idl.Idl(self.remote, helper)
        try:
            if not self._run_until(idl, idl.has_ever_connected, deadline):
                raise self._unreachable(f"no database contents after {self.timeout:g} s")
        except BaseException:
            idl.close()
            raise
        return idl

    def _fetch_schema(self, deadline: _Deadline) -> dict[str, Any]:
        """Ask the server for its schema, so no .ovsschema file has to be found on disk."""
        import ovs.db.schema
        import ovs.jsonrpc
        import ovs.poller
        import ovs.stream
        import ovs.timeval

        if not ovs.stream.Stream.is_valid_name(self.remote):
            raise BackendError(
                f"invalid OVSDB remote {self.remote!r}: expected unix:PATH, tcp:IP:PORT or ssl:IP:PORT"
            )
        error, stream = ovs.stream.Stream.open_block(
            ovs.stream.Stream.open(self.remote), max(0, int(deadline.ms - ovs.timeval.msec()))
        )
        if error:
            raise self._unreachable(_strerror(error))
        rpc = ovs.jsonrpc.Connection(stream)
        try:
            request = ovs.jsonrpc.Message.create_request("get_schema", [DATABASE])
            error = rpc.send(request)
            while not error:
                error, msg = rpc.recv()
                if error == errno.EAGAIN:
                    if deadline.expired():
                        raise self._unreachable(f"no reply after {self.timeout:g} s")
                    error = 0
                    poller = ovs.poller.Poller()
                    rpc.wait(poller)
                    rpc.recv_wait(poller)
                    poller.timer_wait_until(deadline.ms)
                    poller.block()
                    continue
                if msg is None or msg.id != request.id:
                    continue
                if msg.type == ovs.jsonrpc.Message.T_ERROR:
                    raise BackendError(
                        f"ovsdb-server at {self.remote} has no {DATABASE} database: {msg.error}"
                    )
                schema = ovs.db.schema.DbSchema.from_json(msg.result)
                missing = [
                    f"{table}.{column}"
                    for table, columns in COLUMNS.items()
                    for column in columns
                    if table not in schema.tables or column not in schema.tables[table].columns
                ]
                if missing:
                    raise BackendError(
                        f"the {DATABASE} schema at {self.remote} (version {schema.version}) "
                        f"lacks {', '.join(missing)}; is this Open vSwitch too old?"
                    )
                return msg.result
            raise self._unreachable(_strerror(error))
        finally:
            rpc.close()

    def _unreachable(self, reason: str) -> BackendError:
        return BackendError(
            f"cannot reach ovsdb-server at {self.remote}: {reason}; "
            "is openvswitch-switch running? (start it, or pass --db)"
        )

    def _run_until(self, idl: Idl, done: Callable[[], bool], deadline: _Deadline) -> bool:
        """Let the IDL process messages until `done()` or the deadline; True if done."""
        import ovs.poller

        while True:
            idl.run()
            if done():
                return True
            if deadline.expired():
                return False
            poller = ovs.poller.Poller()
            idl.wait(poller)
            poller.timer_wait_until(deadline.ms)
            poller.block()

    def _synced(self, deadline: _Deadline) -> Idl:
        """The IDL, guaranteed to reflect every transaction committed before this call.

        The IDL applies updates only when it runs, so a long-lived connection
        could plan from a stale replica. ovsdb-server sends pending monitor
        updates before a transaction's reply, so a read-only transaction's round
        trip is a barrier.
        """
        from ovs.db.idl import Transaction

        idl = self._connected(deadline)
        while True:
            if not self._run_until(idl, lambda: live(idl), deadline):
                raise self._unreachable(
                    f"connection lost and not back after {self.timeout:g} s"
                )
            txn = Transaction(idl)
            txn.add_op({"op": "select", "table": DATABASE, "where": [], "columns": ["_uuid"]})
            status = self._commit(idl, txn, deadline)
            if status == Transaction.SUCCESS:
                return idl
            if status != Transaction.TRY_AGAIN:
                raise BackendError(f"ovsdb-server at {self.remote}: {txn_error(txn)}")
            if deadline.expired():
                raise self._unreachable(f"connection kept dropping for {self.timeout:g} s")

    def _commit(self, idl: Idl, txn: Transaction, deadline: _Deadline) -> str:
        """Commit and wait for the server's verdict; BackendError if it never comes."""
        import ovs.poller
        from ovs.db.idl import Transaction

        status = txn.commit()
        while status == Transaction.INCOMPLETE:
            if deadline.expired():
                txn.abort()
                raise BackendError(
                    f"ovsdb-server at {self.remote} did not answer a transaction within "
                    f"{self.timeout:g} s; it may or may not have been committed"
                )
            idl.run()
            poller = ovs.poller.Poller()
            idl.wait(poller)
            txn.wait(poller)
            poller.timer_wait_until(deadline.ms)
            poller.block()
            status = txn.commit()
        return status

    # --- after the commit --------------------------------------------------

    def _wait_applied(self, idl: Idl, next_cfg: int) -> None:
        deadline = _Deadline(self.timeout)

        def applied() -> bool:
            root = root_row(idl)
            return root is not None and root.cur_cfg >= next_cfg

        if self._run_until(idl, applied, deadline):
            return
        if not live(idl):
            raise BackendError(
                f"lost the connection to ovsdb-server at {self.remote} while waiting for "
                f"ovs-vswitchd; the transaction was committed as next_cfg {next_cfg}"
            )
        root = root_row(idl)
        cur_cfg = root.cur_cfg if root is not None else "nothing"
        raise VerificationError(
            f"the OVSDB transaction committed as next_cfg {next_cfg}, but ovs-vswitchd "
            f"reports cur_cfg {cur_cfg} after {deadline.elapsed():.1f} s: "
            "is ovs-vswitchd running?"
        )

    def _verify_interfaces(self, idl: Idl, names: set[str]) -> None:
        """Report every interface ovs-vswitchd could not open, the way ovs-vsctl does."""
        by_name = {row.name: row for row in idl.tables["Interface"].rows.values()}
        problems = []
        for name in sorted(names):
            row = by_name.get(name)
            if row is None:
                continue
            ofport, error = first(row.ofport), first(row.error)
            if ofport == -1 or error:
                detail = error or "ofport -1"
                problems.append(f"{name} ({detail})")
        if problems:
            raise VerificationError(
                "ovs-vswitchd could not set up "
                + ", ".join(problems)
                + "; the transaction was committed, so these ports stay in OVSDB until removed"
                + " (check the device exists in ovs-vswitchd's network namespace)"
            )
