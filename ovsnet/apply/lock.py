"""One apply at a time per host: an flock that dies with its process."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager
from typing import Iterator

from ovsnet.apply import record
from ovsnet.apply.target import Target
from ovsnet.errors import BackendError, LockedError


@contextmanager
def host_lock(target: Target, topology: str, host: str, wait: float) -> Iterator[None]:
    path = record.path_for(target.state_dir, topology, host).with_suffix(".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise BackendError(f"cannot create lock {path}: {exc.strerror} (run as root, or pass --state-dir)") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
                    raise LockedError(f"another ovsnet run (pid {holder}) is applying to host {host}; wait for it, or pass --wait SECONDS") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
