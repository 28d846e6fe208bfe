"""How ovsnet marks what it owns, in every place it creates things.

containerlab's rule: an object is ovsnet's only if it carries the mark, and
ovsnet never deletes what it did not create. OVSDB rows carry
external_ids; Linux links an ifalias "ovsnet:<topology>:<role>"; Docker
networks a label; files ovsnet writes for a network manager a header line.
"""

from __future__ import annotations

OWNER_KEY = "ovsnet-topology"  # OVSDB external_ids: the topology
ROLE_KEY = "ovsnet-role"  # OVSDB external_ids: what the object is for
RECORD_KEY = "ovsnet-record"  # OVSDB external_ids of the bridge: a copy of the host's record
ALIAS_PREFIX = "ovsnet:"
DOCKER_OWNER_LABEL = "org.ovsnet.topology"
# What `ovsnet lab` makes for itself (its switch, a test endpoint's port or
# link) carries this: OVSDB external_ids key, or ifalias prefix. Neither
# ovsnet's (no topology owns it) nor a stranger's.
LAB_KEY = "ovsnet-lab"
LAB_ALIAS_PREFIX = f"{LAB_KEY}:"
DOCKER_VLAN_LABEL = "org.ovsnet.vlan"


def alias_for(topology: str, role: str) -> str:
    """The ifalias ovsnet writes on Linux objects it creates."""
    return f"{ALIAS_PREFIX}{topology}:{role}"


def alias_owner(alias: str | None) -> str | None:
    """The topology named in an ovsnet ifalias, or None for foreign links."""
    if not alias or not alias.startswith(ALIAS_PREFIX):
        return None
    return alias[len(ALIAS_PREFIX):].split(":", 1)[0] or None


def alias_role(alias: str | None) -> str | None:
    if not alias or not alias.startswith(ALIAS_PREFIX):
        return None
    parts = alias[len(ALIAS_PREFIX):].split(":", 1)
    return parts[1] if len(parts) == 2 else None


def ovs_marks(topology: str, role: str) -> dict[str, str]:
    return {OWNER_KEY: topology, ROLE_KEY: role}
