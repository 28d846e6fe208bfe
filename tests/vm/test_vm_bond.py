"""The LACP bond between the two VMs, on the kernel datapath (issue 12, item 2).

One boot of node2 and node1, joined by both cables (eth1: trunk, eth2:
trunk2), both provisioned with ovsnet on vagrant/topology-bonded.toml: each
host bonds eth1 and eth2 into one OVS port (bond0, LACP active, fast), facing
the other host's bond with no switch between, and every VLAN is dual-stack.
Then, in order:

- LACP negotiated on both hosts, read from OVS three ways (`ovs-appctl
  lacp/show`, `bond/show`, the Interface `lacp_current` column), on the
  kernel datapath; `ovsnet status` in sync, its facts saying so;
- the ping matrix in both families (vagrant/testbed.py: same VLAN across the
  bond, other VLANs only through the router, never at layer 2), and `ovsnet
  verify` on each VM (its probe containers hold an address of each family);
- one cable cut during a running ping (web1 -> web2, both families, 100 ms
  apart): the flow's member is the one cut; the packets lost are counted,
  the flow goes on over the other member; `ovsnet status` exits 1 naming the
  member on both hosts; the cable restored: LACP negotiated again on both
  members, status in sync, the pings pass again.

Beyond CI's budget: runs with OVSNET_VM_TESTS=all.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.vms import ALL, ALL_REASON, ENABLED, REPO, SKIP_REASON, Bed, Vm, log, timed, two_vm_bed

pytestmark = [pytest.mark.vm, pytest.mark.skipif(not ENABLED, reason=SKIP_REASON), pytest.mark.skipif(not ALL, reason=ALL_REASON)]

MODULE = "bond"
TOPO_REL = "vagrant/topology-bonded.toml"
TOPO = f"/ovsnet/{TOPO_REL}"
HOSTS = ("node2", "node1")
BOND = "bond0"
MEMBERS = {"trunk": "eth1", "trunk2": "eth2"}  # cable -> the NIC it is in both VMs
LACP_WAIT = 90.0  # fast PDUs every second; emulated guests under load answer late
PING_LOG = "/run/ovb-ping{family}.txt"
# web1 (node1) -> web2 (node2), the same VLAN across the bond.
TARGETS = {4: "10.100.0.12", 6: "fd00:100::12"}


@pytest.fixture(scope="module")
def bed(request: pytest.FixtureRequest) -> Iterator[Bed]:
    before = request.session.testsfailed
    with two_vm_bed(MODULE, lambda: request.session.testsfailed > before) as b:
        with timed(MODULE, "provision both on the bonded topology"):
            results = b.provision({h: {"OVSNET_TOPOLOGY": TOPO} for h in HOSTS})
        for h in HOSTS:
            log(f"{h}: provision.sh:\n{results[h].out[-1500:]}")
        yield b


def status(vm: Vm) -> tuple[int, dict]:
    r = vm.run(f"ovsnet status {TOPO} --host {vm.name} --json", 180)
    assert r.code in (0, 1), f"{vm.name}: ovsnet status: exit {r.code}:\n{r.text}"
    return r.code, json.loads(r.out)


def wait_for(what: Callable[[], object], timeout: float, pause: float = 2.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(pause)


def lacp_view(vm: Vm) -> dict[str, str]:
    """OVS's own three views of the bond's LACP, as text."""
    return {
        "lacp/show": vm.check(f"ovs-appctl lacp/show {BOND}", 60),
        "bond/show": vm.check(f"ovs-appctl bond/show {BOND}", 60),
        "interfaces": vm.check("; ".join(f"echo {m} $(ovs-vsctl get interface {m} link_state lacp_current)" for m in MEMBERS.values()), 60),
    }


def negotiated(view: dict[str, str]) -> bool:
    attached = re.findall(r"(?:member|slave):? (eth\d): current attached", view["lacp/show"])
    return ("status: active negotiated" in view["lacp/show"] and sorted(attached) == sorted(MEMBERS.values())
            and "lacp_status: negotiated" in view["bond/show"]
            and all(f"{m} up true" in view["interfaces"] for m in MEMBERS.values()))


def all_negotiated(bed: Bed) -> dict[str, dict[str, str]] | None:
    views = bed.each(lacp_view)
    return views if all(negotiated(v) for v in views.values()) else None


def test_lacp_negotiated_on_the_kernel_datapath(bed: Bed) -> None:
    with timed(MODULE, "LACP negotiated, status in sync"):
        views = wait_for(lambda: all_negotiated(bed), LACP_WAIT)
        if not views:
            last = bed.each(lacp_view)
            pytest.fail("LACP not negotiated on both members of both hosts within "
                        f"{LACP_WAIT:.0f} s:\n" + "\n".join(f"--- {h}:\n{v['lacp/show']}\n{v['bond/show']}\n{v['interfaces']}" for h, v in last.items()))
        for vm in (bed[h] for h in HOSTS):
            dp = vm.check("ovs-dpctl show", 60)
            assert "system@ovs-system" in dp and all(f": {m}" in dp for m in MEMBERS.values()), f"{vm.name}: members not on the kernel datapath:\n{dp}"
            got = vm.check(f"ovs-vsctl get bridge br-ovs datapath_type; ovs-vsctl get port {BOND} bond_mode lacp other_config:lacp-time", 60)
            mode = "balance-tcp" if vm.name == "node1" else "balance-slb"
            assert got.replace('"', "").split() == ["system", mode, "active", "fast"], f"{vm.name}: not datapath system, {mode}, LACP active, fast:\n{got}"
            code, body = status(vm)
            assert code == 0 and body["in_sync"] is True and body["health"] == [], f"{vm.name}: {body}"
            assert f"bond {BOND}: 2/2 members up, LACP negotiated on 2/2" in body["facts"], f"{vm.name}: {body['facts']}"
            # Provisioning left the member without the address down (a NIC nothing configured):
            # `up` brought it up, and the record says so for `down`.
            parts = json.loads(vm.check("cat /var/lib/ovsnet/seed-vm-bonded/" + vm.name + ".json", 30))["parts"]
            holder = parts["uplink"]["nic"]
            assert parts["nic"]["were_down"] == sorted(set(MEMBERS.values()) - {holder}), f"{vm.name}: {parts}"


def matrix(bed: Bed, what: str) -> str:
    pings = bed.each(lambda vm: vm.check(f"python3 /ovsnet/vagrant/testbed.py pings {TOPO} {vm.name}", 300, "pings"))
    (bed.work / f"pings-{what}.jsonl").write_text("".join(pings[h] for h in HOSTS))
    m = subprocess.run([sys.executable, str(REPO / "vagrant" / "testbed.py"), "matrix", str(REPO / TOPO_REL), str(bed.work / f"pings-{what}.jsonl")],
                       capture_output=True, text=True)
    log(f"ping matrix ({what}):\n{m.stdout}{m.stderr}")
    assert m.returncode == 0, f"ping matrix ({what}) not as the topology says:\n{m.stdout}{m.stderr}"
    assert "IPv4:" in m.stdout and "IPv6:" in m.stdout, m.stdout
    return m.stdout


def test_ping_matrix_in_both_families_and_verify(bed: Bed) -> None:
    with timed(MODULE, "ping matrix, IPv4 and IPv6"):
        out = matrix(bed, "bonded")
        # 6 members in each family: 30 pairs each, plus the layer-2 probes across VLANs.
        assert re.search(r"RESULT: PASS \((\d+) pings", out) and int(re.search(r"PASS \((\d+)", out).group(1)) >= 60, out
    with timed(MODULE, "ovsnet verify on both VMs"):
        results = bed.each(lambda vm: vm.run(f"ovsnet verify {TOPO}", 600))
        for h in HOSTS:
            log(f"{h}: ovsnet verify, exit {results[h].code}:\n{results[h].text[-3000:]}")
        bad = [h for h in HOSTS if not results[h].ok]
        assert not bad, "ovsnet verify failed on " + ", ".join(f"{h}:\n{results[h].text[-2000:]}" for h in bad)


def tx_packets(vm: Vm) -> dict[str, int]:
    out = vm.check("; ".join(f"echo {m} $(cat /sys/class/net/{m}/statistics/tx_packets)" for m in MEMBERS.values()), 30)
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


def ping_result(vm: Vm, family: int) -> tuple[int, int]:
    out = vm.check(f"cat {PING_LOG.format(family=family)}", 30)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, f"ping IPv{family} did not finish: {out[-500:]}"
    return int(m.group(1)), int(m.group(2))


def test_a_member_cut_during_a_ping_and_restored(bed: Bed) -> None:
    node1, node2 = bed["node1"], bed["node2"]
    assert wait_for(lambda: all_negotiated(bed), LACP_WAIT), "LACP not negotiated before the cut"
    with timed(MODULE, "member cut during a ping, status degraded"):
        before = tx_packets(node1)
        for family, dst in TARGETS.items():
            node1.check(f"rm -f {PING_LOG.format(family=family)}; setsid -f ip netns exec ep-web1 ping -n -i 0.1 -W 1 -w 40 {dst} "
                        f"> {PING_LOG.format(family=family)} 2>&1 < /dev/null", 30)
        time.sleep(4)
        grew = {m: n - before[m] for m, n in tx_packets(node1).items()}
        # node1's bond hashes the flow onto one member: cut that one.
        cut_nic = max(grew, key=lambda m: grew[m])
        other = next(m for m in MEMBERS.values() if m != cut_nic)
        cable = next(c for c, m in MEMBERS.items() if m == cut_nic)
        log(f"before the cut, node1's members sent {grew}: cutting {cable} ({cut_nic})")
        at_cut = tx_packets(node1)
        bed.set_cable(cable, up=False)
        t = time.monotonic()
        bodies = {}
        for vm in (node1, node2):
            got = wait_for(lambda vm=vm: (s := status(vm))[0] == 1 and s, 60)
            assert got, f"{vm.name}: status stayed in sync with {cut_nic} cut"
            bodies[vm.name] = got[1]
        log(f"ovsnet status on both hosts reports the cut ({time.monotonic() - t:.1f} s after it, mostly the status runs themselves)")
        for h, body in bodies.items():
            assert body["in_sync"] is False and body["changes"] == [], f"{h}: {body}"
            assert {"resource": f"port:br-ovs/{BOND}", "message": f"{BOND}: member {cut_nic} is down"} in body["health"], f"{h}: {body['health']}"
        text = node1.run(f"ovsnet status {TOPO} --host node1", 180)
        assert text.code == 1 and f"unhealthy {BOND}: member {cut_nic} is down" in text.out, text.text
        carried = tx_packets(node1)[other] - at_cut[other]
        assert carried > 20, f"node1 sent only {carried} frames on {other} after {cut_nic} was cut"

    with timed(MODULE, "member restored, LACP and status back"):
        bed.set_cable(cable, up=True)
        t = time.monotonic()
        views = wait_for(lambda: all_negotiated(bed), LACP_WAIT)
        assert views, "LACP not negotiated again on both members after the cable came back"
        log(f"LACP negotiated again on both hosts {time.monotonic() - t:.1f} s after the cable came back")
        for vm in (node1, node2):
            code, body = status(vm)
            assert code == 0 and body["in_sync"] is True and body["health"] == [], f"{vm.name}: {body}"
        # The pings started before the cut end on their own (-w 40).
        assert wait_for(lambda: all(node1.run(f"grep -q 'packets transmitted' {PING_LOG.format(family=f)}", 30).ok for f in TARGETS), 60)
        for family in TARGETS:
            sent, received = ping_result(node1, family)
            log(f"member cut: IPv{family} ping web1 -> web2 every 100 ms: {sent} sent, {received} received, {sent - received} lost")
            assert sent > 150, f"IPv{family}: only {sent} pings sent"
            assert sent - received <= 20, f"IPv{family}: {sent - received} of {sent} lost across the cut"

    with timed(MODULE, "ping matrix after the restore"):
        matrix(bed, "restored")
