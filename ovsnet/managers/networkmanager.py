"""NetworkManager: its per-device state file says whether it manages a device, and with which connection.

NetworkManager keeps /run/NetworkManager/devices/<ifindex>, a keyfile whose
[device] section has `managed=` and, for an active connection,
`connection-uuid=`; the connection itself is a keyfile under
/etc/NetworkManager/system-connections (or /run/NetworkManager/system-connections)
whose [ipv4] method says "auto" for DHCP.
"""

from __future__ import annotations

import configparser
from pathlib import Path

from ovsnet.current import Link
from ovsnet.managers import NETWORKMANAGER, Managed, under

DEVICES = "/run/NetworkManager/devices"
CONNECTIONS = ("/etc/NetworkManager/system-connections", "/run/NetworkManager/system-connections")


def _keyfile(path: Path) -> configparser.ConfigParser | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(path.read_text())
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    return parser


def detect(root: Path, link: Link) -> Managed | None:
    device = _keyfile(under(root, f"{DEVICES}/{link.index}"))
    if device is None or not device.has_section("device"):
        return None
    if device.get("device", "managed", fallback="false").strip().lower() != "true":
        return None
    uuid = device.get("device", "connection-uuid", fallback="").strip()
    config, dhcp = _connection(root, uuid) if uuid else (None, False)
    evidence = f"{DEVICES}/{link.index} (managed=true" + (f", connection {uuid}" if uuid else "") + ")"
    return Managed(link.name, NETWORKMANAGER, evidence, dhcp, config)


def _connection(root: Path, uuid: str) -> tuple[str | None, bool]:
    for directory in CONNECTIONS:
        base = under(root, directory)
        try:
            files = sorted(base.iterdir())
        except OSError:
            continue
        for f in files:
            conn = _keyfile(f)
            if conn is not None and conn.get("connection", "uuid", fallback="") == uuid:
                method = conn.get("ipv4", "method", fallback="auto").strip()
                return f"{directory}/{f.name}", method == "auto"
    return None, False
