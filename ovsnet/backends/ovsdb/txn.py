"""One OVSDB transaction under construction: the rows every OVS op writes through.

Ops (defined with their kinds, e.g. ovsnet.kinds.ovs_port) call `op.build(txn)`;
this class knows the schema's structure only: bridges hang off the root
row, ports off bridges, interfaces off ports. Reference columns
(Open_vSwitch.bridges, Bridge.ports) are computed in Python and written whole
once, after verify(): concurrent writers make the commit return TRY_AGAIN
instead of being overwritten, and rows created and removed within the same op
list need no special case.

Existing objects on "add" and missing ones on "set" mean the host changed
since the plan was made; deleting what is already gone reaches the end state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ovsnet.backends.ovsdb.rows import root_row, set_column
from ovsnet.errors import BackendError

if TYPE_CHECKING:
    from ovs.db.idl import Idl, Row


class Txn:
    def __init__(self, idl: Idl, remote: str):
        self.idl = idl
        self.remote = remote
        root = root_row(idl)
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
        self.interfaces_to_check: set[str] = set()
        self.internal_added: set[str] = set()  # internal ports made here: their kernel links come later

    def build(self, ops: Sequence[Any]) -> None:
        for op in ops:
            op.build(self)
        self._write_references()
        self.root.increment("next_cfg")

    # --- bridges ---

    def add_bridge(self, name: str, columns: Mapping[str, Any]) -> Row:
        if name in self.bridges:
            raise BackendError(f"bridge {name} already exists at {self.remote} (changed since planning?)")
        row = self._insert("Bridge")
        self.set(row, "name", name, f"bridge {name}")
        for column, value in columns.items():
            self.set(row, column, value, f"bridge {name}")
        self.set(row, "ports", [], f"bridge {name}")
        self.bridges[name] = row
        self.ports_of[name] = []
        self.bridges_dirty = True
        return row

    def bridge(self, name: str) -> Row:
        row = self.bridges.get(name)
        if row is None:
            raise BackendError(f"no bridge {name} at {self.remote} (removed since planning?)")
        self.ensure_exists(row)
        return row

    def del_bridge(self, name: str) -> None:
        row = self.bridges.pop(name, None)
        if row is None:
            return
        for port in self._ports(name, row):
            self._forget_port(port.name)
        self.ports_of.pop(name, None)
        self.bridges_dirty = True
        # Ports and interfaces only it refers to are garbage-collected by the server.
        row.delete()

    # --- ports ---

    def add_port(self, bridge: str, name: str, interfaces: Sequence[tuple[str, Mapping[str, Any]]],
                 columns: Mapping[str, Any]) -> Row:
        """A port with its interfaces, each (name, its columns); ovs-vswitchd's verdict on them is checked after the commit."""
        if name in self.ports:
            raise BackendError(
                f"port {name} already exists on bridge {self.port_bridge[name]} "
                f"at {self.remote} (changed since planning?)"
            )
        br = self.bridge(bridge)
        rows = []
        for iface_name, iface_columns in interfaces:
            what = f"interface {iface_name}"
            iface = self._insert("Interface")
            self.set(iface, "name", iface_name, what)
            for column, value in iface_columns.items():
                self.set(iface, column, value, what)
            rows.append(iface)
            self.interfaces_to_check.add(iface_name)
            if iface_columns.get("type") == "internal":
                self.internal_added.add(iface_name)
        port = self._insert("Port")
        what = f"port {name}"
        self.set(port, "name", name, what)
        self.set(port, "interfaces", rows, what)
        for column, value in columns.items():
            self.set(port, column, value, what)
        self._ports(bridge, br).append(port)
        self.ports[name] = port
        self.port_bridge[name] = bridge
        return port

    def port(self, name: str) -> Row:
        port = self.ports.get(name)
        if port is None:
            raise BackendError(f"no port {name} at {self.remote} (removed since planning?)")
        self.ensure_exists(port)
        self.interfaces_to_check.update(iface.name for iface in port.interfaces)
        return port

    def set_interfaces(self, name: str, interfaces: Sequence[tuple[str, Mapping[str, Any]]]) -> Row:
        """Make a port's interfaces exactly these (a bond's members): rows it keeps stay as they are,
        new ones are inserted with their columns, the rest the server collects. Returns the port."""
        port = self.port(name)
        had = {iface.name: iface for iface in port.interfaces}
        rows = []
        for iface_name, iface_columns in interfaces:
            row = had.get(iface_name)
            if row is None:
                what = f"interface {iface_name}"
                row = self._insert("Interface")
                self.set(row, "name", iface_name, what)
                for column, value in iface_columns.items():
                    self.set(row, column, value, what)
                self.interfaces_to_check.add(iface_name)
            rows.append(row)
        if port.uuid not in self.new_rows:
            port.verify("interfaces")
        self.set(port, "interfaces", rows, f"port {name}")
        return port

    def del_port(self, bridge: str, name: str) -> None:
        port = self.ports.get(name)
        if port is None:
            return
        owner = self.port_bridge[name]
        if owner != bridge:
            raise BackendError(f"port {name} is on bridge {owner}, not {bridge}, at {self.remote}")
        ports = self._ports(owner, self.bridges[owner])
        ports[:] = [p for p in ports if p.uuid != port.uuid]
        self._forget_port(name)
        if port.uuid in self.new_rows:
            for iface in port.interfaces:
                iface.delete()
        # Existing rows only need unreferencing: the server collects them,
        # and their interfaces with them.
        port.delete()

    # --- rows ---

    def set(self, row: Row, column: str, value: Any, what: str, shown: Any = None) -> None:
        set_column(row, column, value, what, shown)

    def ensure_exists(self, row: Row) -> None:
        # An update whose row was deleted meanwhile matches nothing and still
        # "succeeds"; verifying a column turns that into TRY_AGAIN.
        if row.uuid not in self.new_rows:
            row.verify("name")

    def _insert(self, table: str) -> Row:
        row = self.idl.txn.insert(self.idl.tables[table])
        self.new_rows.add(row.uuid)
        return row

    def _ports(self, bridge_name: str, bridge: Row) -> list[Row]:
        if bridge_name not in self.ports_of:
            self.ports_of[bridge_name] = list(bridge.ports)
        return self.ports_of[bridge_name]

    def _forget_port(self, name: str) -> None:
        port = self.ports.pop(name, None)
        self.port_bridge.pop(name, None)
        if port is not None:
            for iface in port.interfaces:
                self.interfaces_to_check.discard(iface.name)
                self.internal_added.discard(iface.name)
        self.interfaces_to_check.discard(name)

    def _write_references(self) -> None:
        for name, ports in self.ports_of.items():
            bridge = self.bridges.get(name)
            if bridge is None:
                continue
            if bridge.uuid not in self.new_rows:
                bridge.verify("ports")
            self.set(bridge, "ports", ports, f"bridge {name}")
        if self.bridges_dirty:
            self.root.verify("bridges")
            self.set(self.root, "bridges", list(self.bridges.values()), "Open_vSwitch")
