"""`ovsnet up` on a host whose trunk NIC a network manager runs, handed over, across a reboot (issue 15).

One boot of node2 and node1 (vagrant/topology.toml) serves every scenario:
node2 is the network without ovsnet (router and DHCP server with 2-minute
leases on VLAN 10, OVSNET_PROVISION=network), node1 a fresh host with ovsnet
installed. Each scenario hands node1's eth1 to one manager (as
test_vm_managers.py does, checked to hold its address), then:

- without a handover key `ovsnet up` refuses (exit 5), naming the manager and
  the choices, and changes nothing;
- with it, `up` converges: the address (static, or the very same lease) on
  mgmt0, none on eth1, the manager's own view (networkctl, nmcli, ifquery)
  shows the port as its and not the NIC, the gateway answers; with DHCP, one
  renewal passes (2-minute leases renew at 60 s) and never puts an address
  back on eth1;
- the boot unit installed and node1 rebooted: the address on mgmt0 only,
  the gateway answers, `ovsnet status` in sync, and a watcher started before
  anything network (a unit of the test bed only: `ip -ts monitor address`
  from sysinit) shows eth1 never held an address during that boot;
- `ovsnet down`: every file of the manager byte for byte as before `up`
  (sha256 of /etc/systemd/network, /etc/NetworkManager, /etc/network), and
  the manager has put the address back on eth1;
- node1 rebooted once more: the host is as before ovsnet: the manager puts
  the address (static, or the same lease) on eth1, there is no mgmt0 nor
  bridge, no ovsnet boot unit, the manager's files still byte for byte as
  before, and the watcher saw no address on mgmt0 during that boot.

Which scenarios run: OVSNET_VM_TESTS=1 runs networkd with a static address
(the CI budget, see .ci/run); OVSNET_VM_TESTS=all runs every manager.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.vms import ALL, ALL_REASON, ENABLED, SKIP_REASON, Bed, log, timed, two_vm_bed
from tests.vm.test_vm_managers import (
    ARP_SYSCTL,
    GATEWAY,
    ROUTER,
    STATIC,
    SUBJECT,
    Case,
    check_configured,
    ifupdown,
    ipv4_on,
    networkd,
    networkmanager,
    wait_for_address,
)

pytestmark = [pytest.mark.vm, pytest.mark.skipif(not ENABLED, reason=SKIP_REASON)]

MODULE = "handover"
TOPO = "/etc/ovsnet/ho.toml"
WATCH_LOG = "/var/log/ovm-addresses.log"
WATCH_UNIT = "/etc/systemd/system/ovm-address-watch.service"
MANAGER_FILES = "/etc/systemd/network /etc/NetworkManager /etc/network"
# Emulated and loaded, ovs-vswitchd once took over the default 10 s to apply a transaction.
SLOW = "--ovs-timeout 120 --docker-timeout 120"
# The unit of the test bed that records every address change from early boot,
# before Open vSwitch, ovsnet or any manager runs; each boot opens with its id.
WATCH = """[Unit]
Description=test bed: every IPv4 address change from early boot
DefaultDependencies=no
After=systemd-journald.socket
Before=sysinit.target network-pre.target openvswitch-switch.service ovs-vswitchd.service

[Service]
ExecStartPre=/bin/sh -c 'echo "BOOT $(cat /proc/sys/kernel/random/boot_id)" >> {log}'
ExecStart=/bin/sh -c 'exec ip -ts -4 monitor address >> {log}'

[Install]
WantedBy=sysinit.target
""".format(log=WATCH_LOG)


def topology(handover: str, dhcp: bool) -> str:
    how = 'addresses = "dhcp"' if dhcp else f'addresses = ["{STATIC}"]\ngateway = "{GATEWAY}"'
    return f"""name = "ho"

[vlans.mgmt]
id = 10
subnet = "{STATIC.network}"
router = "{GATEWAY}"

[hosts.node1]
bridge = {{ name = "br-ovs", datapath = "system" }}

[[hosts.node1.uplinks]]
nic = "eth1"
vlans = ["mgmt"]
native_vlan = "mgmt"

