#!/usr/bin/env python3
"""The two-VM trunk test on plain QEMU (software emulation is enough).

Boots node1 and node2 from the image of build-box.sh with the test bed of
vagrant/vmbed (each with -snapshot: the image is never written; a management
NIC, QEMU user networking, restricted: nothing leaves the VM; the trunk, a
socket link over UDP on 127.0.0.1 to the other VM, like libvirt's UDP tunnel;
and a second such link, eth2, which this test leaves unused). The working tree
goes in on a small ext4 disk made for each run. Commands run in the guests
through the QEMU guest agent, each with a timeout. Each VM is provisioned with
vagrant/provision.sh, the script Vagrant runs, and the test then checks:

  1. the kernel datapath: `ovs-dpctl show` lists system@ovs-system, and the
     bridge's datapath_type is system;
  2. `ovsnet up --allow-uplink-move` succeeded on each VM: the address and
     default route are on the management port, the trunk NIC is a bridge port
     with no address, `ovsnet status` says in sync, and the management NIC is
     not in OVS;
  3. the ping matrix (vagrant/testbed.py): same-VLAN pings across the trunk
     succeed, cross-VLAN ones fail unless the router joins both VLANs, and
     on-link pings across VLANs never get an answer;
  4. the capture of the trunk (QEMU filter-dump, read with `tcpdump -e`):
     802.1Q frames of VLANs 100 and 200 carrying their own subnets, VLAN 10
     untagged, and no other tag.

Every QEMU process is killed at the end, pass or fail (and with the harness,
if it is killed: PR_SET_PDEATHSIG).

Usage: qemu_harness.py [--image-dir DIR] [--keep] [--work DIR] [--timeout S] [--sabotage HOST:CMD]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import testbed  # noqa: E402
from vmbed import GUEST_SRC, REPO, Bed, Cable, Capture, Checks, HarnessError, Vm, find_image, log, parse_capture  # noqa: E402

TOPOLOGY_REL = "vagrant/topology.toml"


def link_local(mac: str) -> str:
    """The IPv6 link-local address the kernel derives from a MAC (EUI-64)."""
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    eui = b[:3] + [0xFF, 0xFE] + b[3:]
    return "fe80::" + ":".join(f"{eui[i] << 8 | eui[i + 1]:x}" for i in range(0, 8, 2))


def check_capture(topo: testbed.Topo, cap: Capture, checks: Checks) -> None:
    """Each VLAN of the trunk has its own tag (the native one none), and carries its own subnet.

    - no tag outside the trunk's VLANs;
    - per VLAN, an ICMP echo between two of its own addresses (same-VLAN
      traffic crossed the link with the right tag);
    - every IPv4 frame has its source or its destination in the VLAN's subnet
      (routed traffic has one end elsewhere, never both), and every ARP sender
      is in the subnet (the on-link probes ask for foreign addresses, but speak
      for their own).
    """
    h = next(iter(topo.hosts.values()))
    up = h["uplinks"][0]
    native = topo.vlan_name(up["native_vlan"]) if "native_vlan" in up else None
    trunk = {topo.vlan_name(ref): topo.vlans[topo.vlan_name(ref)] for ref in up["vlans"]}
    expected = {None if name == native else v["id"]: name for name, v in trunk.items()}
    tags = cap.tags
    for tag in sorted(tags, key=lambda t: -1 if t is None else t):
        t = tags[tag]
        echo = sum(1 for *_, rest in t.ipv4 if "ICMP echo" in rest)
        log(f"  capture: {'untagged' if tag is None else f'VLAN {tag}'}: {t.frames} frames, {len(t.ipv4)} IPv4 ({echo} ICMP echo), {len(t.arp_senders)} ARP")
    unknown = [t for t in tags if t not in expected]
    checks.add("trunk: no 802.1Q tag other than the topology's", not unknown, f"unexpected tags {unknown}")
    for tag, vname in expected.items():
        label = f"untagged (native VLAN {vname})" if tag is None else f"802.1Q tag {tag} ({vname})"
        frames = tags.get(tag)
        subnet = trunk[vname].get("subnet")
        if not subnet:
            checks.add(f"trunk: {label} frames seen", frames is not None and frames.frames > 0, "none")
            continue
        ipv4 = frames.ipv4 if frames else []
        arp = frames.arp_senders if frames else []
        net = ipaddress.ip_network(subnet)
        inside = lambda a, net=net: ipaddress.ip_address(a) in net  # noqa: E731
        own_echo = [(s, d) for s, d, rest in ipv4 if "ICMP echo request" in rest and inside(s) and inside(d)]
        checks.add(f"trunk: {label}: ICMP echo within {subnet}", bool(own_echo),
                   f"{frames.frames if frames else 0} frames, no echo request between two {subnet} addresses")
        stray = sorted({f"{s} > {d}" for s, d, _ in ipv4 if not inside(s) and not inside(d)} | {f"ARP from {a}" for a in arp if not inside(a)})
        checks.add(f"trunk: {label}: nothing from another subnet", not stray, f"foreign frames: {stray[:6]}")


def check_host_state(vm: Vm, topo: testbed.Topo, checks: Checks) -> None:
    """1 and 2 for one VM: kernel datapath, and the state `ovsnet up` left."""
    facts = dict(line.split("=", 1) for line in vm.check(f"python3 {GUEST_SRC}/vagrant/testbed.py facts {GUEST_SRC}/{TOPOLOGY_REL} {vm.name}", 60, "facts").splitlines())
    facts = {k: v.strip("'") for k, v in facts.items()}
    nic, bridge, addr = facts["NIC"], facts["BRIDGE"], facts["ADDRESSES"].split()[0]
    gw = facts["GATEWAY"]
    mgmt_port = topo.hosts[vm.name].get("management", {}).get("port", "mgmt0")
    out = vm.check("ovs-dpctl show", 60)
    checks.add(f"{vm.name}: ovs-dpctl show lists system@ovs-system", "system@ovs-system" in out, out[:300])
    out = vm.check(f"ovs-vsctl get bridge {bridge} datapath_type; ovs-vsctl port-to-br {nic}; "
                   f"ip -o -4 addr show dev {mgmt_port}; echo ---; ip -o -4 addr show dev {nic}; echo ---; ip -4 route show default; echo ---; "
                   f"ovs-vsctl port-to-br eth0 2>&1 || echo eth0-not-in-ovs; echo ---; ip -o -4 addr show dev eth0; ip -4 route show default dev eth0", 60, "state")
    parts = out.split("---\n")
    first = parts[0].splitlines()
    checks.add(f"{vm.name}: bridge {bridge} has datapath_type system", first[0].strip().strip('"') == "system", first[0])
    checks.add(f"{vm.name}: {nic} is a port of {bridge}", len(first) > 1 and first[1].strip() == bridge, out[:200])
    checks.add(f"{vm.name}: {addr} moved onto {mgmt_port}", addr in first[-1] if len(first) > 2 else False, parts[0])
    checks.add(f"{vm.name}: {nic} has no IPv4 address left", parts[1].strip() == "", parts[1])
    checks.add(f"{vm.name}: default route via {gw} dev {mgmt_port}", f"default via {gw} dev {mgmt_port}" in parts[2], parts[2])
    checks.add(f"{vm.name}: management NIC eth0 is not in OVS", "eth0-not-in-ovs" in parts[3], parts[3])
    checks.add(f"{vm.name}: eth0 keeps its address and its default route (metric 1024 behind {mgmt_port}'s)",
               "10.0.2.15/24" in parts[4] and "default via 10.0.2.2" in parts[4] and "metric 1024" in parts[4], parts[4])
    # ovsnet itself moved the uplink: it kept the NIC as it was before, for `down`.
    saved_path = f"/var/lib/ovsnet/{facts['TOPOLOGY_NAME']}/{vm.name}.json"
    r = vm.run(f"cat {saved_path}", 30)
    try:
        record = json.loads(r.out)
        # Format 2 keeps each kind's part under "parts"; format 1 had them at the top.
        saved = (record.get("parts") or record).get("uplink") or {}
    except json.JSONDecodeError:
        saved = {}
    checks.add(f"{vm.name}: ovsnet saved {nic} as it was before the move ({saved_path})",
               saved.get("nic") == nic and addr in saved.get("addresses", []), r.text[:300])
    r = vm.run(f"ovsnet status {GUEST_SRC}/{TOPOLOGY_REL} --host {vm.name}", 120)
    checks.add(f"{vm.name}: ovsnet status: in sync", r.ok, r.text[-500:])
    r = vm.run(f"ping -n -q -c 2 -W 3 -I {mgmt_port} {gw}", 60)
    checks.add(f"{vm.name}: the router {gw} answers on {mgmt_port}", r.ok, r.text)


def run_test(bed: Bed, topo: testbed.Topo, names: list[str], checks: Checks, sabotage: list[str], deadline: float) -> None:
    bed.boot(min(400, deadline - time.monotonic()))
    vms = [bed[n] for n in names]
    for vm in vms:
        # A Vagrant box's management NIC has the DHCP default route (metric 0,
        # dhclient); restricted user networking gives none, so set it as a box has it.
        # DHCP on the management NIC may still be running: wait for its address first.
        vm.check("for i in $(seq 90); do ip -4 -o addr show dev eth0 | grep -q inet && break; sleep 1; done; "
                 "ip route replace default via 10.0.2.2 dev eth0 metric 0", 120, "the management NIC's default route")
    # The cable first: both trunk NICs up, and a link-local ping each way
    # (IPv6, nothing configured yet), so a dead link fails here, not in a timeout.
    for vm in vms:
        vm.check(f"ip link set dev {vm.nic_name('trunk')} up", 30, "trunk NIC up")
    for vm, peer in ((vms[1], vms[0]), (vms[0], vms[1])):
        r = vm.run(f"ping -6 -n -q -c 1 -w 15 {link_local(peer.nic('trunk').mac)}%{vm.nic_name('trunk')}", 60)
        if not checks.add(f"trunk link: {vm.name} -> {peer.name} (IPv6 link-local, before provisioning)", r.ok, r.text[-300:]):
            raise HarnessError("the trunk link between the VMs passes no frames")

    # Both at once (the second waits for the router).
    results = bed.provision({n: {} for n in names}, min(1200, deadline - time.monotonic()), check=False)
    for vm in vms:
        r = results[vm.name]
        print(f"----- {vm.name}: provision.sh -----\n{r.text}\n-----", flush=True)
        checks.add(f"{vm.name}: provision.sh (ovsnet up --allow-uplink-move)", r.ok, f"exit {r.code}" if r.code != 255 else r.err)
    if not all(r.ok for r in results.values()):
        raise HarnessError("provisioning failed")

    for item in sabotage:
        host, _, cmd = item.partition(":")
        if host not in bed.vms or not cmd:
            raise HarnessError(f"--sabotage {item!r}: give HOST:COMMAND with HOST one of {names}")
        log(f"SABOTAGE on {host}: {cmd}")
        bed[host].check(cmd, 60, "sabotage")

    for vm in vms:
        check_host_state(vm, topo, checks)

    # 3: the ping matrix, from both VMs at once.
    t = time.monotonic()
    pings = bed.each(lambda vm: vm.check(f"python3 {GUEST_SRC}/vagrant/testbed.py pings {GUEST_SRC}/{TOPOLOGY_REL} {vm.name}", 300, "pings"))
    bed.timed("pings", time.monotonic() - t)
    (bed.work / "pings.jsonl").write_text("".join(pings.get(n, "") for n in names))
    print(flush=True)
    m = subprocess.run([sys.executable, str(HERE / "testbed.py"), "matrix", str(REPO / TOPOLOGY_REL), str(bed.work / "pings.jsonl")], capture_output=True, text=True)
    print(m.stdout, flush=True)
    checks.add("ping matrix as the topology says (same VLAN across the trunk: yes; across VLANs: only via the router; layer 2 across VLANs: never)",
               m.returncode == 0, m.stdout.splitlines()[-1] if m.stdout else m.stderr)

    # ovsnet's own verdict from each host: its host's row of the matrix,
    # expected from the graph (the VMs' trunks meet as the assumed upstream).
    for vm in vms:
        r = vm.run(f"ovsnet verify {GUEST_SRC}/{TOPOLOGY_REL}", 300)
        print(f"----- {vm.name}: ovsnet verify, exit {r.code} -----\n{r.text}\n-----", flush=True)
        checks.add(f"{vm.name}: ovsnet verify (this host's row) as the topology says", r.ok, f"exit {r.code}")

    # 4: the capture of the trunk.
    bed.stop()  # flushes and closes the capture
    cap = parse_capture(vms[1].capture_path("trunk"))
    if cap.rc != 0 or not cap.tags:
        checks.add("trunk capture readable by tcpdump", False, cap.stderr)
    else:
        check_capture(topo, cap, checks)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image-dir", help="image from build-box.sh (default: build or reuse it)")
    ap.add_argument("--work", help="work directory (default: a temporary one, removed unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, capture)")
    ap.add_argument("--timeout", type=float, default=1500, help="overall limit in seconds")
    ap.add_argument("--memory", type=int, default=1024, help="MiB per VM")
    ap.add_argument("--sabotage", action="append", default=[], metavar="HOST:COMMAND",
                    help="run COMMAND on HOST after provisioning, to see the checks catch a broken network "
                         "(e.g. 'node1:ovs-vsctl set port ovs-br-web tag=200'); the run must then fail")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    try:
        image = find_image(args.image_dir)
    except HarnessError as exc:
        log(str(exc))
        return 1
    topo = testbed.Topo(str(REPO / TOPOLOGY_REL))
    names = list(topo.hosts)
    if len(names) != 2:
        log(f"{TOPOLOGY_REL} must have two hosts, has {names}")
        return 1
    # The router's host first: the other waits for its router anyway.
    rhost = topo.router_host()
    if rhost in names:
        names.remove(rhost)
        names.insert(0, rhost)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="ovsnet-vm."))
    # trunk2 (eth2): the second cable, for the bonded uplink of issue 12; unused here.
    bed = Bed(image, work, names, (Cable("trunk", *names), Cable("trunk2", *names)),
              captures=[(names[1], "trunk")], memory=args.memory)
    checks = Checks()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        run_test(bed, topo, names, checks, args.sabotage, t0 + args.timeout)
    except (HarnessError, KeyboardInterrupt, TimeoutError) as exc:
        checks.add("harness", False, str(exc))
        for vm in bed.vms.values():
            log(f"{vm.name}: last console lines:\n{vm.console_tail()}")
    finally:
        try:
            bed.stop()
        except HarnessError as exc:
            log(str(exc))

    passed, failed = checks.counts
    print()
    print("Summary of the two-VM trunk test (QEMU, TCG):")
    for c in checks.results:
        print(f"  {'PASS' if c.ok else 'FAIL'}  {c.name}")
    print(f"timings: {bed.timing_line()}, total {time.monotonic() - t0:.0f} s")
    if args.keep or not checks.ok:
        print(f"logs and capture kept in {work}")
    else:
        bed.remove_work()
    print(f"vm-trunk: {passed} passed, {failed} failed")
    return 0 if checks.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
