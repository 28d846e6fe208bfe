"""A DHCP management address, handed over from a real dhclient, with a real DHCP server (dnsmasq).

The lab builds node1 as a host whose address is a lease: its NIC up, ISC
dhclient on it, the lease from dnsmasq on the router's leg of the
management VLAN (2-minute leases). Then, on the same lab:

1. without a handover `up` refuses, naming the client, and changes nothing;
2. with `handover = "dhclient"` the lease follows the address to the
   management port (same address: the port has the NIC's MAC), the client
   runs there and not on the NIC; after the lease time has passed twice the
   NIC still holds no address and the port still holds the same one,
   renewed; `down` gives the lease back to the NIC and its client.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from ovsnet import apply
from ovsnet.errors import RefusedError
from ovsnet.lab import build, teardown
from ovsnet.lab.names import host_root, targets
from ovsnet.managers.dhclient import pid_of
from ovsnet.topology import check
from ovsnet.topology.load import parse

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 120


def topology(handover: str) -> str:
    text = (ROOT / "topologies" / "seed.toml").read_text()
    text = text.replace('name = "seed"', 'name = "dhcpseed"', 1)
    return text.replace('[hosts.node1.management]\nport = "mgmt0"\naddresses = ["192.168.10.11/24"]\ngateway = "192.168.10.1"',
                        f'[hosts.node1.management]\nport = "mgmt0"\naddresses = "dhcp"\nhandover = "{handover}"', 1)


def ipv4(ns: str, dev: str) -> list[dict]:
    out = subprocess.run(["ip", "-n", ns, "-j", "-4", "addr", "show", "dev", dev], capture_output=True, text=True, check=True).stdout
    return [a for entry in json.loads(out or "[]") for a in entry.get("addr_info", [])]


@pytest.fixture
def lab(run_prefix, tmp_path):
    checked = check(parse(topology("none"), str(tmp_path / "dhcpseed.toml")))
    prefix = "d" + run_prefix[-6:]
    where = tmp_path / "lab"
    try:
        yield build.build(checked.topology, prefix, where)
    finally:
        teardown.destroy(prefix, where)


def test_a_lease_is_refused_without_handover_then_follows_the_address_to_the_port(lab, tmp_path):
    t = targets(lab)["node1"]
    ns, root = t.netns, host_root(lab.lab_dir, t.netns)
    assert ns is not None
    (lease,) = ipv4(ns, "eth1")
    address = f"{lease['local']}/{lease['prefixlen']}"
    assert lease["dynamic"] and pid_of(root, "eth1") is not None

    # 1. No handover: refused, naming the client and the way out; nothing changed.
    with pytest.raises(RefusedError) as refused:
        apply.up(check(parse(topology("none"), str(tmp_path / "dhcpseed.toml"))), "node1", t)
    msg = str(refused.value)
    assert "eth1 is managed by dhclient (DHCP)" in msg and 'set handover = "dhclient" (or "auto")' in msg, msg
    assert [a["local"] for a in ipv4(ns, "eth1")] == [lease["local"]]
    links = json.loads(subprocess.run(["ip", "-n", ns, "-j", "link"], capture_output=True, text=True, check=True).stdout)
    assert "mgmt0" not in {link["ifname"] for link in links}
    assert pid_of(root, "eth1") is not None

    # 2. Handed over: the same lease, on the management port, renewed there.
    checked = check(parse(topology("dhclient"), str(tmp_path / "dhcpseed.toml")))
    plan = apply.plan_live(checked, "node1", t)
    assert any("eth1 is managed by dhclient" in f for f in plan.facts), plan.facts
    assert [c.resource for c in plan.changes if c.phase.value == "handover"] == ["dhcp:eth1", "dhcp:mgmt0"]
    apply.up(checked, "node1", t)
    assert ipv4(ns, "eth1") == []
    (moved,) = ipv4(ns, "mgmt0")
    assert f"{moved['local']}/{moved['prefixlen']}" == address and moved["dynamic"]
    assert pid_of(root, "mgmt0") is not None and pid_of(root, "eth1") is None
    # Twice the lease time: renewals happen on the port, never on the NIC.
    deadline = time.monotonic() + 2 * LEASE_SECONDS + 10
    while time.monotonic() < deadline:
        assert ipv4(ns, "eth1") == [], "a renewal put an address back on the NIC"
        time.sleep(5)
    (renewed,) = ipv4(ns, "mgmt0")
    assert f"{renewed['local']}/{renewed['prefixlen']}" == address
    assert renewed["valid_life_time"] > 0
    assert apply.drift(checked, "node1", t).empty

    # 3. down: the lease and its client go back to the NIC.
    apply.down(checked, "node1", t)
    (back,) = ipv4(ns, "eth1")
    assert back["local"] == lease["local"] and back["dynamic"]
    assert pid_of(root, "eth1") is not None and pid_of(root, "mgmt0") is None
