"""The SSH guard: never move the NIC a person's SSH session runs over, unless told."""

from __future__ import annotations

import os
from typing import Any

from ovsnet.errors import RefusedError
from ovsnet.plan.model import Plan


def check_uplink_move(netlink: Any, plan: Plan, allow: bool, in_namespace: bool) -> None:
    if allow or in_namespace or not plan.moves_from:
        return
    ssh = os.environ.get("SSH_CONNECTION", "").split()
    if not ssh:
        return
    via = netlink.route_to(ssh[0])
    if via in plan.moves_from:
        raise RefusedError(
            f"this SSH session (from {ssh[0]}) runs over {via}, the NIC this plan moves onto the bridge; "
            "a mistake would cut you off. Run from a console, or pass --allow-uplink-move (ovsnet rolls back if the gateway stops answering)"
        )
