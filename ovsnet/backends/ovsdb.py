"""OVSDB access through python-ovs's IDL: snapshot reads and one transaction per apply.

Talks JSON-RPC to ovsdb-server directly (no ovs-vsctl) so that every Ovs*
operation of an apply lands in one atomic transaction, and waits on
next_cfg/cur_cfg like ovs-vsctl and ovsdbapp do, so that "done" means
"ovs-vswitchd has applied it", not merely "the database accepted it".

`ovs` is imported inside functions only: the CLI imports this module lazily
and python-ovs is slow to import and absent on machines that only validate.
"""

from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ovsnet.errors import BackendError, VerificationError
from ovsnet.ops import (
    OvsAddBridge,
    OvsAddPort,
    OvsDelBridge,
    OvsDelPort,
    OvsOp,
    OvsSetBridge,
    OvsSetPort,
)
from ovsnet.state import OvsBridge, OvsInterface, OvsPort, OvsState

if TYPE_CHECKING:
    from types import TracebackType

    from ovs.db.idl import Idl, Row, Transaction

DATABASE = "Open_vSwitch"

# Only what ovsnet reads or writes: a smaller monitor means less traffic and
# no surprises from columns other tools churn (statistics, status).
COLUMNS: dict[str, list[str]] = {
    "Open_vSwitch": ["bridges", "next_cfg", "cur_cfg"],
    "Bridge": ["name", "ports", "datapath_type", "external_ids"],
    "Port": ["name", "interfaces", "tag", "trunks", "vlan_mode", "external_ids"],
    "Interface": ["name", "type", "ofport", "error", "external_ids"],
}


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


def _row_to_uuid(value: Any) -> Any:
    from ovs.db.idl import Row

    return value.uuid if isinstance(value, Row) else value


def _optional(value: Any) -> list[Any]:
    """Optional OVSDB columns (min 0, max 1) are sets of zero or one element."""
    return [] if value is None else [value]


def _first(values: list[Any]) -> Any:
    return values[0] if values else None


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
        from ovsnet.backends import ovsjson

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
        idl = self._synced(_Deadline(self.timeout))
        return _snapshot(idl)

    def ensure_root(self) -> None:
        """Create the Open_vSwitch root row of a brand-new database (`ovs-vsctl init`)."""
        from ovs.db.idl import Transaction

        deadline = _Deadline(self.timeout)
        idl = self._synced(deadline)
        if _root(idl) is not None:
            return
        txn = Transaction(idl)
        txn.insert(idl.tables["Open_vSwitch"])
        status = self._commit(idl, txn, deadline)
        if status in (Transaction.SUCCESS, Transaction.UNCHANGED):
            return
        # Another client may have initialised it at the same moment (the table
        # allows one row); that is the end state we wanted.
        if _root(self._synced(deadline)) is not None:
            return
        raise BackendError(
            f"cannot create the Open_vSwitch row at {self.remote}: {_txn_error(txn)}"
        )

    def transact(self, ops: Sequence[OvsOp], wait: bool = True) -> None:
        """Execute all `ops` in one OVSDB transaction; with `wait`, until ovs-vswitchd applied it."""
        from ovs.db.idl import Transaction

        if not ops:
            return
        deadline = _Deadline(self.timeout)
        while True:
            idl = self._synced(deadline)
            txn = Transaction(idl)
            try:
                built = _Builder(idl, self.remote).build(ops)
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
                f"{_txn_error(txn)}"
            )
        if not wait:
            return
        if status == Transaction.SUCCESS:
            self._wait_applied(idl, txn.get_increment_new_value())
        self._verify_interfaces(idl, built.interfaces_to_check)

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
            if not self._run_until(idl, lambda: _live(idl), deadline):
                raise self._unreachable(
                    f"connection lost and not back after {self.timeout:g} s"
                )
            txn = Transaction(idl)
            txn.add_op({"op": "select", "table": DATABASE, "where": [], "columns": ["_uuid"]})
            status = self._commit(idl, txn, deadline)
            if status == Transaction.SUCCESS:
                return idl
            if status != Transaction.TRY_AGAIN:
                raise BackendError(f"ovsdb-server at {self.remote}: {_txn_error(txn)}")
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
            root = _root(idl)
            return root is not None and root.cur_cfg >= next_cfg

        if self._run_until(idl, applied, deadline):
            return
        if not _live(idl):
            raise BackendError(
                f"lost the connection to ovsdb-server at {self.remote} while waiting for "
                f"ovs-vswitchd; the transaction was committed as next_cfg {next_cfg}"
            )
        root = _root(idl)
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
            ofport, error = _first(row.ofport), _first(row.error)
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


# --- building a transaction -----------------------------------------------


@dataclass
class _Built:
    interfaces_to_check: set[str] = field(default_factory=set)


