"""The SSH guard: never move a NIC that somebody's SSH session runs over, unless told.

The sessions come from the kernel (ovsnet.backends.sessions: sshd's
established connections in the target's namespace), so the guard holds
under sudo and su, and protects every user's session, not only the caller's;
SSH_CONNECTION, when the caller's environment still has it, is asked too.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from ovsnet.errors import RefusedError
from ovsnet.plan.model import Plan


def check_uplink_move(netlink: Any, plan: Plan, allow: bool, in_namespace: bool,
                      sessions: Callable[[], list[Any]] | None = None) -> None:
    if allow or not plan.moves_from:
        return
    peers: list[tuple[str, str]] = []  # (remote address, how it was found)
    if sessions is not None:
        peers += [(s.remote, f"an SSH session from {s.remote} (port {s.remote_port}) to {s.local}") for s in sessions()]
    env = os.environ.get("SSH_CONNECTION", "").split()
    if env and not in_namespace:
        # This process's own session lives in this machine's namespace, not in a target namespace's.
        peers.append((env[0], f"this SSH session (from {env[0]})"))
    for remote, what in peers:
        via = netlink.route_to(remote)
        if via in plan.moves_from:
            raise RefusedError(
                f"{what} runs over {via}, the NIC this plan moves onto the bridge; "
                "a mistake would cut it off. Run from a console, or pass --allow-uplink-move (ovsnet rolls back if the gateway stops answering)"
            )
