#!/usr/bin/env bash
# Prepares a Debian 12 machine for `vagrant/run.sh --provider libvirt`, also
# one without systemd running (a container, a chroot) and without usable KVM
# (then run with OVSNET_LIBVIRT_DRIVER=qemu: software emulation).
#
#   1. installs Vagrant, vagrant-libvirt, libvirt's daemon with its QEMU driver,
#      QEMU and dnsmasq, WITHOUT libvirt-daemon-system: that package pulls in
#      systemd-container and udev, which upgrade systemd itself. The install is
#      simulated first and refused if it would install or upgrade any systemd
#      package;
#   2. creates what libvirt-daemon-system would have: the libvirt-qemu user and
#      group (libvirtd's QEMU driver will not start without them), its
#      directories, and, if there is no /etc/libvirt/qemu.conf, one that runs
#      QEMU as root (the box of build-box.sh boots a kernel kept in Vagrant's
#      box directory, under root's home, which the libvirt-qemu user cannot read);
#   3. starts virtlogd and libvirtd: with systemctl when systemd runs and has
#      their units, by hand (`virtlogd -d`, `libvirtd -d`) otherwise;
#   4. defines, builds and starts the storage pool "default"
#      (/var/lib/libvirt/images) that vagrant-libvirt uses.
# Each step is skipped when already done; every action taken is printed.
#
# Usage: sudo vagrant/libvirt-setup.sh [--no-install] [--stop]
#   --no-install  skip step 1 (packages already there)
#   --stop        stop the daemons this script started by hand (from their
#                 pid files), and do nothing else
set -euo pipefail

PACKAGES=(vagrant vagrant-libvirt libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
          qemu-system-x86 qemu-utils dnsmasq-base)
POOL_DIR=/var/lib/libvirt/images
INSTALL=1 STOP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) INSTALL=0 ;;
    --stop) STOP=1 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "libvirt-setup.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "libvirt-setup: $*"; }
die() { echo "libvirt-setup: error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"

systemd_running() { [ -d /run/systemd/system ]; }
# Is the daemon of pid file $1 (by its name $2) running?
running() { [ -f "$1" ] && [ "$(ps -o comm= -p "$(cat "$1")" 2>/dev/null)" = "$2" ]; }

if [ "$STOP" = 1 ]; then
  for d in libvirtd virtlogd; do
    if running "/run/$d.pid" "$d"; then
      pid="$(cat "/run/$d.pid")"
      say "stopping $d (pid $pid)"
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    else
      say "$d: not running from /run/$d.pid, nothing to stop"
    fi
  done
  exit 0
fi

# --- 1. packages ------------------------------------------------------------------
if [ "$INSTALL" = 1 ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} = 0 ]; then
    say "packages: all installed (${PACKAGES[*]})"
  else
    export DEBIAN_FRONTEND=noninteractive
    say "apt-get update"
    apt-get update -qq
    sim="$(apt-get install -s -y --no-install-recommends "${missing[@]}")"
    bad="$(awk '$1 == "Inst" && ($2 ~ /systemd/ || $2 == "udev" || $2 == "libudev1") {print $2}' <<<"$sim" | tr '\n' ' ')"
    [ -z "$bad" ] || die "installing ${missing[*]} would install or upgrade $bad; refusing (see the comment at the top)"
    say "installing ${missing[*]} (--no-install-recommends; checked: no systemd package changes)"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
for tool in virsh libvirtd virtlogd vagrant; do
  command -v "$tool" >/dev/null || die "$tool is missing (run without --no-install)"
done
vagrant plugin list 2>/dev/null | grep -q vagrant-libvirt || die "vagrant does not list the vagrant-libvirt plugin"

# --- 2. what libvirt-daemon-system would have made ---------------------------------------
if ! getent group libvirt-qemu >/dev/null; then
  say "creating the system group libvirt-qemu"
  groupadd --system libvirt-qemu
fi
if ! getent passwd libvirt-qemu >/dev/null; then
  say "creating the system user libvirt-qemu (libvirtd's QEMU driver refuses to start without it)"
  useradd --system -g libvirt-qemu -d /var/lib/libvirt -M -s /usr/sbin/nologin -c "Libvirt Qemu" libvirt-qemu
fi
for d in /var/log/libvirt /var/lib/libvirt "$POOL_DIR"; do
  [ -d "$d" ] || { say "creating $d"; mkdir -p "$d"; }
done
if [ ! -e /etc/libvirt/qemu.conf ]; then
  say "writing /etc/libvirt/qemu.conf: QEMU runs as root"
  mkdir -p /etc/libvirt
  cat > /etc/libvirt/qemu.conf <<'EOF'
# Written by ovsnet's vagrant/libvirt-setup.sh (libvirt-daemon-system, which
# ships the full file, is not installed). QEMU runs as root: the box of
# vagrant/build-box.sh boots a kernel kept in Vagrant's box directory, which
# the libvirt-qemu user may not be able to read.
user = "root"
group = "root"
EOF
fi

# --- 3. the daemons -------------------------------------------------------------------
if virsh -c qemu:///system uri >/dev/null 2>&1; then
  say "libvirtd answers already"
elif systemd_running && systemctl cat libvirtd.service >/dev/null 2>&1; then
  say "starting virtlogd and libvirtd with systemctl"
  systemctl start virtlogd.service libvirtd.service
else
  if ! running /run/virtlogd.pid virtlogd; then
    say "starting virtlogd -d (no systemd to start it)"
    virtlogd -d
  fi
  say "starting libvirtd -d (no systemd to start it; stop both with: $0 --stop)"
  libvirtd -d
fi
for _ in $(seq 30); do virsh -c qemu:///system uri >/dev/null 2>&1 && break; sleep 1; done
virsh -c qemu:///system uri >/dev/null 2>&1 \
  || { tail -5 /var/log/libvirt/libvirtd.log >&2 2>/dev/null; die "libvirtd does not answer (log above)"; }
# libvirtd answers before its drivers have finished starting (they start in a thread).
for _ in $(seq 60); do
  virsh -c qemu:///system capabilities 2>/dev/null | grep -q "domain type='qemu'" && break
  sleep 1
done
virsh -c qemu:///system capabilities 2>/dev/null | grep -q "domain type='qemu'" \
  || { tail -5 /var/log/libvirt/libvirtd.log >&2 2>/dev/null; die "libvirt's QEMU driver lists no emulated (type qemu) guests (log above)"; }

# --- 4. the storage pool ---------------------------------------------------------------
V="virsh -c qemu:///system"
if ! $V pool-info default >/dev/null 2>&1; then
  say "defining the storage pool default at $POOL_DIR"
  $V pool-define-as default dir --target "$POOL_DIR" >/dev/null
fi
if ! $V pool-info default | grep -q '^State:.*running'; then
  say "starting the storage pool default"
  $V pool-build default >/dev/null 2>&1 || true
  # A just-started libvirtd may autostart the pool meanwhile: that is success too.
  $V pool-start default >/dev/null 2>&1 || $V pool-info default | grep -q '^State:.*running' \
    || die "cannot start the storage pool default ($V pool-start default)"
fi
$V pool-autostart default >/dev/null 2>&1 || true

kvm="no: use OVSNET_LIBVIRT_DRIVER=qemu (software emulation)"
[ -w /dev/kvm ] && kvm="/dev/kvm exists (if guests still fail to start, use OVSNET_LIBVIRT_DRIVER=qemu)"
say "ready: libvirt $($V version --daemon 2>/dev/null | sed -n 's/^Running against daemon: *//p'), pool default at $POOL_DIR; KVM: $kvm"
