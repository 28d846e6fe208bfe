#!/usr/bin/env bash
# Builds the ovsnet test-bed guest: a minimal Debian 12 made with debootstrap,
# with Open vSwitch (kernel datapath), Python and ovsnet's Python dependencies
# already in /opt/ovsnet (ovsnet itself is installed from the working tree at
# provisioning, never baked in).
#
# Outputs, in a cache directory keyed by a hash of this script (which holds the
# package list) and of ovsnet's Python dependencies:
#   root.img      raw ext4 filesystem (no partition table), root=/dev/vda
#   vmlinuz       the guest kernel        } boot with -kernel/-initrd; the QEMU
#   initrd.img    its initramfs           } harness and the libvirt box both do
#   cmdline       the kernel command line to use
#   ovsnet-bookworm.box   (with --box) a Vagrant box for vagrant-libvirt
#
# Usage: vagrant/build-box.sh [--box] [--force] [--cache DIR] [--print-dir]
#   --box        also make the Vagrant (libvirt) box
#   --force      rebuild even when the cache has this key
#   --cache DIR  cache root (default $OVSNET_VM_CACHE or /var/cache/ovsnet-vm)
#   --print-dir  print only the image directory on stdout (logs go to stderr)
# Needs root, debootstrap, e2fsprogs (mke2fs -d), python3-venv; qemu-utils for --box.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CACHE="${OVSNET_VM_CACHE:-/var/cache/ovsnet-vm}"
MIRROR="${OVSNET_VM_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
IMAGE_SIZE=2G
WANT_BOX=0 FORCE=0 PRINT_DIR=0

# The guest's Debian packages (Depends only, no Recommends).
PACKAGES=(
  systemd-sysv udev dbus kmod procps iproute2 iputils-ping tcpdump
  linux-image-amd64
  openvswitch-switch
  docker.io apparmor busybox-static
  python3 python3-venv
  qemu-guest-agent
  openssh-server sudo rsync
  # The host's own network managers and DHCP, for the scenarios of tests/vm
  # (issue 15). Installed, but none manages a trunk NIC at boot (see "Network
  # managers" below): a scenario enables the one it tests.
  # libpam-systemd by name: it provides default-logind, which polkitd (through
  # network-manager) needs, and debootstrap does not resolve virtual packages.
  network-manager libpam-systemd ifupdown isc-dhcp-client dnsmasq-base
)

while [ $# -gt 0 ]; do
  case "$1" in
    --box) WANT_BOX=1 ;;
    --force) FORCE=1 ;;
    --cache) CACHE="$2"; shift ;;
    --print-dir) PRINT_DIR=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build-box.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "build-box: $*" >&2; }
die() { echo "build-box: error: $*" >&2; exit 1; }
# retry N CMD...: the package registries answer, but not always at the first try.
retry() {
  local n="$1" i=1; shift
  until "$@"; do
    [ "$i" -lt "$n" ] || return 1
    log "attempt $i of $n failed: $1; again in $((i * 10)) s"
    sleep $((i * 10)); i=$((i + 1))
  done
}

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot)"
for tool in debootstrap mke2fs python3; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install debootstrap e2fsprogs python3-venv)"
done

# ovsnet's runtime dependencies, from pyproject.toml (the Docker client among
# them: the VMs run Docker where the topology gives a host Docker networks).
PY_DEPS="$(python3 - "$REPO/pyproject.toml" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
print("\n".join(project["dependencies"]))
EOF
)"
# Build helpers the guest needs to `pip install` ovsnet from a tree without internet.
PY_BUILD_DEPS="setuptools>=61
wheel"

KEY="$( { cat "$0"; printf '%s\n' "$PY_DEPS" "$PY_BUILD_DEPS"; } | sha256sum | cut -c1-16)"
OUT="$CACHE/bookworm-$KEY"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # one build at a time; a second caller waits, then finds the cache

done_already() {
  [ -f "$OUT/ready" ] && { [ "$WANT_BOX" = 0 ] || [ -f "$OUT/ovsnet-bookworm.box" ]; }
}

if [ "$FORCE" = 0 ] && done_already; then
  log "cached: $OUT"
  [ "$PRINT_DIR" = 1 ] && echo "$OUT"
  exit 0
fi

START=$SECONDS
WORK="$CACHE/.build-$KEY.$$"
ROOT="$WORK/rootfs"

cleanup() {
  # Unmount whatever we mounted inside the chroot before removing anything,
  # and never cross into another filesystem while removing.
  for m in "$ROOT/proc" "$ROOT/sys" "$ROOT/dev/pts"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
  done
  if [ -d "$WORK" ]; then
    rm -rf --one-file-system "$WORK"
  fi
}
trap cleanup EXIT

if [ ! -f "$OUT/ready" ] || [ "$FORCE" = 1 ]; then
  rm -rf --one-file-system "$OUT"
  mkdir -p "$WORK" "$OUT"

  # 1. Python wheels for the guest, fetched on this machine (the guest has no
  #    network). A throw-away venv so the host's Python is left alone.
  log "python wheels: $(echo $PY_DEPS | tr '\n' ' ')"
  python3 -m venv "$WORK/venv"
  # shellcheck disable=SC2086
  retry 3 "$WORK/venv/bin/pip" wheel --disable-pip-version-check -w "$WORK/wheels" $PY_DEPS $PY_BUILD_DEPS > "$WORK/pip.log" 2>&1 \
    || { grep -v "is ignored: it is neither" "$WORK/pip.log" | tail -30 >&2; die "pip wheel failed (log above)"; }

  # 2. The root filesystem.
  log "debootstrap $SUITE (${#PACKAGES[@]} packages and their dependencies)"
  t=$SECONDS
  bootstrap() {
    for m in "$ROOT/proc" "$ROOT/sys"; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
    rm -rf --one-file-system "$ROOT"
    # --cache-dir: the .debs stay in the cache for the next build (a changed
    # package list or script downloads only what is new).
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="$(IFS=,; echo "${PACKAGES[*]}")" \
      "$SUITE" "$ROOT" "$MIRROR" >> "$WORK/debootstrap.log" 2>&1
  }
  mkdir -p "$CACHE/debs"
  retry 3 bootstrap || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  log "debootstrap done in $((SECONDS - t)) s"

  in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root chroot "$ROOT" "$@"; }

  # 3. Configuration.
  echo ovsnet-vm > "$ROOT/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tovsnet-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
  echo 'LABEL=ovsnet-root / ext4 defaults,noatime 0 1' > "$ROOT/etc/fstab"
  : > "$ROOT/etc/resolv.conf"
  # The management NIC (eth0: Vagrant's SSH, or QEMU user networking) is the
  # only one systemd-networkd manages; the trunk NIC and everything ovsnet
  # makes are left alone.
  mkdir -p "$ROOT/etc/systemd/network"
  cat > "$ROOT/etc/systemd/network/10-mgmt.network" <<'EOF'
