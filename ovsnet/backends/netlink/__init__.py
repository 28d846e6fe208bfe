"""rtnetlink: one session per namespace (session.py), the ops (ops.py), their only sender (batch.py)."""

from ovsnet.backends.netlink.session import Netlink, NetlinkBatchError, NetlinkOpError

__all__ = ["Netlink", "NetlinkBatchError", "NetlinkOpError"]
