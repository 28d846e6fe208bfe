"""The boot unit: OVSDB keeps the bridges across a reboot, the kernel forgets
the Linux side (bridges, veths, addresses), so `ovsnet up` runs again at boot,
after Open vSwitch and before Docker."""

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
After=openvswitch-switch.service ovs-vswitchd.service network-pre.target
Wants=openvswitch-switch.service network-pre.target
Before=docker.service network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={cmd}

[Install]
WantedBy=multi-user.target
"""
