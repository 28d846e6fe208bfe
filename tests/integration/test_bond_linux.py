"""The host's address on a Linux bond the distro made (bond0 over eth1 and eth2).

`up` frees the members for an OVS bond (they come up again), moves the
address off bond0 with the gateway check; `down` puts eth1 and eth2 back into
bond0 and its address and default route back on it, exactly.

Needs the kernel's bonding driver: skipped where `ip link add ... type bond`
is refused (the development machine's kernel has none; a Debian kernel, as in
the VM bed's guests, has it).
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
    links = {lk["ifname"]: lk for lk in ns_json(ns, "-d", "link")}
    addrs = {a["ifname"]: sorted(i["local"] for i in a.get("addr_info", []) if i.get("scope") != "link") for a in ns_json(ns, "addr")}
    out = {n: (addrs.get(n, []), links[n]["mtu"], links[n].get("master"), "UP" in links[n]["flags"], links[n]["address"])
           for n in ("eth1", "eth2", "bond0")}
    out["routes"] = sorted(json.dumps(r, sort_keys=True) for r in ns_json(ns, "route"))
    return out


def ping(ns: str, addr: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", addr], capture_output=True).returncode == 0


@pytest.fixture
def on_a_linux_bond(ovs, make_ns, tmp_path, run_prefix):
    """node1 before ovsnet: bond0 (active-backup) over eth1 and eth2, holding the address and default route."""
    host, gw = ovs.netns, make_ns("gw")
    made = subprocess.run(["ip", "-n", host, "link", "add", "bond0", "type", "bond", "mode", "active-backup", "miimon", "100"],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"this kernel makes no Linux bond: {made.stderr.strip()}")
    wire_two_cables(host, gw)
    sh("ip", "-n", host, "-batch", "-", input="link set eth1 master bond0\nlink set eth2 master bond0\nlink set bond0 up\n"
                                             "addr add 192.168.10.11/24 dev bond0\nroute add default via 192.168.10.1 dev bond0\n")
    assert ping(host, "192.168.10.1")
    target = node1_target(ovs.remote, host, tmp_path, "nameserver 9.9.9.9\n", gateway_timeout=15.0)
    return host, check(parse(two_nic_bond(f"obd{run_prefix[-5:]}"), "linux-bond.toml")), target


def test_the_address_moves_off_a_linux_bond_and_down_gives_it_back(on_a_linux_bond):
    host, checked, target = on_a_linux_bond
    before = state(host)
    assert before["eth1"][2] == "bond0" and before["bond0"][0] == ["192.168.10.11"]

    result = apply.up(checked, "node1", target)
    assert result.plan.moves_from == ("bond0",)
    freed = [c.resource for c in result.applied if c.resource in ("link:eth1", "link:eth2")]
    assert freed == ["link:eth1", "link:eth2"]
    now = state(host)
    assert now["eth1"][2] != "bond0" and now["eth2"][2] != "bond0" and now["eth1"][3] and now["eth2"][3]
    assert now["bond0"][0] == []
    assert [a["addr_info"][0]["local"] for a in ns_json(host, "addr", "show", "mgmt0") if a.get("addr_info")] == ["192.168.10.11"]
    assert ping(host, "192.168.10.1")
    assert apply.drift(checked, "node1", target).empty

    apply.down(checked, "node1", target)
    assert state(host) == before
    assert ping(host, "192.168.10.1")
