#!/usr/bin/env bash
# Provisions one test-bed VM, the same way under Vagrant and under the QEMU
# harness (vagrant/qemu-test.sh):
#   1. Open vSwitch (kernel datapath), Python and the test tools, when the box
#      lacks them (a public Debian 12 box: from apt; the box from
#      build-box.sh has them already);
#   2. ovsnet, installed from the working tree (shared into the guest at
#      $OVSNET_SRC, default /ovsnet) into the venv /opt/ovsnet;
#   3. the seed's starting state: the host's address and default route on the
#      trunk NIC, as on the seed's hosts before ovsnet (first run only);
#   4. on the router's host, the router namespace (see testbed.py) with its
#      DHCP server on the management VLAN; on the other hosts, a wait until
#      that router answers over the trunk (not over an LACP bond: its peer
#      passes no frame before this host bonds too; `up`'s gateway check
#      waits instead, up to OVSNET_GATEWAY_WAIT seconds);
#   5. `ovsnet up TOPOLOGY --host HOST --allow-uplink-move`;
#   6. the endpoint namespaces, on the Docker bridges ovsnet made.
# OVSNET_PROVISION selects less:
#   install  steps 1, 2 and the trunk NIC's name only: the host stays as a
#            fresh machine whose NIC a scenario hands to a network manager (or
#            to Ansible) before ovsnet runs;
#   fresh    steps 1 to 4 without the wait for the router: the seed's hosts
#            before ovsnet (address on the trunk NIC, the router on its host,
#            ovsnet installed but not run), for a scenario that rolls ovsnet
#            out itself (Ansible); the router's legs join OVS only with its
#            host's `up`, so nothing else could answer yet;
#   network  no ovsnet at all, on the router's host: the router namespace with
#            its DHCP server, plugged into a plain OVS bridge (br-testbed) that
#            trunks the NIC as the topology says (testbed.py switch): the
#            network for a scenario whose subject is another host.
# The management NIC (eth0, Vagrant's SSH) is never touched, except that a
# metric-0 default route on it is demoted to metric 1024 in step 3 so that the
# trunk NIC holds the host's default route, as in the seed.
#
# Usage: provision.sh HOST
# Environment: OVSNET_SRC (tree, default /ovsnet), OVSNET_TOPOLOGY (default
#   $OVSNET_SRC/vagrant/topology.toml), OVSNET_TRUNK_MAC (the trunk NIC's MAC:
#   it is renamed to the topology's NIC name if the guest named it otherwise),
#   OVSNET_GATEWAY_WAIT (seconds to wait for the router, default 900),
#   OVSNET_PROVISION (full, the default, install or network: see above).
set -euo pipefail

HOST="${1:?usage: provision.sh HOST}"
SRC="${OVSNET_SRC:-/ovsnet}"
TOPO="${OVSNET_TOPOLOGY:-$SRC/vagrant/topology.toml}"
TRUNK_MAC="$(echo "${OVSNET_TRUNK_MAC:-}" | tr 'A-F' 'a-f')"
GATEWAY_WAIT="${OVSNET_GATEWAY_WAIT:-900}"
MODE="${OVSNET_PROVISION:-full}"
case "$MODE" in full|install|fresh|network) ;; *) echo "provision: OVSNET_PROVISION must be full, install, fresh or network, not $MODE" >&2; exit 2 ;; esac
VENV=/opt/ovsnet
TESTBED="$SRC/vagrant/testbed.py"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
T0=$SECONDS

say() { echo "[$HOST +$((SECONDS - T0))s] $*"; }
die() { echo "[$HOST] provision: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
[ -f "$TOPO" ] || die "no topology at $TOPO (is the working tree shared at $SRC?)"
[ -f "$TESTBED" ] || die "no $TESTBED"

hostname "$HOST" 2>/dev/null || true
echo "$HOST" > /etc/hostname
grep -q "[[:space:]]$HOST\$" /etc/hosts || echo "127.0.1.1 $HOST" >> /etc/hosts

# --- 1. packages ------------------------------------------------------------------
need=()
command -v ovs-vswitchd >/dev/null || need+=(openvswitch-switch)
command -v ping >/dev/null || need+=(iputils-ping)
command -v ip >/dev/null || need+=(iproute2)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)   # the router's DHCP server
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Kernel datapath: the openvswitch module, and 802.1Q for tagged frames.
modprobe openvswitch
modprobe 8021q
if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
  say "starting Open vSwitch"
  if [ -d /run/systemd/system ]; then
    systemctl start openvswitch-switch
  else
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random
  fi
fi
for _ in $(seq 60); do ovs-vsctl --timeout=5 show >/dev/null 2>&1 && break; sleep 1; done
ovs-vsctl --timeout=5 show >/dev/null || die "Open vSwitch does not answer"

# The topology's facts (testbed.py needs only the standard library).
eval "$(python3 "$TESTBED" facts "$TOPO" "$HOST")"   # NIC BRIDGE ADDRESSES GATEWAY GATEWAY6 UPLINK_LACP UPLINK_NICS ROUTER_HOST ...

