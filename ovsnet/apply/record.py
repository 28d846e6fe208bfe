"""The record's file: /var/lib/ovsnet/<topology>/<host>.json (see ovsnet.kinds.record for what is in it).

Written before the first change that loses what it keeps, removed by a
completed `down`. A copy rides in the OVS bridge's external_ids; `down` reads
that one when the file is gone.
"""

from __future__ import annotations

import os
from pathlib import Path

from ovsnet.errors import BackendError
from ovsnet.kinds.record import Record, from_text, to_text

__all__ = ["Record", "path_for", "read", "remove", "write"]


def path_for(state_dir: str | Path, topology: str, host: str) -> Path:
    return Path(state_dir) / topology / f"{host}.json"


def read(state_dir: str | Path, topology: str, host: str) -> Record | None:
    p = path_for(state_dir, topology, host)
    try:
        return from_text(p.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise BackendError(
            f"state file {p} is corrupt ({exc}); move it aside to continue: ovsnet then uses the copy kept in "
            "OVSDB, or the topology's management section, when it has to restore the NIC"
        ) from None


def write(state_dir: str | Path, record: Record) -> None:
    p = path_for(state_dir, record.topology, record.host)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    # Write then rename: a crash leaves the old file or the new, never half of one.
    with open(tmp, "w") as f:
        f.write(to_text(record))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def remove(state_dir: str | Path, topology: str, host: str) -> None:
    p = path_for(state_dir, topology, host)
    p.unlink(missing_ok=True)
    try:
        p.parent.rmdir()
    except OSError:
        pass
