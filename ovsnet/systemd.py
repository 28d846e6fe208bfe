"""The boot unit: OVSDB keeps the bridges across a reboot, the kernel forgets
the Linux side (bridges, veths, addresses), so `ovsnet up` runs again at boot,
after Open vSwitch and before Docker.

It also runs before the host's network managers (systemd-networkd,
NetworkManager, ifupdown's networking.service): after a handover their
files give the NIC no address and the management port the host's, and the
port (an OVS internal port, made by ovs-vswitchd from OVSDB) must exist, up
and with the NIC's MAC, when the manager starts and looks for it, so that it
configures the port at once and asks the DHCP server as the NIC did. Ordered
so, no boot has a moment where the NIC holds the address: the manager never
gives it to the NIC, and ovsnet leaves the port's addresses to the manager
(ovsnet.kinds.uplink). After network-pre.target, as Open vSwitch is; the
managers' units order themselves after network-pre.target too, so there is
no cycle. Units that are not installed are ignored by systemd."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path


def unit_name(topology: str, host: str) -> str:
    return f"ovsnet-{topology}-{host}.service"


def unit_text(topology_file: Path, host: str, argv0: str) -> str:
    exe = shutil.which("ovsnet") or str(Path(argv0).resolve())
    cmd = " ".join(shlex.quote(a) for a in (exe, "up", str(topology_file), "--host", host, "--quiet", "--wait", "60", "--allow-uplink-move"))
    return f"""[Unit]
Description=ovsnet: container networks on Open vSwitch ({host})
Documentation=file://{topology_file}
After=openvswitch-switch.service ovs-vswitchd.service ovsdb-server.service network-pre.target
Wants=openvswitch-switch.service network-pre.target
Before=systemd-networkd.service NetworkManager.service networking.service network.target docker.service network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={cmd}

[Install]
WantedBy=multi-user.target
"""