[Match]
Name=eth0

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
  in_root systemctl enable systemd-networkd >/dev/null 2>&1
  in_root systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1
  # Network managers: installed, not running at boot, so that a trunk NIC
  # belongs to no one until a scenario (or the user) hands it to one.
  # NetworkManager and ifupdown's networking.service are disabled; when a
  # scenario starts NetworkManager it makes no automatic "Wired connection" on
  # any NIC and leaves eth0 (the management NIC, networkd's) alone; ifupdown's
  # file lists only lo.
  for unit in NetworkManager.service NetworkManager-wait-online.service NetworkManager-dispatcher.service \
              networking.service ifupdown-pre.service; do
    in_root systemctl disable "$unit" >/dev/null 2>&1 || true
  done
  mkdir -p "$ROOT/etc/NetworkManager/conf.d"
  printf '[main]\nno-auto-default=*\n\n[keyfile]\nunmanaged-devices=interface-name:eth0\n' \
    > "$ROOT/etc/NetworkManager/conf.d/10-ovsnet-testbed.conf"
  printf 'source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n' > "$ROOT/etc/network/interfaces"
  # Nothing slow or useless under emulation (every boot counts: the scenarios
  # reboot VMs). No graphics, no FUSE: their module loads took 7-9 s each.
  for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer \
              modprobe@drm.service modprobe@fuse.service; do
    in_root systemctl mask "$unit" >/dev/null 2>&1 || true
  done
  # Docker starts when provisioning needs it (provision.sh enables and starts
  # it for a host with Docker networks), not at every boot: 40 s under emulation.
  for unit in docker.service docker.socket containerd.service; do
    in_root systemctl disable "$unit" >/dev/null 2>&1 || true
  done
  # No per-user systemd for logins (the serial console's autologin, SSH):
  # pam_systemd would start a user manager for each, seconds under emulation.
  in_root pam-auth-update --disable systemd
  # Load the modules the kernel datapath and VLAN tagging need at boot.
  printf 'openvswitch\n8021q\n' > "$ROOT/etc/modules-load.d/ovsnet.conf"
  # A root shell on the serial console, for looking around by hand (`-serial stdio`).
  mkdir -p "$ROOT/etc/systemd/system/serial-getty@ttyS0.service.d"
  cat > "$ROOT/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
EOF
  # The Vagrant user, with Vagrant's well-known insecure key (Vagrant replaces
  # it with a fresh key on first `vagrant up`).
  in_root useradd -m -s /bin/bash vagrant
  echo 'vagrant ALL=(ALL) NOPASSWD: ALL' > "$ROOT/etc/sudoers.d/vagrant"
  chmod 0440 "$ROOT/etc/sudoers.d/vagrant"
  echo 'vagrant:vagrant' | in_root chpasswd
  mkdir -p "$ROOT/home/vagrant/.ssh"
  if pub="$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -1)" && [ -n "$pub" ]; then
    cp "$pub" "$ROOT/home/vagrant/.ssh/authorized_keys"
  else
    log "vagrant's insecure key not found (vagrant not installed): the box takes password login only"
  fi
  chmod 700 "$ROOT/home/vagrant/.ssh"
  in_root chown -R vagrant:vagrant /home/vagrant/.ssh
  echo 'UseDNS no' > "$ROOT/etc/ssh/sshd_config.d/ovsnet.conf"

  # 4. ovsnet's Python dependencies in /opt/ovsnet, from the wheels of step 1.
  log "python venv /opt/ovsnet"
  cp -r "$WORK/wheels" "$ROOT/tmp/wheels"
  in_root python3 -m venv /opt/ovsnet
  # shellcheck disable=SC2086
  in_root /opt/ovsnet/bin/pip install --disable-pip-version-check --no-index --find-links /tmp/wheels $PY_DEPS $PY_BUILD_DEPS > "$WORK/pip-guest.log" 2>&1 \
    || { tail -30 "$WORK/pip-guest.log" >&2; die "pip install in the guest image failed (log above)"; }
  rm -rf "$ROOT/tmp/wheels"

  # 5. Kernel and initramfs, then the image.
  kver="$(ls "$ROOT/lib/modules" | sort -V | tail -1)"
  [ -n "$kver" ] || die "no kernel in the rootfs"
  # An initramfs with only what finds the root disk (virtio, ext4): a tenth of
  # the default's size, and seconds less of module loading at each boot.
  echo MODULES=list > "$ROOT/etc/initramfs-tools/conf.d/ovsnet.conf"
  printf 'virtio_pci\nvirtio_blk\next4\ncrc32c_generic\n' >> "$ROOT/etc/initramfs-tools/modules"
  mount -t proc proc "$ROOT/proc"
  in_root update-initramfs -u -k "$kver" > "$WORK/initramfs.log" 2>&1 \
    || { umount -l "$ROOT/proc"; tail -20 "$WORK/initramfs.log" >&2; die "update-initramfs failed (log above)"; }
  umount -l "$ROOT/proc"
  cp "$ROOT/boot/vmlinuz-$kver" "$OUT/vmlinuz"
  cp "$ROOT/boot/initrd.img-$kver" "$OUT/initrd.img"
  # mitigations=off: no page-table switch at every system call (KPTI), which
  # costs much under emulation; apparmor=0: its profiles took 10-33 s to load
  # at each boot, and Docker runs without it. Test VMs only.
  echo "root=LABEL=ovsnet-root rw console=ttyS0,115200 net.ifnames=0 biosdevname=0 quiet systemd.show_status=0 mitigations=off apparmor=0" > "$OUT/cmdline"
  in_root apt-get clean
  rm -rf "$ROOT/var/lib/apt/lists/"* "$ROOT/usr/share/doc/"* "$ROOT/usr/share/man/"* "$ROOT/usr/share/locale/"*
  # The same machine-id in every clone would give both VMs one DHCP client id.
  : > "$ROOT/etc/machine-id"
  rm -f "$ROOT/var/lib/dbus/machine-id"

  log "ext4 image ($IMAGE_SIZE, sparse) with mke2fs -d"
  truncate -s "$IMAGE_SIZE" "$WORK/root.img"
  mke2fs -q -t ext4 -L ovsnet-root -d "$ROOT" "$WORK/root.img"
  mv "$WORK/root.img" "$OUT/root.img"
  {
    echo "built: $(date -u +%FT%TZ) in $((SECONDS - START)) s"
    echo "kernel: $kver"
    echo "rootfs: $(du -sm "$ROOT" | cut -f1) MiB in files, image $(du -m "$OUT/root.img" | cut -f1) MiB used of $IMAGE_SIZE"
    echo "key: $KEY"
    in_root dpkg-query -W -f '${Package} ${Version}\n' | sort
    echo "--- python (/opt/ovsnet)"
    in_root /opt/ovsnet/bin/pip list --format=freeze --disable-pip-version-check 2>/dev/null
  } > "$OUT/manifest.txt"
  touch "$OUT/ready"
  log "image ready in $((SECONDS - START)) s: $OUT"
