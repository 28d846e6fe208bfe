"""Named network namespaces, made and removed as `ip netns add/del` does, without a child process.

The mount dance is iproute2's: /var/run/netns is made a shared mount (so a
namespace bound there is seen from every mount namespace), an empty file is
created, a thread unshares a new network namespace and bind-mounts its own
/proc/thread-self/ns/net onto the file; the namespace lives as long as that
mount. Removing is a lazy unmount and an unlink. A thread, not a forked
child: a fork per namespace cost time and, under load, pyroute2's helper
child timed out.
"""

from __future__ import annotations

import ctypes
import errno
import os
import uuid

from ovsnet.backends.netns import NETNS_DIR, in_new_namespace

MS_BIND, MS_REC, MS_SHARED = 0x1000, 0x4000, 1 << 20
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def unique_prefix(stem: str = "ovn") -> str:
    """A short per-run prefix; interface and namespace names stay under 15 bytes."""
    return f"{stem}{uuid.uuid4().hex[:5]}"


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def _check(rc: int, what: str) -> None:
    if rc != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _shared_rundir() -> None:
    os.makedirs(NETNS_DIR, exist_ok=True)
    if _libc.mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None) == 0:
        return
    # Not a mount point yet: bind it onto itself, then share it.
    _check(_libc.mount(NETNS_DIR.encode(), NETNS_DIR.encode(), b"none", MS_BIND | MS_REC, None), f"bind {NETNS_DIR}")
    _check(_libc.mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None), f"share {NETNS_DIR}")


def create(name: str) -> None:
    """A new named namespace with its loopback up (ping to its own addresses needs it)."""
    from ovsnet.backends.netlink import Netlink
    from ovsnet.backends.netlink.ops import NlSetLink

    _shared_rundir()
    path = os.path.join(NETNS_DIR, name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    try:
        in_new_namespace(lambda: _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None), f"bind namespace {name}"))
        with Netlink(name) as nl:
            nl.apply([NlSetLink("lo", up=True)])
    except BaseException:
        remove(name)
        raise


def remove(name: str) -> None:
    """Remove a namespace; its links go with it once nothing holds it. Missing is not an error."""
    path = os.path.join(NETNS_DIR, name)
    if not os.path.exists(path):
        return
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):  # not mounted: a leftover file
            raise OSError(code, f"unmount {path}: {os.strerror(code)}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def listed(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []
