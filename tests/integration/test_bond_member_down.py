"""A bond member the distro never brought up: `up` brings it up, `down` puts it down again.

A fresh host's second NIC is often administratively down (nothing configures
it). Neither OVS datapath sets a port's NIC up, so without ovsnet doing it
the bond would run on one member forever, and `status` would call the bond
degraded. node1: eth1 up with the address and default route, eth2 down, both
cabled to the gateway's bridge; the uplink bonds them (active-backup).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from ovsnet import apply
from ovsnet.topology import check
from ovsnet.topology.load import parse
from tests.support.commands import ns_json, sh
from tests.support.labhost import node1_target, wire_two_cables
from tests.support.topologies import two_nic_bond

pytestmark = pytest.mark.root



def state(ns: str) -> dict:
    links = {lk["ifname"]: lk for lk in ns_json(ns, "link")}
    addrs = {a["ifname"]: sorted(i["local"] for i in a.get("addr_info", []) if i.get("scope") != "link") for a in ns_json(ns, "addr")}
    out: dict = {n: (addrs.get(n, []), links[n]["mtu"], links[n].get("master"), "UP" in links[n]["flags"]) for n in ("eth1", "eth2")}
    out["routes"] = sorted(json.dumps(r, sort_keys=True) for r in ns_json(ns, "route"))
    return out


def ovs_member(remote: str, name: str) -> tuple[str, str]:
    """(admin_state, link_state) of an Interface as ovs-vswitchd reports it."""
    out = subprocess.run(["ovs-vsctl", f"--db={remote}", "--bare", "--columns=admin_state,link_state", "list", "Interface", name],
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], out[1]


@pytest.fixture
def second_nic_down(ovs, make_ns, tmp_path, run_prefix):
    host, gw = ovs.netns, make_ns("gw")
    wire_two_cables(host, gw)
    sh("ip", "-n", host, "-batch", "-", input="link set eth1 up\naddr add 192.168.10.11/24 dev eth1\nroute add default via 192.168.10.1 dev eth1\n")
    target = node1_target(ovs.remote, host, tmp_path, "nameserver 9.9.9.9\n", gateway_timeout=15.0)
    return host, check(parse(two_nic_bond(f"omd{run_prefix[-5:]}"), "member-down.toml")), target


def test_up_brings_a_down_member_up_and_down_puts_it_back_down(ovs, second_nic_down):
    host, checked, target = second_nic_down
    before = state(host)
    assert before["eth1"][3] and not before["eth2"][3]

    plan = apply.plan_live(checked, "node1", target)
    assert "modify  link:eth2  down -> up" in [c.line() for c in plan.changes]

    result = apply.up(checked, "node1", target)
    assert "link:eth2" in [c.resource for c in result.applied]
    assert state(host)["eth2"][3], "eth2 is still down after up"
    assert ovs_member(ovs.remote, "eth2") == ("up", "up")
    status = apply.drift(checked, "node1", target)
    assert status.empty and status.health == (), [h.message for h in status.health]

    apply.down(checked, "node1", target)
    assert state(host) == before