# The trunk NIC, by its MAC, under the topology's name.
if [ -n "$TRUNK_MAC" ]; then
  cur=""
  for d in /sys/class/net/*; do
    [ "$(cat "$d/address" 2>/dev/null)" = "$TRUNK_MAC" ] && cur="$(basename "$d")" && break
  done
  [ -n "$cur" ] || die "no NIC with MAC $TRUNK_MAC (the trunk)"
  if [ "$cur" != "$NIC" ] && [ "$(ovs-vsctl --timeout=5 port-to-br "$cur" 2>/dev/null)" = "" ]; then
    [ -e "/sys/class/net/$NIC" ] && die "the trunk NIC is $cur but $NIC, the topology's name for it, is another NIC"
    say "renaming the trunk NIC $cur to $NIC"
    ip link set dev "$cur" down
    ip link set dev "$cur" name "$NIC"
    mkdir -p /etc/systemd/network
    printf '[Match]\nMACAddress=%s\n\n[Link]\nName=%s\n' "$TRUNK_MAC" "$NIC" > /etc/systemd/network/10-ovsnet-trunk.link
  fi
fi
[ -e "/sys/class/net/$NIC" ] || die "no NIC $NIC (the trunk)"

if [ "$MODE" = network ]; then
  # The world around the other hosts without ovsnet: the router (with DHCP) on
  # a plain OVS bridge that trunks this host's NIC.
  [ -n "$ROUTER_LEGS" ] || die "OVSNET_PROVISION=network: $HOST has no router legs (rtr-* access ports)"
  say "the network without ovsnet (OVSNET_PROVISION=network): router and switch"
  python3 "$TESTBED" router "$TOPO" "$HOST"
  python3 "$TESTBED" switch "$TOPO" "$HOST"
  exit 0
fi

# Docker, if the box has it and this host has Docker networks, starts now in the
# background (enabled too: a host with Docker networks starts it at boot; the box
# of build-box.sh leaves it off for VMs that do not need it): under emulation it
# takes a minute to settle, which installing ovsnet covers.
if [ -n "$DOCKER_NETWORKS" ] && command -v dockerd >/dev/null && [ -d /run/systemd/system ] \
   && ! systemctl is-active -q docker; then
  say "starting Docker in the background"
  systemctl --no-reload enable docker >/dev/null 2>&1 || true
  systemctl start --no-block docker
fi

# --- 2. ovsnet from the working tree -----------------------------------------------------
say "installing ovsnet from $SRC"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
BUILD=/var/tmp/ovsnet-src
rm -rf "$BUILD"
mkdir -p "$BUILD"
# A private copy: pip writes build files into the tree, and the share may be read-only.
tar -C "$SRC" --exclude=.git --exclude=.venv --exclude=__pycache__ --exclude=.hypothesis \
    --exclude=.pytest_cache --exclude='*.egg-info' --exclude=build --exclude=.vagrant -cf - . | tar -C "$BUILD" -xf -
# find_spec, not import: importing them all took 30 s under emulation.
if "$VENV/bin/python" -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in
    ("ovs", "networkx", "typer", "rich", "docker", "setuptools", "wheel")))' 2>/dev/null; then
  # The dependencies are in the box already (build-box.sh): no network needed.
  # --no-compile: each module is compiled when first imported instead (14 of
  # the 28 s of installing the wheel, under emulation).
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-index --no-deps --no-build-isolation --no-compile "$BUILD"
else
  "$VENV/bin/pip" install -q --disable-pip-version-check "$BUILD"
fi
ln -sf "$VENV/bin/ovsnet" /usr/local/bin/ovsnet
ovsnet validate -q "$TOPO"

# --- 2b. Docker, where the topology gives this host Docker networks ---------------------------
if [ -n "$DOCKER_NETWORKS" ]; then
  if ! command -v dockerd >/dev/null; then
    say "installing docker.io (this host has Docker networks: $DOCKER_NETWORKS)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker.io apparmor >/dev/null
  fi
  if ! docker info >/dev/null 2>&1; then
    say "starting Docker"
    if [ -d /run/systemd/system ]; then systemctl --no-reload enable docker >/dev/null 2>&1 || true; systemctl start docker; else (dockerd >/var/log/dockerd.log 2>&1 &); fi
  fi
  for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "Docker does not answer"
  if [ -n "$PROBE_IMAGE" ] && ! docker image inspect "$PROBE_IMAGE" >/dev/null 2>&1; then
    # The probe image of `ovsnet verify`: a static busybox, made here (no registry needed).
    say "making the probe image $PROBE_IMAGE"
    "$VENV/bin/python" -c 'import sys; from ovsnet.lab.docker import make_image; make_image(sys.argv[1], sys.argv[2])' \
      "unix:///run/docker.sock" "$PROBE_IMAGE" || die "could not make the probe image $PROBE_IMAGE"
  fi
fi

# --- 3. the seed's starting state ------------------------------------------------------
if [ "$MODE" = install ]; then
  say "installed (OVSNET_PROVISION=install): $NIC left as it is, ovsnet not run"
  exit 0
fi

# iface-to-br: a bond's member is an interface of the bond's port, not a port of its own.
if [ -z "$(ovs-vsctl --timeout=5 iface-to-br "$NIC" 2>/dev/null)" ]; then
  say "starting state: $ADDRESSES and the default route via $GATEWAY${GATEWAY6:+ and $GATEWAY6} on $NIC"
  # Only the NIC holding the address up: a bond's other members stay down, as on a host
  # whose distro never configured them. OVS does not bring a port's interface up;
  # `ovsnet up` does (and `down` sets them down again).
  ip link set dev "$NIC" up
  for a in $ADDRESSES; do
    # IPv6: nodad, so that the address is usable at once rather than tentative.
    case "$a" in *:*) ip addr replace "$a" dev "$NIC" nodad ;; *) ip addr replace "$a" dev "$NIC" ;; esac
  done
  if [ -n "$GATEWAY" ]; then
    # Demote a metric-0 default route on another NIC (the management NIC's,
    # from DHCP) so the trunk NIC's route wins, as on the seed's hosts.
    ip -4 -o route show default | while read -r line; do
      dev="$(sed -n 's/.* dev \([^ ]*\).*/\1/p' <<<"$line")"
      via="$(sed -n 's/.* via \([^ ]*\).*/\1/p' <<<"$line")"
      metric="$(sed -n 's/.* metric \([0-9]*\).*/\1/p' <<<"$line")"
      if [ "$dev" != "$NIC" ] && [ -n "$via" ] && [ "${metric:-0}" = 0 ]; then
        ip route del default via "$via" dev "$dev" metric 0
        ip route add default via "$via" dev "$dev" metric 1024
        echo "  default via $via dev $dev: metric 0 -> 1024"
      fi
    done
    ip route replace default via "$GATEWAY" dev "$NIC" metric 0
  fi
  # IPv6: metric 1, ahead of a default route the management NIC may have from a
  # router advertisement (metric 1024, which metric 0 would mean, and replace).
  [ -z "$GATEWAY6" ] || ip -6 route replace default via "$GATEWAY6" dev "$NIC" metric 1
