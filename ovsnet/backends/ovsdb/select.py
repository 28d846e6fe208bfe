"""Reading OVSDB with one `select` transaction, parsed by the standard library.

Why not the python-ovs IDL for reads: it replicates the database row by row
in pure Python (a monitor, then Row objects whose every attribute access
converts a Datum), which at 1,000 ports cost about 1.1 s to connect and
0.6 s to snapshot, most of a no-op `up` (bench/apply.py --phases, 2026-11-30,
load 4-9: no-op `up` at N=1000 3.4 s before, 0.56 s after, with the netlink
read changes). A read needs none of that: the selects of one transaction
are one consistent picture of the database, and json.loads (C) parses them
in milliseconds. The IDL still writes (connection.py), opened only when there
is something to write.

Only unix: and tcp: remotes are read this way; for anything else (ssl:)
`read` returns None and the caller reads through the IDL.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from ovsnet.backends.ovsdb.read import COLUMNS
from ovsnet.current import OvsBridge, OvsInterface, OvsPort, OvsState

DATABASE = "Open_vSwitch"


class ReadError(Exception):
    """The server answered with an error, or not in time; the message says which."""


def read(remote: str, timeout: float) -> OvsState | None:
    """The database as an OvsState, or None when this remote kind is not read here."""
    sock = _connect(remote, timeout)
    if sock is None:
        return None
    tables = ("Open_vSwitch", "Bridge", "Port", "Interface")
    with sock:
        ops = [{"op": "select", "table": t, "where": [], "columns": ["_uuid", *COLUMNS[t]]} for t in tables]
        sock.sendall(json.dumps({"method": "transact", "id": 0, "params": [DATABASE, *ops]}).encode())
        reply = _reply(sock, timeout)
    if reply.get("error") is not None:
        raise ReadError(f"select refused: {reply['error']}")
    results = reply.get("result") or []
    for r in results:
        if isinstance(r, dict) and r.get("error"):
            raise ReadError(f"select refused: {r['error']}: {r.get('details', '')}")
    root_rows, bridge_rows, port_rows, iface_rows = (r["rows"] for r in results)
    return _state(root_rows, bridge_rows, port_rows, iface_rows)


def _connect(remote: str, timeout: float) -> socket.socket | None:
    kind, _, rest = remote.partition(":")
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: Any = rest
    elif kind == "tcp":
        host, _, port = rest.rpartition(":")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        address = (host.strip("[]"), int(port))
    else:
        return None
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _reply(sock: socket.socket, timeout: float) -> dict[str, Any]:
    """The reply to request id 0; echo requests from the server are answered."""
    deadline = time.monotonic() + timeout
    dec = json.JSONDecoder()
    chunks: list[bytes] = []
    while True:
        if time.monotonic() > deadline:
            raise ReadError(f"no reply within {timeout:g} s")
        data = sock.recv(1 << 20)
        if not data:
            raise ReadError("connection closed by the server")
        chunks.append(data)
        # A message ends with "}": only then is a parse worth trying.
        if not data.rstrip().endswith(b"}"):
            continue
        text = b"".join(chunks).decode()
        try:
            msg, end = dec.raw_decode(text.lstrip())
        except ValueError:
            continue
        chunks = [text.lstrip()[end:].encode()]
        if msg.get("method") == "echo":
            sock.sendall(json.dumps({"id": msg.get("id"), "result": msg.get("params", []), "error": None}).encode())
            continue
        if msg.get("id") == 0:
            return msg


# --- OVSDB's JSON forms: ["uuid", u], ["set", [...]], ["map", [[k, v], ...]] ----------


def _set(value: Any) -> list[Any]:
    if isinstance(value, list) and value and value[0] == "set":
        return [_atom(v) for v in value[1]]
    return [_atom(value)]


def _atom(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and value[0] in ("uuid", "named-uuid"):
        return value[1]
    return value


def _first(value: Any) -> Any:
    items = _set(value)
    return items[0] if items else None


def _map(value: Any) -> dict[str, str]:
    if isinstance(value, list) and value and value[0] == "map":
        return {k: v for k, v in value[1]}
    return {}


def _state(root_rows: list[dict], bridge_rows: list[dict], port_rows: list[dict], iface_rows: list[dict]) -> OvsState:
    """The same OvsState read.snapshot makes from the IDL (tests/integration/test_ovsdb_backend.py compares them)."""
    if not root_rows:
        return OvsState()
    root = root_rows[0]
    bridges_by_id = {_atom(r["_uuid"]): r for r in bridge_rows}
    ports_by_id = {_atom(r["_uuid"]): r for r in port_rows}
    ifaces_by_id = {_atom(r["_uuid"]): r for r in iface_rows}
    bridges: dict[str, OvsBridge] = {}
    ports: dict[str, OvsPort] = {}
    for bid in _set(root["bridges"]):
        bridge = bridges_by_id.get(bid)
        if bridge is None:
            continue
        bname = bridge["name"]
        mine = [ports_by_id[p] for p in _set(bridge["ports"]) if p in ports_by_id]
        for port in mine:
            ifaces = sorted((ifaces_by_id[i] for i in _set(port["interfaces"]) if i in ifaces_by_id), key=lambda r: r["name"])
            ports[port["name"]] = OvsPort(
                name=port["name"],
                bridge=bname,
                tag=_first(port["tag"]),
                trunks=frozenset(_set(port["trunks"])),
                vlan_mode=_first(port["vlan_mode"]),
                interfaces=tuple(
                    OvsInterface(
                        name=i["name"],
                        type=i["type"],
                        ofport=_first(i["ofport"]),
                        error=_first(i["error"]),
                        external_ids=_map(i["external_ids"]),
                        mac=_first(i["mac"]),
                        link_state=_first(i["link_state"]),
                        lacp_current=_first(i["lacp_current"]),
                    )
                    for i in ifaces
                ),
                external_ids=_map(port["external_ids"]),
                bond_mode=_first(port["bond_mode"]),
                lacp=_first(port["lacp"]),
                other_config=_map(port["other_config"]),
            )
        bridges[bname] = OvsBridge(
            name=bname,
            datapath_type=bridge["datapath_type"],
            ports=tuple(sorted(p["name"] for p in mine)),
            external_ids=_map(bridge["external_ids"]),
        )
    return OvsState(bridges=bridges, ports=ports, cur_cfg=root["cur_cfg"])