class _Builder:
    """Turns ops into changes on IDL rows within the IDL's open transaction.

    Reference columns (Open_vSwitch.bridges, Bridge.ports) are computed in
    Python and written whole once, after verify(): concurrent writers make the
    commit return TRY_AGAIN instead of being overwritten, and rows created and
    removed within the same op list need no special case.
    """

    def __init__(self, idl: Idl, remote: str):
        self.idl = idl
        self.remote = remote
        root = _root(idl)
        if root is None:
            raise BackendError(
                f"the database at {remote} has no Open_vSwitch row; "
                "is openvswitch-switch set up? (`ovs-vsctl init` creates it)"
            )
        self.root = root
        self.bridges: dict[str, Row] = {row.name: row for row in root.bridges}
        self.new_rows: set[Any] = set()  # uuids inserted here: verify() is moot for them
        self.bridges_dirty = False
        self.ports_of: dict[str, list[Row]] = {}  # bridge name -> ports, once touched
        self.port_bridge: dict[str, str] = {}
        self.ports: dict[str, Row] = {}
        for bridge in self.bridges.values():
            for port in bridge.ports:
                self.ports[port.name] = port
                self.port_bridge[port.name] = bridge.name
        self.built = _Built()

    def build(self, ops: Sequence[OvsOp]) -> _Built:
        for op in ops:
            if isinstance(op, OvsAddBridge):
                self._add_bridge(op)
            elif isinstance(op, OvsDelBridge):
                self._del_bridge(op)
            elif isinstance(op, OvsSetBridge):
                self._set_bridge(op)
            elif isinstance(op, OvsAddPort):
                self._add_port(op)
            elif isinstance(op, OvsSetPort):
                self._set_port(op)
            elif isinstance(op, OvsDelPort):
                self._del_port(op)
            else:
                raise TypeError(f"not an OVSDB operation: {op!r}")
        self._write_references()
        self.root.increment("next_cfg")
        return self.built

    # Existing objects on "add" and missing ones on "set" mean the host changed
    # since the plan was made; deleting what is already gone reaches the end state.

    def _add_bridge(self, op: OvsAddBridge) -> None:
        if op.name in self.bridges:
            raise BackendError(f"bridge {op.name} already exists at {self.remote} (changed since planning?)")
        row = self._insert("Bridge")
        _set(row, "name", op.name, f"bridge {op.name}")
        _set(row, "datapath_type", op.datapath_type, f"bridge {op.name}")
        _set(row, "external_ids", dict(op.external_ids), f"bridge {op.name}")
        _set(row, "ports", [], f"bridge {op.name}")
        self.bridges[op.name] = row
        self.ports_of[op.name] = []
        self.bridges_dirty = True

    def _del_bridge(self, op: OvsDelBridge) -> None:
        row = self.bridges.pop(op.name, None)
        if row is None:
            return
        for port in self._ports(op.name, row):
            self._forget_port(port.name)
        self.ports_of.pop(op.name, None)
        self.bridges_dirty = True
        # Ports and interfaces only it refers to are garbage-collected by the server.
        row.delete()

    def _set_bridge(self, op: OvsSetBridge) -> None:
        row = self._bridge(op.name)
        self._ensure_exists(row)
        _set(row, "datapath_type", op.datapath_type, f"bridge {op.name}")
        _set(row, "external_ids", dict(op.external_ids), f"bridge {op.name}")

    def _add_port(self, op: OvsAddPort) -> None:
        if op.name in self.ports:
            raise BackendError(
                f"port {op.name} already exists on bridge {self.port_bridge[op.name]} "
                f"at {self.remote} (changed since planning?)"
            )
        bridge = self._bridge(op.bridge)
        what = f"interface {op.name}"
        iface = self._insert("Interface")
        _set(iface, "name", op.name, what)
        _set(iface, "type", op.iface_type, what)
        port = self._insert("Port")
        what = f"port {op.name}"
        _set(port, "name", op.name, what)
        _set(port, "interfaces", [iface], what)
        self._write_vlan(port, what, op.tag, op.trunks, op.vlan_mode, op.external_ids)
        self._ports(op.bridge, bridge).append(port)
        self.ports[op.name] = port
        self.port_bridge[op.name] = op.bridge
        self.built.interfaces_to_check.add(op.name)

    def _set_port(self, op: OvsSetPort) -> None:
        port = self.ports.get(op.name)
        if port is None:
            raise BackendError(f"no port {op.name} at {self.remote} (removed since planning?)")
        self._ensure_exists(port)
        self._write_vlan(port, f"port {op.name}", op.tag, op.trunks, op.vlan_mode, op.external_ids)
        self.built.interfaces_to_check.update(iface.name for iface in port.interfaces)

    def _del_port(self, op: OvsDelPort) -> None:
        port = self.ports.get(op.name)
        if port is None:
            return
        owner = self.port_bridge[op.name]
        if owner != op.bridge:
            raise BackendError(
                f"port {op.name} is on bridge {owner}, not {op.bridge}, at {self.remote}"
            )
        ports = self._ports(owner, self.bridges[owner])
        ports[:] = [p for p in ports if p.uuid != port.uuid]
        self._forget_port(op.name)
        if port.uuid in self.new_rows:
            for iface in port.interfaces:
                iface.delete()
        # Existing rows only need unreferencing: the server collects them,
        # and their interfaces with them.
        port.delete()

    # --- helpers ---

    def _insert(self, table: str) -> Row:
        row = self.idl.txn.insert(self.idl.tables[table])
        self.new_rows.add(row.uuid)
        return row

    def _bridge(self, name: str) -> Row:
        row = self.bridges.get(name)
        if row is None:
            raise BackendError(f"no bridge {name} at {self.remote} (removed since planning?)")
        return row

    def _ports(self, bridge_name: str, bridge: Row) -> list[Row]:
        if bridge_name not in self.ports_of:
            self.ports_of[bridge_name] = list(bridge.ports)
        return self.ports_of[bridge_name]

    def _forget_port(self, name: str) -> None:
        self.ports.pop(name, None)
        self.port_bridge.pop(name, None)
        self.built.interfaces_to_check.discard(name)

    def _ensure_exists(self, row: Row) -> None:
        # An update whose row was deleted meanwhile matches nothing and still
        # "succeeds"; verifying a column turns that into TRY_AGAIN.
        if row.uuid not in self.new_rows:
            row.verify("name")

    def _write_vlan(
        self,
        port: Row,
        what: str,
        tag: int | None,
        trunks: frozenset[int],
        vlan_mode: str | None,
        external_ids: Any,
    ) -> None:
        _set(port, "tag", _optional(tag), what, shown=tag)
        _set(port, "trunks", sorted(trunks), what)
        _set(port, "vlan_mode", _optional(vlan_mode), what, shown=vlan_mode)
        _set(port, "external_ids", dict(external_ids), what)

    def _write_references(self) -> None:
        for name, ports in self.ports_of.items():
            bridge = self.bridges.get(name)
            if bridge is None:
                continue
            if bridge.uuid not in self.new_rows:
                bridge.verify("ports")
            _set(bridge, "ports", ports, f"bridge {name}")
        if self.bridges_dirty:
            self.root.verify("bridges")
            _set(self.root, "bridges", list(self.bridges.values()), "Open_vSwitch")


