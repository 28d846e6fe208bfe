"""The working tree on a small ext4 disk (label ovsnet-src), made for each run
with `mke2fs -d`: how ovsnet's code and the test bed's scripts reach the VMs,
which have no network to fetch them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LABEL = "ovsnet-src"
GUEST_SRC = "/ovsnet"


def tree_files() -> list[str]:
    """The working tree as git sees it: tracked and untracked files, not ignored ones."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"], capture_output=True, check=True).stdout
        return [f for f in out.decode().split("\0") if f and (REPO / f).is_file()]
    except (subprocess.CalledProcessError, FileNotFoundError):
        skip = {".git", ".venv", "__pycache__", ".hypothesis", ".pytest_cache", ".vagrant", "build", "dist"}
        files = []
        for root, dirs, names in os.walk(REPO):
            dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
            files += [os.path.relpath(os.path.join(root, n), REPO) for n in names]
        return files


def make_tree_disk(work: Path) -> Path:
    stage = work / "tree"
    for rel in tree_files():
        dst = stage / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dst)
    size = sum(f.stat().st_size for f in stage.rglob("*") if f.is_file())
    mb = max(32, size * 3 // 2**20 + 16)
    img = work / "tree.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-L", LABEL, "-d", str(stage), str(img), f"{mb}M"], check=True)
    shutil.rmtree(stage)
    return img


# Mounted now and at every boot (fstab), so the tree is there again after a reboot.
MOUNT_SCRIPT = (f"mkdir -p {GUEST_SRC}; grep -q 'LABEL={LABEL} ' /etc/fstab || "
                f"echo 'LABEL={LABEL} {GUEST_SRC} ext4 ro,nofail 0 0' >> /etc/fstab; "
                f"mountpoint -q {GUEST_SRC} || mount {GUEST_SRC}")
