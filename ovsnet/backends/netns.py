"""Sockets born inside a network namespace, without a child process.

A socket keeps the namespace it was created in. setns(2) with CLONE_NEWNET
moves only the calling thread, so a short-lived thread enters the namespace,
makes the socket (or anything that opens sockets, like pyroute2's IPRoute)
and ends; this process never changes namespace, and nothing is forked.
pyroute2's own netns.create_socket forks a helper that runs
`ldconfig -p` (ctypes.util.find_library) on every call; ovsnet's apply path
starts no process at all (tests/hardening/test_no_shell.py).
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from typing import Callable, TypeVar

from ovsnet.errors import BackendError

NETNS_DIR = "/var/run/netns"
CLONE_NEWNET = 0x40000000
T = TypeVar("T")

# The symbols of the running program, libc's setns among them: no library search.
_libc = ctypes.CDLL(None, use_errno=True)


def path_of(netns: str) -> str:
    return os.path.join(NETNS_DIR, netns)


def inside(netns: str, make: Callable[[], T]) -> T:
    """make(), run by a thread that has entered `netns`; its result keeps that namespace."""
    try:
        fd = os.open(path_of(netns), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BackendError(f"no network namespace named {netns}") from None
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                code = ctypes.get_errno()
                raise OSError(code, f"setns into {netns}: {os.strerror(code)}")
            result.append(make())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    try:
        t = threading.Thread(target=run, name=f"ovsnet-netns-{netns}", daemon=True)
        t.start()
        t.join()
    finally:
        os.close(fd)
    if failure:
        raise failure[0]
    return result[0]


def in_new_namespace(make: Callable[[], T]) -> T:
    """make(), run by a thread that has unshared a brand-new network namespace (the lab's hosts)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            if _libc.unshare(CLONE_NEWNET) != 0:
                code = ctypes.get_errno()
                raise OSError(code, f"unshare: {os.strerror(code)}")
            result.append(make())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    t = threading.Thread(target=run, name="ovsnet-new-netns", daemon=True)
    t.start()
    t.join()
    if failure:
        raise failure[0]
    return result[0]


def socket_in(netns: str | None, family: int, kind: int, proto: int = 0) -> socket.socket:
    if not netns:
        return socket.socket(family, kind, proto)
    return inside(netns, lambda: socket.socket(family, kind, proto))