fi

# --- 4. the router, or a wait for it ----------------------------------------------------
UP_ARGS=()
if [ -n "$ROUTER_LEGS" ]; then
  say "this host plays the router (legs: $ROUTER_LEGS)"
  python3 "$TESTBED" router "$TOPO" "$HOST"
elif [ "$MODE" = fresh ]; then
  :  # the router answers only once its host has run `up`: the rollout's business
elif [ -n "$GATEWAY" ] && [ "$UPLINK_LACP" != off ] && [ -z "$(ovs-vsctl --timeout=5 iface-to-br "$NIC" 2>/dev/null)" ]; then
  # The peer's side of the LACP bond (node2's bond, or a switch's LAG without
  # fallback) passes no frame to a lone NIC: the router answers only once this
  # host bonds too, which is what `up` does. Its gateway check waits for it.
  UP_ARGS+=(--gateway-timeout "$((GATEWAY_WAIT > 300 ? 300 : GATEWAY_WAIT))")
  say "uplink is an LACP bond: no wait for the router over $NIC; up's gateway check waits up to ${UP_ARGS[-1]} s"
elif [ -n "$GATEWAY" ] && [ -z "$(ovs-vsctl --timeout=5 iface-to-br "$NIC" 2>/dev/null)" ]; then
  say "waiting for the router $GATEWAY (on ${ROUTER_HOST:-another host}) to answer on $NIC"
  deadline=$((SECONDS + GATEWAY_WAIT))
  until ping -n -q -c 1 -W 2 -I "$NIC" "$GATEWAY" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "router $GATEWAY did not answer on $NIC within ${GATEWAY_WAIT}s (is ${ROUTER_HOST:-its host} provisioned?)"
    sleep 2
  done
  say "router $GATEWAY answers"
fi

if [ "$MODE" = fresh ]; then
  say "fresh (OVSNET_PROVISION=fresh): $ADDRESSES on $NIC, ovsnet installed, not run"
  exit 0
fi

# --- 5. ovsnet up ------------------------------------------------------------------------
# Under emulation, and with the host machine loaded, ovsdb-server and the Docker Engine
# have taken more than ovsnet's default 10 s to answer one call.
UP_ARGS+=(--ovs-timeout 120 --docker-timeout 120)
say "ovsnet up $TOPO --host $HOST --allow-uplink-move ${UP_ARGS[*]}"
ovsnet up "$TOPO" --host "$HOST" --allow-uplink-move "${UP_ARGS[@]}"

# --- 6. endpoints -------------------------------------------------------------------------
python3 "$TESTBED" endpoints "$TOPO" "$HOST"

say "provisioned: bridge $BRIDGE, datapath_type $(ovs-vsctl --timeout=5 get bridge "$BRIDGE" datapath_type 2>/dev/null || echo '?'), kernel datapath $(ovs-dpctl show 2>/dev/null | head -1 | tr -d :)"
ip -br addr show | sed 's/^/  /'
ip route show default | sed 's/^/  route: /'
