"""Small helpers over python-ovs IDL rows, shared by the connection, the builder and the reader."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ovsnet.errors import BackendError

if TYPE_CHECKING:
    from ovs.db.idl import Idl, Row, Transaction


def row_to_uuid(value: Any) -> Any:
    from ovs.db.idl import Row

    return value.uuid if isinstance(value, Row) else value


def optional(value: Any) -> list[Any]:
    """Optional OVSDB columns (min 0, max 1) are sets of zero or one element."""
    return [] if value is None else [value]


def first(values: list[Any]) -> Any:
    return values[0] if values else None


def live(idl: Idl) -> bool:
    # After a disconnect the IDL stays in its MONITORING state until it has
    # reconnected, and a commit meanwhile fails at once with TRY_AGAIN: without
    # the session check, retrying would spin.
    return idl.state == idl.IDL_S_MONITORING and idl._session.is_connected()


def root_row(idl: Idl) -> Row | None:
    return next(iter(idl.tables["Open_vSwitch"].rows.values()), None)


def txn_error(txn: Transaction) -> str:
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


def set_column(row: Row, column: str, value: Any, what: str, shown: Any = None) -> None:
    """Write a column and check it took.

    python-ovs's Row.__setattr__ drops a value it cannot convert, logging
    through vlog (silent unless vlog was initialised), so the conversion is
    done here first to get the reason, and the queued write is checked.
    """
    from ovs.db import data
    from ovs.db import error as ovs_error

    column_type = row._table.columns[column].type
    try:
        expected = data.Datum.from_python(column_type, value, row_to_uuid)
    except ovs_error.Error as e:
        shown = value if shown is None else shown
        raise BackendError(f"cannot set {what} {column} to {shown!r}: {e}") from None
    setattr(row, column, value)
    # The write is what python-ovs queued for the transaction (Row._changes),
    # compared with the datum converted above; reading it back through the
    # Row's attribute converts it twice more: 0.2 s CPU at 1,000 ports
    # (bench/apply.py --phases, experiment X6).
    changes = getattr(row, "_changes", None)
    if isinstance(changes, dict):
        written = changes.get(column)
        if written is None and isinstance(getattr(row, "_data", None), dict):
            written = row._data.get(column)  # python-ovs skips rewriting an unchanged column
    else:
        written = data.Datum.from_python(column_type, getattr(row, column), row_to_uuid)
    if written != expected:
        raise BackendError(f"python-ovs did not accept {what} {column} = {value!r}")
