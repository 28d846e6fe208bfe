#!/usr/bin/env bash
# The test bed in one command: bring up node1 and node2 (vagrant/Vagrantfile),
# provision them (provision.sh: Open vSwitch with the kernel datapath, ovsnet
# from this working tree, `ovsnet up --allow-uplink-move`), ping every member
# of the topology from every other across the trunk, run `ovsnet verify` on
# each VM, print the matrix, and destroy the VMs. Exit 0 when every check
# passed: the kernel datapath, `ovsnet status` in sync, `ovsnet verify` on
# both VMs, and every ping doing what the topology says.
#
# Usage: vagrant/run.sh [--keep] [--provider libvirt|virtualbox]
#   --keep      leave the VMs running (vagrant ssh node1; vagrant destroy -f when done)
# Environment: see the Vagrantfile (OVSNET_BOX, OVSNET_LIBVIRT_DRIVER, OVSNET_VM_TOPOLOGY, ...).
set -euo pipefail
cd "$(dirname "$0")"

KEEP=0
UP_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --provider) UP_ARGS+=(--provider "$2"); shift ;;
    --provider=*) UP_ARGS+=("$1") ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# OVSNET_VM_TOPOLOGY: the Vagrantfile's choice of topology file (topology-bonded.toml: the LACP bond).
TOPO="/ovsnet/vagrant/${OVSNET_VM_TOPOLOGY:-topology.toml}"
T0=$SECONDS
WORK="$(mktemp -d)"
step() { echo; echo "=== [$((SECONDS - T0)) s] $*"; }

cleanup() {
  rc=$?
  rm -rf "$WORK"
  if [ "$KEEP" = 1 ]; then
    echo "VMs left running (--keep): vagrant ssh node1 / node2; vagrant destroy -f when done"
  else
    step "vagrant destroy -f"
    vagrant destroy -f || true
  fi
  echo "run.sh: $([ $rc = 0 ] && echo PASS || echo FAIL) after $((SECONDS - T0)) s"
  exit $rc
}
trap cleanup EXIT

step "vagrant up (no provisioning yet)"
vagrant up --no-provision "${UP_ARGS[@]}"

# node2 first: it holds the router; node1's uplink move needs it to answer.
for node in node2 node1; do
  step "provision $node"
  vagrant provision "$node"
done

# Plain ssh from here on: much faster than one `vagrant ssh` per command.
vagrant ssh-config > "$WORK/ssh_config"
# Keepalives: a VM that stops answering ends the run instead of hanging it.
on() {
  local node="$1"; shift
  ssh -F "$WORK/ssh_config" -o ConnectTimeout=60 -o ServerAliveInterval=15 -o ServerAliveCountMax=8 -T "$node" "$@"
}

# Every check below is scored: the run fails if any of them does, but all run.
FAILED=()
check() { local what="$1"; shift; if "$@"; then echo "  ok: $what"; else echo "  FAILED: $what"; FAILED+=("$what"); fi; }

for node in node1 node2; do
  step "$node: kernel datapath, and no drift from the topology"
  check "$node: ovs-dpctl lists system@ovs-system" on "$node" "sudo ovs-dpctl show | grep -q '^system@ovs-system:'"
  check "$node: ovsnet status in sync" on "$node" "sudo ovsnet status $TOPO --host $node | tail -1; exit \${PIPESTATUS[0]}"
done

step "pings across the VMs (testbed.py pings, from every member on each VM)"
for node in node1 node2; do
  on "$node" "sudo python3 /ovsnet/vagrant/testbed.py pings $TOPO $node" >> "$WORK/pings.jsonl"
done
echo

# ovsnet's own verdict from each VM: that host's row of the matrix, expected
# from the topology's graph (the two trunks meet as its assumed upstream).
for node in node1 node2; do
  step "$node: ovsnet verify"
  check "$node: ovsnet verify" on "$node" "sudo ovsnet verify $TOPO"
done

step "the matrix"
check "ping matrix as the topology says" on node1 "python3 /ovsnet/vagrant/testbed.py matrix $TOPO" < "$WORK/pings.jsonl"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "run.sh: ${#FAILED[@]} check(s) failed: ${FAILED[*]}"
  exit 1
fi
