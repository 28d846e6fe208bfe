"""Pack a wheelhouse into one tar for the hosts, the same bytes for the same wheels.

One file crosses SSH instead of one per wheel (each a round of module runs),
and a tar that did not change is not copied again: names sorted, times,
owners and modes fixed. Usage: bundle_wheels.py WHEELHOUSE OUT.tar
"""

import io
import pathlib
import sys
import tarfile


def main(wheelhouse: str, out: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for wheel in sorted(pathlib.Path(wheelhouse).glob("*.whl")):
            data = wheel.read_bytes()
            info = tarfile.TarInfo(wheel.name)
            info.size, info.mtime, info.mode = len(data), 315532800, 0o644
            tar.addfile(info, io.BytesIO(data))
    target = pathlib.Path(out)
    if not target.exists() or target.read_bytes() != buf.getvalue():
        target.write_bytes(buf.getvalue())
        print("changed")


if __name__ == "__main__":
    main(*sys.argv[1:])
