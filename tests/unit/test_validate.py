"""Every validation rule fires with the right key path and names, and not on the seed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ovsnet.errors import ConfigError
from ovsnet.topology import check, graph
from ovsnet.topology.load import parse
from ovsnet.topology.validate import errors, ifname_problem, validate

ROOT = Path(__file__).resolve().parents[2]
SEED_TEXT = (ROOT / "topologies" / "seed.toml").read_text()


def sub(pattern: str, repl: str, text: str = SEED_TEXT, count: int = 1) -> str:
    new, n = re.subn(pattern, repl, text, count=count, flags=re.M)
    assert n, f"pattern {pattern!r} not found"
    return new


def findings(text: str):
    topo = parse(text, "t.toml")
    return validate(topo, graph.build(topo))


def at(fs, path: str, severity: str = "error"):
    hits = [f for f in fs if f.path == path and f.severity == severity]
    assert hits, f"no {severity} at {path!r}; got {[(f.path, f.severity, f.message) for f in fs]}"
    return hits


def messages(fs) -> str:
    return "\n".join(f.message for f in fs)


# --- the seed is clean -------------------------------------------------------------


def test_seed_has_no_findings():
    assert findings(SEED_TEXT) == []


def test_seed_checks():
    checked = check(parse(SEED_TEXT))
    assert checked.warnings == ()


# --- VLANs --------------------------------------------------------------------------


def test_duplicate_vlan_ids():
    fs = findings(sub(r"^id = 200$", "id = 100"))
    (f,) = at(fs, "vlans.db.id")
    assert "VLAN id 100 is used by web and db" in f.message


def test_router_outside_subnet():
    (f,) = at(findings(sub(r'^router = "10\.100\.0\.1"$', 'router = "10.101.0.1"')), "vlans.web.router")
    assert "outside VLAN web's subnet 10.100.0.0/24" in f.message


def test_router_on_network_address():
    (f,) = at(findings(sub(r'^router = "10\.100\.0\.1"$', 'router = "10.100.0.0"')), "vlans.web.router")
    assert "network or broadcast" in f.message


# --- interface names -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, why",
    [
        ("br-web-containers", "17 bytes"),
        ("br/web", "'/'"),
        ("br web", "' '"),
        ("br:web", "':'"),
        ("brücke-netz-ab1", "16 bytes"),  # 15 characters, 16 bytes in UTF-8
    ],
)
def test_bad_docker_bridge_ifname(name, why):
    text = SEED_TEXT.replace('bridge = "br-db"', f'bridge = "{name}"\npatch_ovs = "p-ovs"\npatch_bridge = "p-lnx"', 1)
    fs = at(findings(text), "hosts.node1.docker[1].bridge")
    assert f"interface name '{name}'" in fs[0].message
    assert why in fs[0].message


def test_ifname_rules():
    assert ifname_problem("a" * 15) is None
    assert "16 bytes" in ifname_problem("a" * 16)
    assert "ASCII" in ifname_problem("ü" * 7)  # 14 bytes fit the kernel, but ovsnet takes ASCII only
    assert "16 bytes" in ifname_problem("ü" * 8)
    assert ifname_problem("..") is not None
    assert ifname_problem("a\tb") is not None


def test_long_bridge_name_also_flags_its_default_patch_names():
    text = SEED_TEXT.replace('bridge = "br-db"', 'bridge = "br-database1"', 1)  # 12 bytes; ovs- prefix makes 16
    fs = findings(text)
    assert not [f for f in fs if f.path == "hosts.node1.docker[1].bridge"]
    (f,) = at(fs, "hosts.node1.docker[1].patch_ovs")
    assert "'ovs-br-database1'" in f.message
    at(fs, "hosts.node1.docker[1].patch_bridge")


def test_duplicate_ifname_on_a_host():
    text = SEED_TEXT.replace('bridge = "br-db"', 'bridge = "br-web"', 1)
    fs = findings(text)
    (f, *_) = at(fs, "hosts.node1.docker[1].bridge")
    assert "also used at hosts.node1.docker[0].bridge" in messages(fs)


def test_long_uplink_and_mgmt_names():
    text = sub(r'^nic = "eth1"$', 'nic = "enp0s31f6-uplink1"')
    text = sub(r'^port = "mgmt0"$', 'port = "management-port0"', text)
    fs = findings(text)
    at(fs, "hosts.node1.uplinks[0].nic")
    at(fs, "hosts.node1.management.port")


# --- VLAN placement on a host ----------------------------------------------------------


def test_docker_bridge_vlan_not_on_trunk():
    text = sub(r'^vlans = \["mgmt", "web", "db"\]$', 'vlans = ["mgmt", "web"]')
    fs = findings(text)
    (f,) = at(fs, "hosts.node1.docker[1].vlan")
    assert "linux_bridge:node1/br-db" in f.message
    assert "VLAN db" in f.message and "node1" in f.message
    assert "add 'db'" in f.hint
    assert not [x for x in fs if x.path.startswith("hosts.node2")]


def test_unused_trunked_vlan_is_a_warning():
    text = SEED_TEXT.replace(
        '[[hosts.node2.docker]]\nbridge = "br-db"\nvlan = "db"\nnetwork = "db"\n', ""
    )
    text = text.replace('[[endpoints]]\nname = "db2"\nhost = "node2"\nvlan = "db"\naddress = "10.200.0.12/24"\n', "")
    fs = findings(text)
    (f,) = at(fs, "hosts.node2.uplinks[0].vlans", "warning")
    assert "VLAN db is trunked on nic:node2/eth1" in f.message
    assert errors(fs) == []
    checked = check(parse(text))  # warnings alone do not fail the check
    assert [w.path for w in checked.warnings] == ["hosts.node2.uplinks[0].vlans"]


def test_native_vlan_not_in_list_is_a_warning():
    text = sub(r'^vlans = \["mgmt", "web", "db"\]$', 'vlans = ["web", "db"]')
    fs = findings(text)
    (f,) = at(fs, "hosts.node1.uplinks[0].native_vlan", "warning")
    assert "native VLAN mgmt" in f.message
    assert errors(fs) == []


def test_host_without_uplink():
    text = SEED_TEXT.replace('[[hosts.node2.uplinks]]\nnic = "eth1"\nvlans = ["mgmt", "web", "db"]\nnative_vlan = "mgmt"\n', "")
    text = text.replace('[[lab.cables]]\nends = ["node2:eth1", "switch"]', "")
    fs = findings(text)
    (f,) = at(fs, "hosts.node2.uplinks")
    assert "node2 has no uplink" in f.message


# --- L2 loops -----------------------------------------------------------------------------


TWO_CABLES = SEED_TEXT.replace(
    '[[hosts.node1.uplinks]]\nnic = "eth1"\nvlans = ["mgmt", "web", "db"]\nnative_vlan = "mgmt"\n',
    '[[hosts.node1.uplinks]]\nnic = "eth1"\nvlans = ["mgmt", "web", "db"]\nnative_vlan = "mgmt"\n\n'
    '[[hosts.node1.uplinks]]\nnic = "eth2"\nvlans = ["web"]\n',
).replace(
    '[[hosts.node2.uplinks]]\nnic = "eth1"\nvlans = ["mgmt", "web", "db"]\nnative_vlan = "mgmt"\n',
    '[[hosts.node2.uplinks]]\nnic = "eth1"\nvlans = ["mgmt", "web", "db"]\nnative_vlan = "mgmt"\n\n'
    '[[hosts.node2.uplinks]]\nnic = "eth2"\nvlans = ["web"]\n',
)


def test_loop_between_two_hosts():
    text = TWO_CABLES.replace(
        '[lab]\nswitch = "switch"\n\n[[lab.cables]]\nends = ["node1:eth1", "switch"]\n\n[[lab.cables]]\nends = ["node2:eth1", "switch"]',
        '[lab]\n\n[[lab.cables]]\nends = ["node1:eth1", "node2:eth1"]\n\n[[lab.cables]]\nends = ["node1:eth2", "node2:eth2"]',
    )
    assert text != TWO_CABLES
    fs = findings(text)
    loops = [f for f in fs if "L2 loop" in f.message]
    assert len(loops) == 1, messages(fs)
    assert loops[0].path == "lab.cables[1]"  # the second cable between the two hosts closes it
    assert "VLAN web" in loops[0].message
    assert "node1" in loops[0].message or "node2" in loops[0].message


def test_no_loop_when_second_cable_carries_other_vlans():
    text = TWO_CABLES.replace('nic = "eth2"\nvlans = ["web"]', 'nic = "eth2"\nvlans = ["db"]')
    text = text.replace(
        '[lab]\nswitch = "switch"\n\n[[lab.cables]]\nends = ["node1:eth1", "switch"]\n\n[[lab.cables]]\nends = ["node2:eth1", "switch"]',
        '[lab]\n\n[[lab.cables]]\nends = ["node1:eth1", "node2:eth1"]\n\n[[lab.cables]]\nends = ["node1:eth2", "node2:eth2"]',
    )
    fs = findings(text)
    loops = [f for f in fs if "L2 loop" in f.message]
    assert len(loops) == 1 and "VLAN db" in loops[0].message
    # web rides only the first cable now
    text2 = text.replace('nic = "eth2"\nvlans = ["db"]', 'nic = "eth2"\nvlans = ["mgmt"]\nnative_vlan = "mgmt"')
    fs2 = findings(text2)
    assert [f for f in fs2 if "L2 loop" in f.message and "VLAN mgmt" in f.message]
    assert not [f for f in fs2 if "L2 loop" in f.message and "VLAN web" in f.message]


def test_loop_host_with_two_uplinks_to_the_switch():
    text = TWO_CABLES.replace(
        '[[lab.cables]]\nends = ["node2:eth1", "switch"]',
        '[[lab.cables]]\nends = ["node2:eth1", "switch"]\n\n[[lab.cables]]\nends = ["node1:eth2", "switch"]',
    )
    fs = findings(text)
    loops = [f for f in fs if "L2 loop" in f.message]
    assert len(loops) == 1, messages(fs)
    assert loops[0].path == "lab.cables[2]"  # node1's second cable to the switch
    assert "VLAN web" in loops[0].message
    assert "L2 loop" in messages(errors(fs))


def test_both_hosts_in_one_lab_without_extra_cable_has_no_loop():
    assert not [f for f in findings(TWO_CABLES) if "L2 loop" in f.message]


# --- subnets and addresses ------------------------------------------------------------------


def test_overlapping_subnets():
    fs = findings(sub(r'^subnet = "10\.200\.0\.0/24"$', 'subnet = "10.100.0.0/16"'))
    f = at(fs, "vlans.db.subnet")[0]
    assert "subnet 10.100.0.0/16 of VLAN db overlaps 10.100.0.0/24 of VLAN web" in f.message


def test_overlap_found_past_a_wide_subnet():
    text = sub(r'^subnet = "192\.168\.10\.0/24"$', 'subnet = "10.0.0.0/8"')
    text = sub(r'^router = "192\.168\.10\.1"$', 'router = "10.0.0.1"', text)
    fs = findings(text)
    overlaps = [f for f in fs if "overlaps" in f.message]
    assert {f.path for f in overlaps} == {"vlans.web.subnet", "vlans.db.subnet"}


def test_duplicate_addresses():
    fs = findings(sub(r'^address = "10\.100\.0\.12/24"$', 'address = "10.100.0.11/24"'))
    (f,) = at(fs, "endpoints[1].address")
    assert "address 10.100.0.11 of endpoint web2 is also endpoint web1's" in f.message


def test_host_address_equals_router():
    fs = findings(sub(r'^addresses = \["192\.168\.10\.12/24"\]$', 'addresses = ["192.168.10.1/24"]'))
    (f,) = at(fs, "hosts.node2.management.addresses[0]")
    assert "host node2" in f.message and "router" in f.message


def test_endpoint_address_outside_subnet():
    fs = findings(sub(r'^address = "10\.200\.0\.11/24"$', 'address = "10.201.0.11/24"'))
    (f,) = at(fs, "endpoints[2].address")
    assert "endpoint db1 is outside VLAN db's subnet 10.200.0.0/24" in f.message


def test_management_address_outside_subnet():
    text = sub(r'^addresses = \["192\.168\.10\.11/24"\]$', 'addresses = ["192.168.11.11/16"]')
    fs = findings(text)
    (f,) = at(fs, "hosts.node1.management.addresses[0]")
    assert "host node1 is outside its VLAN mgmt's subnet" in f.message


def test_gateway_off_subnet():
    fs = findings(sub(r'^gateway = "192\.168\.10\.1"$', 'gateway = "192.168.99.1"'))
    (f,) = at(fs, "hosts.node1.management.gateway")
    assert "192.168.99.1" in f.message


# --- MTU -------------------------------------------------------------------------------------


def test_vlan_mtu_too_big_for_uplink():
    text = sub(r"^id = 100$", "id = 100\nmtu = 9000")
    fs = findings(text)
    for h in ("node1", "node2"):
        (f,) = at(fs, f"hosts.{h}.uplinks[0].mtu")
        assert f"VLAN web (mtu 9000) does not fit nic:{h}/eth1 (mtu 1500)" in f.message
        assert "802.1Q-tagged frames are 9022 bytes" in f.message


def test_jumbo_uplink_fits():
    text = sub(r"^id = 100$", "id = 100\nmtu = 9000")
    text = re.sub(r'^nic = "eth1"$', 'nic = "eth1"\nmtu = 9000', text, flags=re.M)
    assert not [f for f in findings(text) if "mtu" in f.path]


def test_docker_mtu_above_vlan():
    text = SEED_TEXT.replace('bridge = "br-web"\nvlan = "web"\nnetwork = "web"', 'bridge = "br-web"\nvlan = "web"\nnetwork = "web"\nmtu = 9000', 1)
    (f,) = at(findings(text), "hosts.node1.docker[0].mtu")
    assert "above VLAN web's mtu 1500" in f.message


def test_cable_mtu_mismatch():
    text = sub(r'^nic = "eth1"$', 'nic = "eth1"\nmtu = 9000')
    text = text.replace(
        '[lab]\nswitch = "switch"\n\n[[lab.cables]]\nends = ["node1:eth1", "switch"]\n\n[[lab.cables]]\nends = ["node2:eth1", "switch"]',
        '[lab]\nswitch = "switch"\n\n[[lab.cables]]\nends = ["node1:eth1", "node2:eth1"]',
    )
    fs = findings(text)
    (f,) = at(fs, "lab.cables[0]")
    assert "mtu 9000 to mtu 1500" in f.message


# --- management --------------------------------------------------------------------------------


def test_management_vlan_not_on_trunk():
    text = SEED_TEXT.replace('[hosts.node1.management]\nport = "mgmt0"', '[hosts.node1.management]\nvlan = "db"\nport = "mgmt0"')
    text = text.replace('vlans = ["mgmt", "web", "db"]', 'vlans = ["mgmt", "web"]', 1)
    text = text.replace('[[hosts.node1.docker]]\nbridge = "br-db"\nvlan = "db"\nnetwork = "db"\n', "")
    text = text.replace('[[endpoints]]\nname = "db1"\nhost = "node1"\nvlan = "db"\naddress = "10.200.0.11/24"\n', "")
    fs = findings(text)
    (f,) = at(fs, "hosts.node1.management.vlan")
    assert "management address of node1 is on VLAN db, which its uplink eth1 does not carry" in f.message
    assert "cut off" in f.message


def test_untagged_management_needs_native_vlan():
    text = sub(r'^native_vlan = "mgmt"$', "")
    fs = findings(text)
    (f,) = at(fs, "hosts.node1.management.vlan")
    assert "native_vlan" in f.message


def test_from_nic_must_be_an_uplink():
    text = SEED_TEXT.replace('[hosts.node1.management]\nport = "mgmt0"', '[hosts.node1.management]\nfrom_nic = "eth7"\nport = "mgmt0"')
    fs = findings(text)
    (f,) = at(fs, "hosts.node1.management.from_nic")
    assert "'eth7' is not an uplink of node1" in f.message


# --- references ----------------------------------------------------------------------------------


def test_endpoint_on_unknown_host():
    fs = findings(sub(r'^host = "node2"$', 'host = "node3"'))
    (f,) = at(fs, "endpoints[1].host")
    assert "no host named 'node3'" in f.message
    assert "node1" in f.hint and "node2" in f.hint


def test_endpoint_without_docker_bridge():
    text = SEED_TEXT.replace('[[hosts.node2.docker]]\nbridge = "br-db"\nvlan = "db"\nnetwork = "db"\n', "")
    fs = findings(text)
    (f,) = at(fs, "endpoints[3].attach")
    assert "host node2 has no Docker bridge on VLAN db for endpoint db2" in f.message


def test_duplicate_endpoint_names_and_host_names():
    text = sub(r'^name = "web2"$', 'name = "web1"')
    text = sub(r'^name = "db2"$', 'name = "node1"', text)
    fs = findings(text)
    assert "also endpoints[0]'s" in at(fs, "endpoints[1].name")[0].message
    assert "also a host's name" in at(fs, "endpoints[3].name")[0].message


def test_router_vlan_without_subnet():
    text = sub(r'^vlans = \["mgmt", "web"\]$', 'vlans = ["mgmt", "web", "db"]')
    (f,) = at(findings(text), "router.vlans[2]")
    assert "VLAN db" in f.message


def test_lab_cable_to_unknown_node_and_nic():
    text = sub(r'^ends = \["node2:eth1", "switch"\]$', 'ends = ["node3:eth1", "switch"]')
    fs = findings(text)
    assert "'node3' is neither a host nor the lab switch" in at(fs, "lab.cables[1].ends")[0].message
    text = sub(r'^ends = \["node2:eth1", "switch"\]$', 'ends = ["node2:eth9", "switch"]')
    assert "not an uplink NIC of host node2" in at(findings(text), "lab.cables[1].ends")[0].message


def test_check_raises_with_every_finding():
    text = sub(r"^id = 200$", "id = 100")
    text = sub(r'^host = "node2"$', 'host = "node3"', text)
    with pytest.raises(ConfigError) as exc:
        check(parse(text, "t.toml"))
    paths = {f.path for f in exc.value.findings}
    assert {"vlans.db.id", "endpoints[1].host"} <= paths


def test_empty_bridge_name_is_refused():
    text = sub(r'^bridge = \{ name = "br-ovs", datapath = "system" \}$', 'bridge = ""')
    with pytest.raises(ConfigError) as exc:
        findings(text)
    assert any(f.path.endswith(".bridge") and "empty" in f.message for f in exc.value.findings)