def _set(row: Row, column: str, value: Any, what: str, shown: Any = None) -> None:
    """Write a column and check it took.

    python-ovs's Row.__setattr__ drops a value it cannot convert, logging
    through vlog (silent unless vlog was initialised), so the conversion is
    done here first to get the reason, and the write is read back.
    """
    from ovs.db import data
    from ovs.db import error as ovs_error

    column_type = row._table.columns[column].type
    try:
        expected = data.Datum.from_python(column_type, value, _row_to_uuid)
    except ovs_error.Error as e:
        shown = value if shown is None else shown
        raise BackendError(f"cannot set {what} {column} to {shown!r}: {e}") from None
    setattr(row, column, value)
    written = data.Datum.from_python(column_type, getattr(row, column), _row_to_uuid)
    if written != expected:
        raise BackendError(f"python-ovs did not accept {what} {column} = {value!r}")


# --- reading ----------------------------------------------------------------


def _live(idl: Idl) -> bool:
    # After a disconnect the IDL stays in its MONITORING state until it has
    # reconnected, and a commit meanwhile fails at once with TRY_AGAIN: without
    # the session check, retrying would spin.
    return idl.state == idl.IDL_S_MONITORING and idl._session.is_connected()


def _root(idl: Idl) -> Row | None:
    return next(iter(idl.tables["Open_vSwitch"].rows.values()), None)


def _snapshot(idl: Idl) -> OvsState:
    root = _root(idl)
    if root is None:
        return OvsState()
    bridges: dict[str, OvsBridge] = {}
    ports: dict[str, OvsPort] = {}
    for bridge in root.bridges:
        for port in bridge.ports:
            ports[port.name] = OvsPort(
                name=port.name,
                bridge=bridge.name,
                tag=_first(port.tag),
                trunks=frozenset(port.trunks),
                vlan_mode=_first(port.vlan_mode),
                interfaces=tuple(
                    OvsInterface(
                        name=iface.name,
                        type=iface.type,
                        ofport=_first(iface.ofport),
                        error=_first(iface.error),
                        external_ids=dict(iface.external_ids),
                    )
                    for iface in sorted(port.interfaces, key=lambda i: i.name)
                ),
                external_ids=dict(port.external_ids),
            )
        bridges[bridge.name] = OvsBridge(
            name=bridge.name,
            datapath_type=bridge.datapath_type,
            ports=tuple(sorted(p.name for p in bridge.ports)),
            external_ids=dict(bridge.external_ids),
        )
    return OvsState(bridges=bridges, ports=ports, cur_cfg=root.cur_cfg)


def _txn_error(txn: Transaction) -> str:
    """The server's error as "error: details", rather than python-ovs's raw JSON."""
    text = txn.get_error()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict) and "error" in parsed:
        details = parsed.get("details")
        return f"{parsed['error']}: {details}" if details else str(parsed["error"])
    return text
