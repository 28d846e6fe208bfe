"""NetworkManager: its per-device state file says whether it manages a device, and with which connection.

NetworkManager keeps /run/NetworkManager/devices/<ifindex>, a keyfile whose
[device] section has `managed=` and, for an active connection,
`connection-uuid=`; the connection itself is a keyfile under
/etc/NetworkManager/system-connections (or /run/NetworkManager/system-connections)
whose [ipv4] method says "auto" for DHCP.
"""

from __future__ import annotations

import configparser
import uuid
from pathlib import Path

from ovsnet.current import HostFiles, Link
from ovsnet.managers import NETWORKMANAGER, Managed, stopped, under
from ovsnet.managers.handoff import FileEdit, Handoff, PortSpec, Program, lease_client_id, marker, safe, v6

DEVICES = "/run/NetworkManager/devices"
CONNECTIONS = ("/etc/NetworkManager/system-connections", "/run/NetworkManager/system-connections")


def _keyfile(path: Path) -> configparser.ConfigParser | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(path.read_text())
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    return parser


UNIT = "NetworkManager.service"


def detect(root: Path, link: Link) -> Managed | None:
    if stopped(root, UNIT):
        return None  # its devices/ files are from before it stopped
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


# --- the handover ---------------------------------------------------------------------------------
#
# NetworkManager is told through nmcli (an argument list), not D-Bus: nmcli is
# NetworkManager's own client and is installed with it, its three verbs here
# are stable across releases, and ovsnet then needs no D-Bus binding (the
# configuration itself is files either way). Two files: a conf.d snippet that
# adds the NIC to `unmanaged-devices` (with `+=`, so the user's own list
# stays), and a keyfile connection for the management port, bound to it by
# interface name (the port has the NIC's MAC: a connection bound by MAC would
# match both; ours has a higher autoconnect priority). The connection is of
# type generic: an OVS internal port is not an Ethernet device to NetworkManager.

CONF_D = "/etc/NetworkManager/conf.d"
LEASES_DIR = "/var/lib/NetworkManager"


def conf_path(spec: PortSpec) -> str:
    return f"{CONF_D}/90-ovsnet-{safe(spec.topology)}.conf"


def keyfile_path(spec: PortSpec) -> str:
    return f"{CONNECTIONS[0]}/ovsnet-{safe(spec.topology)}-{safe(spec.port)}.nmconnection"


def connection_uuid(spec: PortSpec) -> str:
    """The same for every run of this topology and host: the keyfile is written the same."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ovsnet:{spec.topology}:{spec.host}:{spec.port}"))


def client_identity(spec: PortSpec, files: HostFiles) -> tuple[str, list[str]]:
    """ipv4.dhcp-client-id for the port: what the NIC's lease was given to (NetworkManager's
    internal client keeps CLIENTID= in <LEASES_DIR>/internal-<uuid>-<nic>.lease); without
    one, "mac" (the port has the NIC's MAC; the internal client's own default)."""
    if spec.client_id:
        return spec.client_id, []
    for name in files.names(LEASES_DIR):
        if name.endswith(f"-{spec.nic}.lease"):
            cid = lease_client_id(files, f"{LEASES_DIR}/{name}")
            if cid:
                return ":".join(cid[i:i + 2] for i in range(0, len(cid), 2)), []
    return "mac", [f"no lease of {spec.nic} on file in {LEASES_DIR}: {spec.port} asks with dhcp-client-id=mac (the NIC's MAC)"]


def handoff(spec: PortSpec, files: HostFiles) -> Handoff:
    # NetworkManager leaves a device it has no plugin for (an OVS internal port is a
    # "generic" device) unmanaged by default, and one that was down when it started
    # too ("external-down"): at boot it would never activate the port's connection
    # (seen on the VMs: `nmcli connection up` at `up` works, being an explicit
    # request, and the reboot left the port bare). A [device] section's managed=1
    # is the strongest of its settings and overrides both.
    conf = (f"{marker(spec, f'{spec.nic} is a port of an Open vSwitch bridge; NetworkManager runs {spec.port} instead')}\n"
            f"[keyfile]\nunmanaged-devices+=interface-name:{spec.nic}\n\n"
            f"[device-ovsnet-{safe(spec.topology)}-{safe(spec.port)}]\nmatch-device=interface-name:{spec.port}\nmanaged=1\n")
    uid = connection_uuid(spec)
    name = f"ovsnet-{safe(spec.topology)}-{safe(spec.port)}"
    lines = [marker(spec, f"the management port, handed over from {spec.nic}"),
             "[connection]", f"id={name}", f"uuid={uid}", "type=generic", f"interface-name={spec.port}",
             "autoconnect=true", "autoconnect-priority=50", "", "[ipv4]"]
    four = [a for a in spec.addresses if not v6(a)]
    six = [a for a in spec.addresses if v6(a)]
    gw4 = next((g for g in spec.gateways if not v6(g)), None)
    gw6 = next((g for g in spec.gateways if v6(g)), None)
    notes: list[str] = []
    identity = None
    if spec.dhcp:
        identity, notes = client_identity(spec, files)
        lines += ["method=auto", f"dhcp-client-id={identity}"]
    else:
        lines += ["method=manual"] + [f"address{i}={a}" for i, a in enumerate(four, 1)] + ([f"gateway={gw4}"] if gw4 else [])
    dns4 = [d for d in spec.dns if not v6(d)]
    if dns4:
        lines += ["dns=" + ";".join(dns4) + ";"]
    lines += ["may-fail=false", "", "[ipv6]"]
    if six:
        lines += ["method=manual"] + [f"address{i}={a}" for i, a in enumerate(six, 1)] + ([f"gateway={gw6}"] if gw6 else [])
    else:
        lines += ["method=ignore"]  # the host's IPv6 (link-local, RA) stays as the kernel has it
    keyfile = "\n".join(lines) + "\n"
    return Handoff(
        files=(FileEdit(conf_path(spec), conf, f"NetworkManager leaves {spec.nic} to OVS"),
               # NetworkManager ignores a keyfile that others may read.
               FileEdit(keyfile_path(spec), keyfile, f"NetworkManager runs {spec.port}", 0o600)),
        # NetworkManager takes the NIC down as it stops managing it (its unmanaged
        # state), at once, within `reload conf`: with DHCP, `connection up` would
        # ask through a trunk that is down and get no lease. ovsnet brings the
        # trunk up between the two (ovsnet.kinds.handover).
        release=(Program(("nmcli", "general", "reload", "conf")),),
        take=(Program(("nmcli", "connection", "load", keyfile_path(spec))), Program(("nmcli", "connection", "up", "uuid", uid))),
        # Managed again, the NIC gets its own connection back by NetworkManager's autoconnect.
        give=(Program(("nmcli", "connection", "reload")), Program(("nmcli", "general", "reload", "conf"))),
        client_id=identity, notes=tuple(notes))
