#!/usr/bin/env bash
# The two-VM trunk test on plain QEMU (software emulation): builds or reuses the
# guest image (build-box.sh, cached in /var/cache/ovsnet-vm), then runs
# qemu_harness.py: two VMs joined by a trunk, provisioned with provision.sh,
# checked for the kernel datapath, the uplink move, the ping matrix and the
# 802.1Q tags on the link. Exit 0 when every check passes.
#
# Usage: vagrant/qemu-test.sh [--keep] [--work DIR] [--timeout S]   (as root)
# Needs: qemu-system-x86, debootstrap, e2fsprogs, tcpdump, python3 (>= 3.11).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
[ "$(id -u)" = 0 ] || { echo "qemu-test.sh: run as root (debootstrap, mke2fs -d of the tree)" >&2; exit 2; }
for tool in qemu-system-x86_64 debootstrap mke2fs tcpdump python3; do
  command -v "$tool" >/dev/null || { echo "qemu-test.sh: $tool is missing (apt-get install qemu-system-x86 debootstrap e2fsprogs tcpdump python3-venv)" >&2; exit 2; }
done
t=$SECONDS
IMAGE="$("$HERE/build-box.sh" --print-dir)"
echo "qemu-test.sh: image $IMAGE ready after $((SECONDS - t)) s"
exec python3 "$HERE/qemu_harness.py" --image-dir "$IMAGE" "$@"
