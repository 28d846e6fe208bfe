"""The host's own network managers on the trunk NIC, without ovsnet: the starting
point of issue 15, on real systemd in real (emulated) VMs, and the test bed's
own capabilities that issues 12, 14 and 15 build on.

One boot of node2 and node1 (vagrant/topology.toml), then:
- the bed: no manager holds a trunk NIC at boot; the second cable (eth2) carries
  frames, and stops when taken down (QMP set_link) and carries them again when
  brought back; SSH from this machine as root and as a sudo user;
- node2 is the network, without ovsnet (OVSNET_PROVISION=network): the router
  and its DHCP server on VLAN 10, on a plain OVS bridge trunking eth1 as the
  topology says; node1 gets no ovsnet either. node1's trunk NICs are handed to
  its network managers, two per boot: systemd-networkd (eth1 static, eth2
  DHCP), then ifupdown in the seed's style (eth1 static) beside NetworkManager
  (a keyfile, eth2 DHCP). node1 is rebooted after each pair, and each manager
  must have put the address back (a DHCP lease with a finite lifetime, known
  to node2's server), with a file written before the reboot still there (the
  -snapshot overlay outlives a guest reboot).

Each boot undoes what it did, so the next starts from unmanaged NICs.
Runs only with OVSNET_VM_TESTS=all.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.vms import ALL, ALL_REASON, Bed, Vm, log, timed, two_vm_bed

# Two reboots of the managers without ovsnet: beyond CI's budget (test_vm_handover.py covers one with ovsnet there).
pytestmark = [pytest.mark.vm, pytest.mark.skipif(not ALL, reason=ALL_REASON)]

MODULE = "managers"
ROUTER, SUBJECT = "node2", "node1"
STATIC = ipaddress.ip_interface("192.168.10.11/24")  # node1's address in the topology
GATEWAY = "192.168.10.1"
DHCP_POOL = (ipaddress.IPv4Address("192.168.10.100"), ipaddress.IPv4Address("192.168.10.150"))
DHCP_LEASES = "/var/lib/ovsnet-testbed/dhcp-mgmt.leases"  # on node2 (vagrant/testbed.py)
FOREVER = 4294967295  # valid_life_time of a permanent address in `ip -j addr`


@pytest.fixture(scope="module")
def bed(request: pytest.FixtureRequest) -> Iterator[Bed]:
    before = request.session.testsfailed
    with two_vm_bed(MODULE, lambda: request.session.testsfailed > before) as b:
        yield b


@pytest.fixture(scope="module")
def provisioned(bed: Bed) -> Bed:
    """node2 as the network, without ovsnet (OVSNET_PROVISION=network): the router
    with its DHCP server on a plain OVS bridge trunking eth1. node1 is left as
    booted: the baseline needs no ovsnet anywhere."""
    with timed(MODULE, "node2: the network (router, DHCP, switch)"):
        bed.provision({ROUTER: {"OVSNET_PROVISION": "network"}})
    return bed


# --- the bed ---------------------------------------------------------------------------------


def test_no_manager_holds_a_trunk_nic_at_boot(bed: Bed) -> None:
    with timed(MODULE, "unmanaged trunk NICs"):
        for vm in bed.vms.values():
            out = vm.check("networkctl list --no-legend --no-pager; echo ---; "
                           "systemctl is-active NetworkManager networking || true; echo ---; "
                           "ip -4 -o addr show dev eth1; ip -4 -o addr show dev eth2; pgrep -a dhclient || true", 60)
            links, units, rest = out.split("---\n")
            setup = {f[1]: f[-1] for f in (line.split() for line in links.splitlines()) if len(f) >= 5}
            assert setup.get("eth0") == "configured", f"{vm.name}: networkd should manage eth0:\n{links}"
            assert setup.get("eth1") == "unmanaged" and setup.get("eth2") == "unmanaged", f"{vm.name}:\n{links}"
            assert units.split() == ["inactive", "inactive"], f"{vm.name}: NetworkManager, networking: {units}"
            assert rest.strip() == "", f"{vm.name}: a trunk NIC has an address or a DHCP client runs:\n{rest}"


def test_second_cable_carries_frames_and_can_be_pulled(bed: Bed) -> None:
    """eth2 of node1 and node2 are one cable: a ping crosses it; with the cable down
    (QMP set_link on both ends) the guests see no carrier and the ping fails; back
    up, it crosses again. The temporary addresses are removed at the end."""
    a, b = bed["node1"], bed["node2"]
    addr = {a.name: "169.254.212.1", b.name: "169.254.212.2"}
    with timed(MODULE, "second cable, down and up"):
        assert a.nic_name("trunk2") == "eth2" and b.nic_name("trunk2") == "eth2"
        try:
            bed.each(lambda vm: vm.check(f"ip link set eth2 up && ip addr add {addr[vm.name]}/24 dev eth2", 30))
            ping = f"ping -n -q -c 3 -i 0.3 -w 15 -I eth2 {addr[b.name]}"
            r = a.run(ping, 60)
            assert r.ok, f"no reply across the second cable: {r.text}"

            bed.set_cable("trunk2", up=False)
            carrier = bed.each(lambda vm: vm.check("sleep 1; cat /sys/class/net/eth2/carrier", 30).strip())
            assert carrier == {"node1": "0", "node2": "0"}, f"carrier with the cable down: {carrier}"
            r = a.run(f"ip neigh flush dev eth2; ping -n -q -c 2 -w 4 -I eth2 {addr[b.name]}", 60)
            assert not r.ok, f"a ping crossed a cable that is down: {r.text}"

            bed.set_cable("trunk2", up=True)
            carrier = bed.each(lambda vm: vm.check("sleep 1; cat /sys/class/net/eth2/carrier", 30).strip())
            assert carrier == {"node1": "1", "node2": "1"}, f"carrier with the cable up: {carrier}"
            r = a.run(ping, 60)
            assert r.ok, f"no reply across the second cable once back up: {r.text}"
        finally:
            bed.each(lambda vm: vm.run(f"ip addr del {addr[vm.name]}/24 dev eth2; ip link set eth2 down", 30))
        left = bed.each(lambda vm: vm.check("ip -4 -o addr show dev eth2", 30).strip())
        assert left == {"node1": "", "node2": ""}, f"temporary addresses left on eth2: {left}"


def test_ssh_as_root_and_as_a_sudo_user(bed: Bed) -> None:
    """From this machine, as a user (or Ansible) would: root with the run's key, and
    `vagrant` with sudo; Debian's sudoers resets the environment (SSH_CONNECTION is
    gone under sudo), which issue 14's guard must live with."""
    with timed(MODULE, "ssh as root and as vagrant with sudo"):
        for name in bed.vms:
            p = subprocess.run(bed.ssh_argv(name, "root", "hostname; id -u"), capture_output=True, text=True, timeout=120)
            assert p.returncode == 0 and p.stdout.split()[-1] == "0", f"{name}: ssh as root: {p.stdout}{p.stderr}"
            cmd = 'echo "user=$(id -un) ssh=${SSH_CONNECTION:+yes}"; sudo -n sh -c \'echo "sudo=$(id -un) ssh=${SSH_CONNECTION:+yes}"\''
            p = subprocess.run(bed.ssh_argv(name, "vagrant", cmd), capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, f"{name}: ssh as vagrant with sudo: {p.stdout}{p.stderr}"
            assert p.stdout.split() == ["user=vagrant", "ssh=yes", "sudo=root", "ssh="], f"{name}: {p.stdout}"
        cfg = bed.work / "ssh_config"
        p = subprocess.run(["ssh", "-F", str(cfg), "node1", "true"], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"ssh -F {cfg} node1: {p.stderr}"


# --- the network managers on node1's trunk NICs ----------------------------------------------------
#
# Two boots, two NICs each (a reboot is the slow part: about 90 CPU-seconds under
# emulation, shutdown included): node1's eth1 and eth2 both reach node2's VLAN 10
# (eth2 through a port that the fixture below adds to node2's bridge), so each
# can hold a static address or a lease from node2's DHCP server.


@dataclass(frozen=True)
class Case:
    """One NIC handed to one manager: how to set it up (its config file, the service
    enabled and started), how the manager itself reports the NIC as done (a command
    whose output must contain `done`), and how to undo it all."""

    name: str
    nic: str
    dhcp: bool
    setup: str
    status: str
    done: str
    teardown: str


def networkd(nic: str, dhcp: bool) -> Case:
    path = f"/etc/systemd/network/20-testbed-{nic}.network"
    how = "DHCP=ipv4" if dhcp else f"Address={STATIC}\nGateway={GATEWAY}"
    unit = f"[Match]\nName={nic}\n\n[Network]\n{how}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    return Case(
        f"systemd-networkd {'DHCP' if dhcp else 'static'} on {nic}", nic, dhcp,
        setup=f"cat > {path} <<'EOF'\n{unit}EOF\nnetworkctl reload",
        status=f"networkctl list --no-legend --no-pager {nic}", done="routable configured",
        teardown=f"rm -f {path}; networkctl reload")


def networkmanager(nic: str, dhcp: bool) -> Case:
    path = f"/etc/NetworkManager/system-connections/testbed-{nic}.nmconnection"
    ipv4 = "method=auto" if dhcp else f"method=manual\naddress1={STATIC},{GATEWAY}"
    keyfile = (f"[connection]\nid=testbed-{nic}\ntype=ethernet\ninterface-name={nic}\nautoconnect=true\n\n"
               f"[ipv4]\n{ipv4}\n\n[ipv6]\nmethod=disabled\n")
    return Case(
        f"NetworkManager keyfile, {'DHCP' if dhcp else 'static'}, on {nic}", nic, dhcp,
        # --no-reload: enable only adds a link for the next boot; a daemon-reload
        # costs seconds under emulation.
        setup=f"install -m 600 /dev/stdin {path} <<'EOF'\n{keyfile}EOF\n"
              "systemctl --no-reload enable NetworkManager && systemctl start NetworkManager\n"
              "for i in $(seq 60); do nmcli -t general status >/dev/null 2>&1 && break; sleep 1; done\n"
              f"nmcli connection reload && nmcli connection up testbed-{nic}",
        status=f"nmcli -t -f GENERAL.STATE,GENERAL.CONNECTION device show {nic}", done=f"GENERAL.CONNECTION:testbed-{nic}",
        teardown=f"nmcli connection delete testbed-{nic}; rm -f {path}; "
                 "systemctl --no-reload disable NetworkManager; systemctl stop NetworkManager")


def ifupdown(nic: str, dhcp: bool) -> Case:
    # The seed's hosts: a static stanza in /etc/network/interfaces itself.
    stanza = (f"\n# {nic}, as on the seed's hosts\nauto {nic}\n" +
              (f"iface {nic} inet dhcp\n" if dhcp else
               f"iface {nic} inet static\n    address {STATIC.ip}\n    netmask {STATIC.netmask}\n    gateway {GATEWAY}\n"))
    return Case(
        f"ifupdown {'DHCP' if dhcp else 'static'} on {nic}", nic, dhcp,
        setup=f"cp -n /etc/network/interfaces /etc/network/interfaces.testbed-orig\n"
              f"cat >> /etc/network/interfaces <<'EOF'\n{stanza}EOF\n"
              f"systemctl --no-reload enable networking && ifup {nic}",
        status=f"ifquery --state {nic}", done=f"{nic}={nic}",
        teardown=f"ifdown {nic}; mv /etc/network/interfaces.testbed-orig /etc/network/interfaces; "
                 "systemctl --no-reload disable networking")


BOOTS = {
    "networkd": (networkd("eth1", dhcp=False), networkd("eth2", dhcp=True)),
    # Debian's usual pair: NetworkManager leaves the NICs of /etc/network/interfaces alone.
    "ifupdown+networkmanager": (ifupdown("eth1", dhcp=False), networkmanager("eth2", dhcp=True)),
}

# Two NICs on one subnet: each answers ARP only for its own address (else the
# router may send eth1's replies to eth2's MAC), also after a reboot.
ARP_SYSCTL = "/etc/sysctl.d/60-testbed-arp.conf"


@pytest.fixture(scope="module")
def second_nic_on_vlan10(provisioned: Bed) -> Iterator[Bed]:
    bed = provisioned
    bed[ROUTER].check("ovs-vsctl add-port $(ovs-vsctl port-to-br rtr-mgmt) eth2 tag=10 && ip link set eth2 up", 60, "node2: eth2 on VLAN 10")
    bed[SUBJECT].check(f"printf 'net.ipv4.conf.all.arp_ignore=1\\nnet.ipv4.conf.all.arp_announce=2\\n' > {ARP_SYSCTL} && sysctl -q -p {ARP_SYSCTL}", 30)
    yield bed
    bed[SUBJECT].run(f"rm -f {ARP_SYSCTL}; sysctl -q -w net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.all.arp_announce=0", 30)
    bed[ROUTER].run("ovs-vsctl --if-exists del-port eth2; ip link set eth2 down", 60)


def ipv4_on(vm: Vm, dev: str, missing_ok: bool = False) -> list[dict]:
    r = vm.run(f"ip -j -4 addr show dev {dev}", 30)
    if missing_ok and not r.ok and "does not exist" in r.err:
        return []
    if not r.ok:
        raise AssertionError(f"{vm.name}: ip -4 addr show dev {dev}: exit {r.code}:\n{r.text}")
    data = json.loads(r.out or "[]")
    return [a for link in data for a in link.get("addr_info", []) if a.get("family") == "inet"]


def wait_for_address(vm: Vm, c: Case, timeout: float = 120) -> dict:
    """The address the manager put on the NIC: the static one, permanent; or one of
    the DHCP pool with a finite lifetime (a lease)."""
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while time.monotonic() < deadline:
        # After a reboot the guest agent may answer before Open vSwitch has made its internal port.
        seen = ipv4_on(vm, c.nic, missing_ok=True)
        for a in seen:
            ip = ipaddress.IPv4Address(a["local"])
            if c.dhcp and DHCP_POOL[0] <= ip <= DHCP_POOL[1] and a.get("prefixlen") == 24:
                assert a.get("dynamic") and 0 < a["valid_life_time"] <= 120, f"{c.name}: not a 2-minute lease: {a}"
                return a
            if not c.dhcp and ip == STATIC.ip and a.get("prefixlen") == STATIC.network.prefixlen:
                assert a["valid_life_time"] == FOREVER and not a.get("dynamic"), f"{c.name}: a static address should be permanent: {a}"
                return a
        time.sleep(2)
    raise AssertionError(f"{c.name}: no {'lease' if c.dhcp else STATIC} on {c.nic} within {timeout:.0f} s; seen {seen}")


def check_configured(bed: Bed, c: Case, when: str) -> dict:
    vm = bed[SUBJECT]
    addr = wait_for_address(vm, c)
    deadline = time.monotonic() + 60
    while True:  # the manager may report done a moment after the address is there
        r = vm.run(c.status, 30)
        if c.done in r.out or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert c.done in r.out, f"{c.name} {when}: `{c.status}` does not say {c.done!r}:\n{r.text}"
    r = vm.run(f"ping -n -q -c 2 -w 10 -I {c.nic} {GATEWAY}", 60)
    assert r.ok, f"{c.name} {when}: the router {GATEWAY} does not answer on {c.nic}: {r.text}"
    if c.dhcp:
        mac = vm.check(f"cat /sys/class/net/{c.nic}/address", 30).strip()
        leases = bed[ROUTER].check(f"cat {DHCP_LEASES}", 30)
        assert any(mac in line and addr["local"] in line for line in leases.splitlines()), \
            f"{c.name} {when}: node2's DHCP server has no lease of {addr['local']} for {mac}:\n{leases}"
    log(f"{c.name} {when}: {addr['local']}/{addr['prefixlen']} valid_lft {addr['valid_life_time']}")
    return addr


@pytest.mark.parametrize("boot", list(BOOTS))
def test_managers_put_the_addresses_back_after_a_reboot(second_nic_on_vlan10: Bed, boot: str) -> None:
    bed = second_nic_on_vlan10
    vm = bed[SUBJECT]
    cases = BOOTS[boot]
    for c in cases:
        assert ipv4_on(vm, c.nic) == [], f"{c.nic} should start unmanaged and empty"
    marker = f"/var/lib/testbed-marker-{uuid.uuid4().hex[:8]}"
    before: dict[str, dict] = {}
    try:
        for c in cases:
            with timed(MODULE, f"{c.name}: configure"):
                vm.check(c.setup, 180, f"{c.name}: setup")
                before[c.name] = check_configured(bed, c, "before the reboot")
        vm.check(f"echo {boot} > {marker}; sync", 30)
        with timed(MODULE, f"{boot}: reboot"):
            vm.reboot()
        assert vm.check(f"cat {marker}", 30).strip() == boot, "a file written before the reboot is gone"
        for c in cases:
            with timed(MODULE, f"{c.name}: after the reboot"):
                after = check_configured(bed, c, "after the reboot")
                if c.dhcp:
                    log(f"{c.name}: lease before the reboot {before[c.name]['local']}, after {after['local']}")
    finally:
        with timed(MODULE, f"{boot}: undo"):
            for c in cases:
                vm.run(f"{c.teardown}; ip -4 addr flush dev {c.nic}; ip -4 route flush dev {c.nic}; ip link set {c.nic} down", 120)
            vm.run(f"rm -f {marker}", 30)
    for c in cases:
        assert ipv4_on(vm, c.nic) == [], f"{c.name}: {c.nic} not empty after the undo"
