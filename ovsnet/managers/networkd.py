"""systemd-networkd: its per-link state file says whether it manages a link, and with which .network file.

/run/systemd/netif/links/<ifindex> is what networkctl reads: ADMIN_STATE is
"configured" (or on its way there) for a link networkd manages, and
NETWORK_FILE names the .network file that matched it (netplan's files are
generated under /run/systemd/network/ with "netplan" in their name).
"""

from __future__ import annotations

from pathlib import Path

from ovsnet.current import Link
from ovsnet.managers import NETWORKD, Managed, under

STATE_DIR = "/run/systemd/netif/links"
MANAGING = ("configured", "configuring", "initialized", "pending", "failed")


def read_state(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def detect(root: Path, link: Link) -> Managed | None:
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