[hosts.node1.management]
port = "mgmt0"
{how}
handover = "{handover}"
"""


@dataclass(frozen=True)
class Scenario:
    case: Case
    handover: str
    label: str  # the manager's name in ovsnet's messages
    port_view: str  # a command whose output says the manager runs mgmt0 ...
    port_done: str
    nic_view: str  # ... and not eth1
    nic_done: str
    level: str = "all"


SCENARIOS = {
    "networkd-static": Scenario(networkd("eth1", dhcp=False), "networkd", "systemd-networkd",
                                "networkctl list --no-legend --no-pager mgmt0", "routable configured",
                                "networkctl list --no-legend --no-pager eth1", "unmanaged", level="1"),
    "networkd-dhcp": Scenario(networkd("eth1", dhcp=True), "networkd", "systemd-networkd",
                              "networkctl list --no-legend --no-pager mgmt0", "routable configured",
                              "networkctl list --no-legend --no-pager eth1", "unmanaged"),
    "networkmanager-static": Scenario(networkmanager("eth1", dhcp=False), "networkmanager", "NetworkManager",
                                      "nmcli -t -f GENERAL.STATE,GENERAL.CONNECTION device show mgmt0", "GENERAL.CONNECTION:ovsnet-ho-mgmt0",
                                      "nmcli -t -f GENERAL.STATE device show eth1", "unmanaged"),
    # NetworkManager's own DHCP client on the port (a generic connection on an OVS internal port),
    # with the client id of the NIC's lease; NetworkManager takes eth1 down as it lets it go.
    "networkmanager-dhcp": Scenario(networkmanager("eth1", dhcp=True), "networkmanager", "NetworkManager",
                                    "nmcli -t -f GENERAL.STATE,GENERAL.CONNECTION device show mgmt0", "GENERAL.CONNECTION:ovsnet-ho-mgmt0",
                                    "nmcli -t -f GENERAL.STATE device show eth1", "unmanaged"),
    # ifupdown's view of eth1: what `ifup` would run for it now (dry run, its state file ignored):
    # the link brought up and no address (`ifquery eth1` prints a manual stanza's options: none).
    "ifupdown-static": Scenario(ifupdown("eth1", dhcp=False), "ifupdown", "ifupdown",
                                "ifquery --state mgmt0", "mgmt0=mgmt0",
                                "out=$(ifup --no-act --verbose --force --no-scripts eth1 2>&1); echo \"$out\"; "
                                "echo \"$out\" | grep -q 'ip link set dev eth1 .*up' && ! echo \"$out\" | grep -q 'addr add' "
                                "&& echo 'ifupdown: eth1 link up only, no address'", "ifupdown: eth1 link up only, no address"),
}


@pytest.fixture(scope="module")
def bed(request: pytest.FixtureRequest) -> Iterator[Bed]:
    before = request.session.testsfailed
    with two_vm_bed(MODULE, lambda: request.session.testsfailed > before) as b:
        with timed(MODULE, "provision: node2 the network, node1 ovsnet installed"):
            b.provision({ROUTER: {"OVSNET_PROVISION": "network"}, SUBJECT: {"OVSNET_PROVISION": "install"}})
        vm = b[SUBJECT]
        vm.check(f"printf 'net.ipv4.conf.all.arp_ignore=1\\nnet.ipv4.conf.all.arp_announce=2\\n' > {ARP_SYSCTL} && sysctl -q -p {ARP_SYSCTL}", 30)
        vm.check(f"cat > {WATCH_UNIT} <<'EOF'\n{WATCH}EOF\nsystemctl --no-reload enable ovm-address-watch.service", 60)
        yield b


def hashes(bed: Bed) -> str:
    return bed[SUBJECT].check(f"find {MANAGER_FILES} -type f -print0 2>/dev/null | sort -z | xargs -0 sha256sum", 60)


def guest_seconds(vm) -> float:
    """The guest's own clock (seconds since its boot), which the DHCP client's timers follow."""
    return float(vm.check("cut -d' ' -f1 /proc/uptime", 30).strip())


def wait_for(bed: Bed, cmd: str, want: str, what: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        r = bed[SUBJECT].run(cmd, 60)
        if want in r.out:
            return r.out
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: `{cmd}` does not say {want!r} within {timeout:.0f} s:\n{r.text}")
        time.sleep(3)


def check_handed_over(bed: Bed, s: Scenario, address: str, when: str) -> dict:
    vm = bed[SUBJECT]
    port = wait_for_address(vm, Case(s.case.name, "mgmt0", s.case.dhcp, "", "", "", ""), 180)
    assert port["local"] == address, f"{s.case.name} {when}: mgmt0 holds {port['local']}, not {address} (the NIC's)"
    assert ipv4_on(vm, "eth1") == [], f"{s.case.name} {when}: eth1 holds an address: {ipv4_on(vm, 'eth1')}"
    wait_for(bed, s.port_view, s.port_done, f"{s.case.name} {when}: the manager's view of mgmt0")
    wait_for(bed, s.nic_view, s.nic_done, f"{s.case.name} {when}: the manager's view of eth1")
    r = vm.run(f"ping -n -q -c 2 -w 15 -I mgmt0 {GATEWAY}", 60)
    assert r.ok, f"{s.case.name} {when}: the gateway does not answer on mgmt0: {r.text}"
    return port


# Skipped before the bed is made: a scenario beyond CI's budget costs nothing with OVSNET_VM_TESTS=1.
LEVELLED = [pytest.param(n, marks=() if s.level == "1" else pytest.mark.skipif(not ALL, reason=ALL_REASON)) for n, s in SCENARIOS.items()]


@pytest.mark.parametrize("name", LEVELLED)
def test_handover_up_reboot_down(bed: Bed, name: str) -> None:
    s = SCENARIOS[name]
    vm, c = bed[SUBJECT], s.case
    installed = False
    try:
        with timed(MODULE, f"{name}: the manager configures eth1"):
            vm.check(c.setup, 180, f"{c.name}: setup")
            nic = wait_for_address(vm, c)
        address = nic["local"]
        before = hashes(bed)
        vm.check(f"mkdir -p /etc/ovsnet && cat > /etc/ovsnet/ho-none.toml <<'EOF'\n{topology('none', c.dhcp)}EOF\n"
                 f"cat > {TOPO} <<'EOF'\n{topology(s.handover, c.dhcp)}EOF\novsnet validate -q {TOPO}", 120)

        with timed(MODULE, f"{name}: up refused without a handover"):
            r = vm.run("ovsnet up /etc/ovsnet/ho-none.toml --host node1 --allow-uplink-move", 300)
            assert r.code == 5, f"up without handover: exit {r.code}, not 5:\n{r.text}"
            assert f"eth1 is managed by {s.label}" in r.text and f'set handover = "{s.handover}" (or "auto")' in r.text, r.text
            assert hashes(bed) == before and [a["local"] for a in ipv4_on(vm, "eth1")] == [address]

        with timed(MODULE, f"{name}: up with the handover"):
            r = vm.run(f"ovsnet plan {TOPO} --host node1", 300)
            assert "file:/etc/" in r.text and f"manager:{s.handover}" in r.text, r.text
            vm.check(f"ovsnet up {TOPO} --host node1 --allow-uplink-move --gateway-timeout 60 {SLOW}", 600, "up with the handover")
            check_handed_over(bed, s, address, "after up")
        if c.dhcp:
            with timed(MODULE, f"{name}: a DHCP renewal on mgmt0, none on eth1"):
                # A renewal is the lease's lifetime going up between two looks (it only
                # counts down otherwise); 2-minute leases renew at 60 s of the guest's
                # own clock, which the window follows (a guest agent call costs seconds).
                seen = [ipv4_on(vm, "mgmt0")[0]["valid_life_time"]]
                start, cap = guest_seconds(vm), time.monotonic() + 400
                while guest_seconds(vm) < start + 80 and time.monotonic() < cap and not any(b > a for a, b in zip(seen, seen[1:])):
                    assert ipv4_on(vm, "eth1") == [], f"{name}: an address came back on eth1 during the lease"
                    now = ipv4_on(vm, "mgmt0")
                    assert [a["local"] for a in now] == [address], f"{name}: mgmt0 lost its lease: {now}"
                    seen.append(now[0]["valid_life_time"])
                    time.sleep(5)
                if not any(b > a for a, b in zip(seen, seen[1:])):
                    why = vm.run("journalctl -b --no-pager -n 30 -u systemd-networkd -u NetworkManager", 60).out
                    server = bed[ROUTER].run("tail -n 30 /var/log/ovsnet-testbed/dhcp-mgmt.log", 60).out
                    raise AssertionError(f"{name}: the lease on mgmt0 was not renewed within 80 s of the guest's time "
                                         f"({guest_seconds(vm) - start:.0f} s went by); valid_lft seen: {seen}\n"
                                         f"node1's manager:\n{why}\nnode2's DHCP server:\n{server}")

        with timed(MODULE, f"{name}: reboot to a converged host"):
            vm.check(f"ovsnet install {TOPO} --host node1 && systemctl --no-reload enable ovsnet-ho-node1.service", 120)
            installed = True
            vm.reboot()
            t = time.monotonic()
            check_handed_over(bed, s, address, "after the reboot")
            wait_for(bed, f"ovsnet status {TOPO} --host node1; echo exit=$?", "exit=0", f"{name}: status after the reboot", 180)
            log(f"{name}: reboot: converged {time.monotonic() - t:.0f} s after the guest agent answered")
        boot = vm.check(f"sed -n \"/^BOOT $(cat /proc/sys/kernel/random/boot_id)/,\\$p\" {WATCH_LOG}", 30)
        assert boot.startswith("BOOT"), f"no address log of this boot in {WATCH_LOG}"
        on_nic = [line for line in boot.splitlines() if " eth1 " in line and "inet " in line]
        assert on_nic == [], f"{name}: eth1 held an address during the boot:\n{boot}"
        first_port = next((line for line in boot.splitlines() if " mgmt0 " in line and f"inet {address}/" in line), None)
        assert first_port is not None, f"{name}: the watcher never saw {address} on mgmt0:\n{boot}"
        order = vm.check("systemctl show -p ExecMainExitTimestampMonotonic --value ovsnet-ho-node1.service; "
                         "systemctl show -p ExecMainStartTimestampMonotonic --value "
                         + {"networkd": "systemd-networkd", "networkmanager": "NetworkManager", "ifupdown": "networking"}[s.handover], 30).split()
        log(f"{name}: boot: first address on mgmt0: {first_port.strip()}; ovsnet unit done at {int(order[0]) / 1e6:.2f} s, "
            f"the manager started at {int(order[1]) / 1e6:.2f} s (monotonic)")
        assert int(order[0]) <= int(order[1]), f"{name}: the manager started before ovsnet's boot unit was done: {order}"

        with timed(MODULE, f"{name}: down gives the NIC back"):
            vm.check(f"systemctl --no-reload disable ovsnet-ho-node1.service; rm -f /etc/systemd/system/ovsnet-ho-node1.service; "
                     f"ovsnet down {TOPO} --host node1 {SLOW}", 600, "down")
            installed = False
            assert hashes(bed) == before, f"{name}: the manager's files differ after down"
            back = wait_for_address(vm, c, 180)
            assert back["local"] == address, f"{name}: eth1 got {back['local']} back, not {address}"
            assert "mgmt0" not in vm.check("ip -o link", 30)

        with timed(MODULE, f"{name}: reboot after down: the host as before ovsnet"):
            vm.reboot()
            t = time.monotonic()
            back = check_configured(bed, c, "after down and a reboot")  # the manager's view, the router, the lease on node2
            assert back["local"] == address, f"{name}: after down and a reboot, eth1 got {back['local']}, not {address}"
            log(f"{name}: reboot after down: {c.nic} configured by the manager {time.monotonic() - t:.0f} s after the guest agent answered")
            links = vm.check("ip -o link", 30)
            assert "mgmt0" not in links and "br-ovs" not in links, f"{name}: ovsnet's links came back after down and a reboot:\n{links}"
            units = vm.check("ls /etc/systemd/system | grep '^ovsnet-' || true; "
                             "systemctl list-units --all --no-legend --plain 'ovsnet-*' || true", 30)
            assert units.strip() == "", f"{name}: an ovsnet boot unit after down:\n{units}"
            assert hashes(bed) == before, f"{name}: the manager's files differ after down and a reboot"
        boot = vm.check(f"sed -n \"/^BOOT $(cat /proc/sys/kernel/random/boot_id)/,\\$p\" {WATCH_LOG}", 30)
        assert boot.startswith("BOOT"), f"no address log of this boot in {WATCH_LOG}"
        assert not [line for line in boot.splitlines() if " mgmt0 " in line], f"{name}: mgmt0 got an address after down:\n{boot}"
    finally:
        with timed(MODULE, f"{name}: undo"):
            if installed:
                vm.run("systemctl --no-reload disable ovsnet-ho-node1.service; rm -f /etc/systemd/system/ovsnet-ho-node1.service", 60)
            vm.run(f"ovsnet down {TOPO} --host node1 {SLOW}", 600)
            vm.run(f"{c.teardown}; ip -4 addr flush dev {c.nic}; ip -4 route flush dev {c.nic}; ip link set {c.nic} down", 120)