fi

if [ "$WANT_BOX" = 1 ] && [ ! -f "$OUT/ovsnet-bookworm.box" ]; then
  command -v qemu-img >/dev/null || die "qemu-img is missing (apt-get install qemu-utils)"
  log "Vagrant box (libvirt, qcow2, direct kernel boot)"
  mkdir -p "$WORK/box"
  qemu-img convert -O qcow2 "$OUT/root.img" "$WORK/box/box.img"
  cp "$OUT/vmlinuz" "$OUT/initrd.img" "$WORK/box/"
  size_gb=$(( ($(stat -c %s "$OUT/root.img") + 1073741823) / 1073741824 ))
  echo "{\"provider\": \"libvirt\", \"format\": \"qcow2\", \"virtual_size\": $size_gb}" > "$WORK/box/metadata.json"
  # The image has no boot loader: the box's own Vagrantfile boots its kernel.
  cat > "$WORK/box/Vagrantfile" <<EOF
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.kernel = File.join(__dir__, "vmlinuz")
    lv.initrd = File.join(__dir__, "initrd.img")
    lv.cmd_line = "$(cat "$OUT/cmdline")"
  end
end
EOF
  tar -C "$WORK/box" -czf "$WORK/ovsnet-bookworm.box" metadata.json Vagrantfile box.img vmlinuz initrd.img
  mv "$WORK/ovsnet-bookworm.box" "$OUT/ovsnet-bookworm.box"
  log "box: $OUT/ovsnet-bookworm.box (use: OVSNET_BOX=$OUT/ovsnet-bookworm.box vagrant/run.sh --provider libvirt)"
fi

# Keep the two newest images, drop older keys.
ls -1dt "$CACHE"/bookworm-* 2>/dev/null | tail -n +3 | while read -r old; do
  rm -rf --one-file-system "$old"
done
ln -sfn "$(basename "$OUT")" "$CACHE/current"
[ "$PRINT_DIR" = 1 ] && echo "$OUT"
exit 0
