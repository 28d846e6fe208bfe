"""systemd-networkd: its per-link state file says whether it manages a link, and with which .network file.

/run/systemd/netif/links/<ifindex> is what networkctl reads: ADMIN_STATE is
"configured" (or on its way there) for a link networkd manages, and
NETWORK_FILE names the .network file that matched it (netplan's files are
generated under /run/systemd/network/ with "netplan" in their name).
"""

from __future__ import annotations

from pathlib import Path

from ovsnet.current import HostFiles, Link
from ovsnet.managers import NETWORKD, Managed, stopped, under
from ovsnet.managers.handoff import FileEdit, Handoff, PortSpec, Program, lease_client_id, marker, safe

STATE_DIR = "/run/systemd/netif/links"
MANAGING = ("configured", "configuring", "initialized", "pending", "failed")


def read_state(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


UNIT = "systemd-networkd.service"


def detect(root: Path, link: Link) -> Managed | None:
    if stopped(root, UNIT):
        return None  # its links/ files are from before it stopped
    state_file = under(root, f"{STATE_DIR}/{link.index}")
    state = read_state(state_file)
    network_file = state.get("NETWORK_FILE")
    if not network_file or state.get("ADMIN_STATE") not in MANAGING:
        return None
    config = under(root, network_file)
    dhcp = bool(state.get("DHCP4_ADDRESS") or state.get("DHCP_LEASE")) or _dhcp_in(config)
    detail = "via netplan" if "netplan" in Path(network_file).name else ""
    return Managed(link.name, NETWORKD, f"{STATE_DIR}/{link.index} (ADMIN_STATE={state['ADMIN_STATE']}, NETWORK_FILE={network_file})",
                   dhcp, network_file, detail)


def _dhcp_in(network_file: Path) -> bool:
    """DHCP=yes|ipv4|true in the [Network] section of a .network file."""
    try:
        lines = network_file.read_text().splitlines()
    except OSError:
        return False
    section = ""
    for raw in lines:
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Network" and line.replace(" ", "").lower().startswith("dhcp="):
            return line.split("=", 1)[1].strip().lower() in ("yes", "true", "ipv4", "both", "1")
    return False


# --- the handover ---------------------------------------------------------------------------------
#
# Two .network files in /etc/systemd/network whose names sort before any other
# (networkd takes the first file that matches a link, across /etc, /run and
# /usr/lib, so they win over netplan's 10-netplan-*.network in /run and over
# the user's own): the NIC's says [Link] Unmanaged=yes (networkd leaves an OVS
# port alone: no address, no DHCP, no link-local, and never takes it down), the
# port's carries the host's addresses, or DHCP. The port is matched by name
# only: it has the NIC's MAC, so a file matching by MACAddress= would match it
# too, and ours comes first. The user's files are not touched.

CONFIG_DIR = "/etc/systemd/network"
LEASES_DIR = "/run/systemd/netif/leases"


def file_for(spec: PortSpec, link: str) -> str:
    return f"{CONFIG_DIR}/05-ovsnet-{safe(spec.topology)}-{safe(link)}.network"


def client_identity(spec: PortSpec, files: HostFiles) -> tuple[str, list[str]]:
    """The port's [DHCPv4] identity: the one the NIC's lease was given to.

    networkd's default client identifier is its DUID with an IAID hashed from
    the interface's name, so the port (another name) would be another client
    and get another address. The NIC's lease file says what it sent
    (CLIENTID=ff<IAID><DUID>, RFC 4361): the same DUID (the machine's) and that
    IAID make the port the same client. CLIENTID=01<MAC> (ClientIdentifier=mac)
    is the port's MAC already. No lease on file: the MAC, said in a note."""
    if spec.client_id:
        return spec.client_id, []
    cid = lease_client_id(files, f"{LEASES_DIR}/{spec.nic_index}") if spec.nic_index is not None else None
    if cid and cid.startswith("ff") and len(cid) > 10:
        return f"duid iaid={int(cid[2:10], 16)}", []
    if cid and cid.startswith("01"):
        return "mac", []
    return "mac", [f"no DHCP lease of {spec.nic} on file in {LEASES_DIR}: {spec.port} asks as ClientIdentifier=mac "
                   f"(the NIC's MAC), and the server may hand out another address"]


def handoff(spec: PortSpec, files: HostFiles) -> Handoff:
    nic = (f"{marker(spec, f'{spec.nic} is a port of an Open vSwitch bridge; the host addresses live on {spec.port}')}\n"
           f"[Match]\nName={spec.nic}\n\n[Link]\nUnmanaged=yes\n\n"
           "[Network]\nDHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n")
    lines = [marker(spec, f"the management port, handed over from {spec.nic}"), "[Match]", f"Name={spec.port}", "", "[Network]"]
    notes: list[str] = []
    identity = None
    if spec.dhcp:
        identity, notes = client_identity(spec, files)
        lines += ["DHCP=ipv4"]
    lines += [f"Address={a}" for a in spec.addresses]
    lines += [f"Gateway={g}" for g in spec.gateways]
    lines += [f"DNS={d}" for d in spec.dns]
    lines += ["LinkLocalAddressing=no", "IPv6AcceptRA=no"]
    if not spec.dhcp:
        # The addresses are on the port already (ovsnet moved them): networkd must
        # not drop them as foreign while it takes over, nor when it restarts.
        # (Not KeepConfiguration=dhcp for a lease: networkd would then set its
        # address with an infinite lifetime, and it would outlive the lease.)
        lines += ["KeepConfiguration=static"]
    if identity is not None:
        how, _, iaid = identity.partition(" iaid=")
        lines += ["", "[DHCPv4]", f"ClientIdentifier={how}"] + ([f"IAID={iaid}"] if iaid else [])
    port = "\n".join(lines) + "\n"
    return Handoff(
        files=(FileEdit(file_for(spec, spec.nic), nic, f"networkd leaves {spec.nic} to OVS"),
               FileEdit(file_for(spec, spec.port), port, f"networkd runs {spec.port} with the host's " + ("lease" if spec.dhcp else "addresses"))),
        take=(Program(("networkctl", "reload")), Program(("networkctl", "reconfigure", spec.port))),
        give=(Program(("networkctl", "reload")), Program(("networkctl", "reconfigure", spec.nic))),
        client_id=identity, notes=tuple(notes))
