"""Dual-stack VLANs, pure parts: the file, the address plan, the plans of each kind, verify's matrices and frames."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ovsnet.backends.docker import container_from_inspect, network_from_inspect
from ovsnet.backends.files import write_nameservers
from ovsnet.backends.netlink.ops import NlAddAddress, NlReplaceRoute
from ovsnet.current import Address, DockerNetwork, Route
from ovsnet.errors import ConfigError
from ovsnet.importer import run
from ovsnet.kinds.docker_network import BridgeIpv6, DockerCreateNetwork, DockerRemoveNetwork
from ovsnet.kinds.uplink import GatewayAnswers, SavedUplink
from ovsnet.live import snapshot
from ovsnet.plan import planner
from ovsnet.plan.model import Action, Phase
from ovsnet.plan.offline import from_nothing
from ovsnet.render import tree
from ovsnet.render.verify import render_matrix, to_json
from ovsnet.topology import addressing, check, graph, load_checked
from ovsnet.topology.graph import Expect
from ovsnet.topology.load import parse
from ovsnet.verify import containers
from ovsnet.verify.frames import CapturePoint, MacOwner, Subnets, analyze, parse_frame
from ovsnet.verify.host import verify_host
from ovsnet.verify.matrix import probe_plans
from ovsnet.verify.probing import probe_records
from ovsnet.verify.report import build_report, dual
from tests.support.snapshots import applied
from tests.support.topologies import growing

ROOT = Path(__file__).resolve().parents[2]
DUALSTACK = ROOT / "topologies" / "dualstack.toml"
CAMPUS = ROOT / "topologies" / "campus.toml"


@pytest.fixture(scope="module")
def ds():
    return load_checked(DUALSTACK)


def errors_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as err:
        check(parse(text, "t.toml"))
    return [(f.path, f.message) for f in err.value.findings if f.severity == "error"]


# --- the file ---------------------------------------------------------------------------------------


def test_a_dual_stack_vlan_has_a_stack_per_family(ds):
    web = ds.topology.vlans["web"]
    assert [(str(s.subnet), str(s.router), s.host_slice, s.suffix, s.version) for s in web.stacks] == [
        ("10.100.0.0/24", "10.100.0.1", 26, "", 4), ("fd00:100::/64", "fd00:100::1", 80, "6", 6)]
    assert str(web.stack(6).subnet) == "fd00:100::/64" and web.stack(4).router == ipaddress.ip_address("10.100.0.1")
    db = ds.topology.vlans["db"]
    assert db.routers == () and len(db.subnets) == 2
    m = ds.topology.hosts["node1"].management
    assert [str(g) for g in m.gateways] == ["192.168.10.1", "fd00:10::1"]
    assert [str(d) for d in m.dns] == ["192.168.10.1", "fd00:10::1"]
    ep = ds.topology.endpoints[0]
    assert [str(a) for a in ep.addresses] == ["10.100.0.11/24", "fd00:100::11/64"] and str(ep.address_of(6)) == "fd00:100::11/64"


def test_an_ipv6_only_vlan_may_write_its_subnet_as_subnet():
    text = DUALSTACK.read_text().replace('subnet = "10.200.0.0/24"\nhost_slice = 26\nsubnet6 = "fd00:200::/64"', 'subnet = "fd00:200::/64"', 1)
    text = text.replace('address = "10.200.0.11/24"\naddress6 = "fd00:200::11/64"', 'address = "fd00:200::11/64"')
    text = text.replace('address = "10.200.0.12/24"\naddress6 = "fd00:200::12/64"', 'address = "fd00:200::12/64"')
    c = check(parse(text, "t.toml"))
    db = c.topology.vlans["db"]
    assert db.stack(4) is None and str(db.stack(6).subnet) == "fd00:200::/64" and db.stack(6).suffix == ""
    # Its Docker network: no IPv4 pool of the topology's (Docker picks one), the IPv6 one with this host's slice.
    (net,) = [n for n in planner.desire(c.topology, c.topology.hosts["node1"]).of("docker-network") if n.name == "db"]
    assert (net.subnet, net.subnet6) == (None, "fd00:200::/64")
    assert net.ip_range6 == str(addressing.plan(c.topology)[0][("node1", "db")].network)


def test_mixing_families_in_one_key_is_an_error_with_its_key():
    base = DUALSTACK.read_text()
    errs = errors_of(base.replace('router = "10.100.0.1"', 'router = "fd00:100::2"', 1))
    assert errs == [("vlans.web.router", "router fd00:100::2 is outside VLAN web's subnet 10.100.0.0/24")]
    errs = errors_of(base.replace('gateway = "192.168.10.1"\ngateway6 = "fd00:10::1"', 'gateway = "fd00:10::1"\ngateway6 = "fd00:10::1"', 1))
    assert errs == [("hosts.node1.management.gateway6", "gateway fd00:10::1 is IPv6 already: a host has one default route per family")]
    errs = errors_of(base.replace('address = "10.100.0.11/24"\naddress6', 'address = "fd00:100::21/64"\naddress6', 1))
    assert errs == [("endpoints[0].address6", "address fd00:100::21/64 is IPv6 already: an endpoint has one address per family")]


def test_a_gateway6_may_be_the_routers_link_local_address(ds):
    text = DUALSTACK.read_text().replace('gateway6 = "fd00:10::1"', 'gateway6 = "fe80::1"', 1)
    c = check(parse(text, "t.toml"))
    assert str(c.topology.hosts["node1"].management.gateway6) == "fe80::1"


def test_an_ipv6_endpoint_on_an_ipv4_only_vlan_says_the_family_is_missing():
    text = (ROOT / "topologies" / "seed.toml").read_text().replace('address = "10.100.0.11/24"', 'address = "10.100.0.11/24"\naddress6 = "fd00:100::11/64"', 1)
    assert errors_of(text) == [("endpoints[0].address6", "address fd00:100::11/64 of endpoint web1 is outside VLAN web's subnet 10.100.0.0/24: VLAN web has no IPv6 subnet")]


# --- the address plan in both families -----------------------------------------------------------


def test_slices_of_both_families_are_inside_distinct_and_clear_of_reserved(ds):
    topo = ds.topology
    held = addressing.reserved_addresses(topo)
    assert {ipaddress.ip_address(a) for a in ("fd00:100::1", "fd00:10::11", "fd00:100::11")} <= set(held)
    for version in (4, 6):
        for vname in ("web", "db"):
            nets = [addressing.family_slice(topo, h, vname, version).network for h in ("node1", "node2")]
            stack = topo.vlans[vname].stack(version)
            assert all(n.subnet_of(stack.subnet) for n in nets) and not nets[0].overlaps(nets[1])
            assert all(a not in n for a in held for n in nets if a.version == version)
    assert addressing.family_slice(topo, "node1", "web", 6).network.prefixlen == 80
    assert addressing.plan6(topo)[("node1", "web")].suffix == "6"


def dual_hosts(names: list[str]) -> str:
    return growing(names, ["[vlans.web]", "id = 100", 'subnet = "10.100.0.0/24"', 'router = "10.100.0.1"',
                           'subnet6 = "fd00:100::/64"', 'router6 = "fd00:100::1"', "host_slice6 = 68",
                           "[vlans.db]", "id = 200", 'subnet6 = "fd00:200::/120"'])


host_names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(host_names, min_size=1, max_size=12, unique=True), new=host_names)
def test_appending_a_host_never_moves_existing_slices_in_either_family(names, new):
    if new in names:
        return
    topo = parse(dual_hosts(names))
    before = ({k: s for k, s in addressing.plan(topo)[0].items()}, dict(addressing.plan6(topo)))
    assert addressing.plan(topo)[1] == []
    grown = parse(dual_hosts(names + [new]))
    after = (addressing.plan(grown)[0], addressing.plan6(grown))
    assert addressing.plan(grown)[1] == []
    for old, new_ in zip(before, after):
        for key, s in old.items():
            assert new_[key] == s
    # IPv4: web; IPv6: web's subnet6 (16 slots of /68) and db's only subnet, IPv6 /120 with 16 /124 slots.
    assert (new, "web") in after[0] and {(new, "web"), (new, "db")} <= set(after[1]) and (new, "db") not in after[0]
    for sl in after:
        for vname in ("web", "db"):
            nets = [s.network for s in sl.values() if s.vlan == vname]
            assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
            assert all(ipaddress.ip_address("fd00:100::1") not in n for n in nets)


def test_a_pinned_ipv6_range_of_millions_of_slots_is_planned_around_at_once():
    text = dual_hosts(["a", "b", "c"]).replace('host_slice6 = 68', 'host_slice6 = 120').replace(
        '[[hosts.a.docker]]\nbridge = "br-web"\nvlan = "web"\nnetwork = "web"',
        '[[hosts.a.docker]]\nbridge = "br-web"\nvlan = "web"\nnetwork = "web"\nip_range6 = "fd00:100:0:0:8000::/65"')
    topo = parse(text)
    six = addressing.plan6(topo)
    assert addressing.plan(topo)[1] == []
    assert str(six[("a", "web")].network) == "fd00:100:0:0:8000::/65" and six[("a", "web")].explicit
    assert all(not s.network.overlaps(six[("a", "web")].network) for k, s in six.items() if k[0] != "a")


# --- Docker networks with IPv6 --------------------------------------------------------------------


def test_a_fresh_host_creates_ipv6_networks_then_turns_ipv6_off_on_their_bridges(ds):
    d = planner.desire(ds.topology, ds.topology.hosts["node1"])
    p = planner.diff(d, replace(from_nothing(d), docker={}))
    web = next(c for c in p.changes if c.resource == "docker-network:web")
    assert web.after == ("subnet 10.100.0.0/24 gateway 10.100.0.1 ip_range 10.100.0.64/26 subnet6 fd00:100::/64 "
                         "gateway6 fd00:100::1 ip_range6 fd00:100:0:0:ff4d::/80 on br-web")
    (op,) = web.ops
    assert isinstance(op, DockerCreateNetwork)
    assert (op.spec.subnet6, op.spec.gateway6, op.spec.ip_range6) == ("fd00:100::/64", "fd00:100::1", "fd00:100:0:0:ff4d::/80")
    off = [c for c in p.changes if c.phase is Phase.CLEANUP]
    assert [(c.resource, c.before, c.after) for c in off] == [("link:br-web", "IPv6 on", "IPv6 off"), ("link:br-db", "IPv6 on", "IPv6 off")]
    assert off[0].ops == (BridgeIpv6("br-web", on=False),) and off[0].undo == (BridgeIpv6("br-web", on=True),)
    assert p.changes.index(off[0]) > p.changes.index(web)  # after Docker put its addresses there
    assert off[0].ops[0].backend == "sysctl"


def test_an_applied_dual_stack_host_is_in_sync_and_an_ipv6_address_on_the_bridge_is_drift(ds):
    d = planner.desire(ds.topology, ds.topology.hosts["node1"])
    cur = applied(ds.topology, "node1")
    assert planner.diff(d, cur).changes == ()
    back = replace(cur, linux=replace(cur.linux, addresses=cur.linux.addresses + (Address("br-web", "fd00:100::1/64"),)))
    (c,) = planner.diff(d, back).changes
    assert (c.resource, c.phase, c.after) == ("link:br-web", Phase.CLEANUP, "IPv6 off") and "fd00:100::1/64" in c.reason


def test_a_network_without_its_ipv6_pool_is_recreated_and_the_undo_puts_it_back(ds):
    d = planner.desire(ds.topology, ds.topology.hosts["node1"])
    cur = applied(ds.topology, "node1")
    old = replace(cur.docker["web"], subnet6=None, gateway6=None, ip_range6=None)
    p = planner.diff(d, replace(cur, docker={**cur.docker, "web": old}))
    web = next(c for c in p.changes if c.resource == "docker-network:web")
    assert web.action is Action.MODIFY and web.before.endswith("ip_range 10.100.0.64/26 on br-web") and "subnet6 fd00:100::/64" in web.after
    assert isinstance(web.ops[0], DockerRemoveNetwork) and web.undo[1].spec.subnet6 is None
    assert any(c.resource == "link:br-web" and c.phase is Phase.CLEANUP for c in p.changes)
    moved = replace(cur.docker["web"], ip_range6="fd00:100:0:0:1::/80")
    p = planner.diff(d, replace(cur, docker={**cur.docker, "web": moved}))
    web = next(c for c in p.changes if c.resource == "docker-network:web")
    assert "ip_range6 fd00:100:0:0:1::/80" in web.before and "ip_range6 fd00:100:0:0:ff4d::/80" in web.after


def test_docker_answers_are_read_by_family():
    info = {"Name": "web", "Id": "x", "Driver": "bridge", "Options": {"com.docker.network.bridge.name": "br-web"},
            "IPAM": {"Config": [{"Subnet": "fd00:100::/64", "IPRange": "fd00:100::ff4d:0:0:0/80", "Gateway": "fd00:100::1"},
                                {"Subnet": "10.100.0.0/24", "IPRange": "10.100.0.64/26", "Gateway": "10.100.0.1"}]}}
    n = network_from_inspect(info)
    assert (n.subnet, n.ip_range, n.subnet6, n.gateway6, n.ip_range6) == (
        "10.100.0.0/24", "10.100.0.64/26", "fd00:100::/64", "fd00:100::1", "fd00:100::ff4d:0:0:0/80")
    # IPv6 only in the topology: Docker's own IPv4 pool reads as none asked.
    auto = network_from_inspect({**info, "Labels": {"org.ovsnet.auto-subnet": "true"},
                                 "IPAM": {"Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}, info["IPAM"]["Config"][0]]}})
    assert (auto.subnet, auto.gateway, auto.ip_range, auto.subnet6) == (None, None, None, "fd00:100::/64")
    only6 = network_from_inspect({**info, "IPAM": {"Config": [info["IPAM"]["Config"][0]]}})
    assert (only6.subnet, only6.subnet6) == (None, "fd00:100::/64")
    c = container_from_inspect({"Id": "c", "Name": "/p", "State": {"Running": True, "Pid": 5}, "Config": {},
                                "NetworkSettings": {"Networks": {"web": {"IPAddress": "10.100.0.64", "IPPrefixLen": 24,
                                                                        "GlobalIPv6Address": "fd00:100::ff4d:0:0:0", "GlobalIPv6PrefixLen": 64}}}})
    assert c.networks["web"].interface6 == "fd00:100::ff4d:0:0:0/64"


# --- the management move in both families -------------------------------------------------------------


def test_the_move_takes_both_families_and_checks_each_gateway(ds):
    d = planner.desire(ds.topology, ds.topology.hosts["node1"])
    p = planner.diff(d, from_nothing(d))
    by_res = {c.resource: c for c in p.changes}
    assert by_res["address:mgmt0/fd00:10::11/64"].ops == (NlAddAddress("mgmt0", "fd00:10::11/64", None, nodad=True),)
    assert by_res["address:mgmt0/192.168.10.11/24"].ops == (NlAddAddress("mgmt0", "192.168.10.11/24", None),)
    assert by_res["route6:default"].ops == (NlReplaceRoute("default", "mgmt0", "fd00:10::1", 0),)
    assert by_res["route6:default"].undo == (NlReplaceRoute("default", "eth1", "fd00:10::1", 0, "boot"),)
    assert by_res["route:default"].after == "via 192.168.10.1 dev mgmt0"
    assert by_res["address:eth1/fd00:10::11/64"].undo == (NlAddAddress("eth1", "fd00:10::11/64", nodad=True),)
    checks = [c for c in p.checks if isinstance(c, GatewayAnswers)]
    assert [(c.iface, c.gateway, c.describe()) for c in checks] == [
        ("mgmt0", "192.168.10.1", "the gateway check (192.168.10.1 on mgmt0, ARP)"),
        ("mgmt0", "fd00:10::1", "the gateway check (fd00:10::1 on mgmt0, neighbour discovery)")]
    saved = p.keep["uplink"]
    assert saved.addresses == ("192.168.10.11/24", "fd00:10::11/64")
    assert {(r.dst, r.gateway) for r in saved.routes} == {("default", "192.168.10.1"), ("default", "fd00:10::1")}


def test_down_gives_both_families_back_and_checks_each_gateway(ds):
    d = planner.desire(ds.topology, ds.topology.hosts["node1"])
    cur = applied(ds.topology, "node1")
    saved = SavedUplink("eth1", ("192.168.10.11/24", "fd00:10::11/64"),
                        (Route("default", "eth1", "192.168.10.1", 0, "boot"), Route("default", "eth1", "fd00:10::1", 1024, "ra")))
    p = planner.teardown(d, cur, {"uplink": saved})
    by_res = {c.resource: c for c in p.changes}
    assert by_res["address:eth1/fd00:10::11/64"].ops == (NlAddAddress("eth1", "fd00:10::11/64", None, nodad=True),)
    assert by_res["route6:default"].ops == (NlReplaceRoute("default", "eth1", "fd00:10::1", 1024, "ra"),)
    assert by_res["address:mgmt0/fd00:10::11/64"].action is Action.DELETE
    assert [(c.gateway, c.after) for c in p.checks if isinstance(c, GatewayAnswers)] == [
        ("192.168.10.1", Phase.OVSDB), ("fd00:10::1", Phase.OVSDB)]


def test_dns_servers_of_both_families_are_written_and_put_back(ds, tmp_path):
    d = planner.desire(ds.topology, ds.topology.hosts["node1"])
    (want,) = d.of("dns")
    assert want.servers == ("192.168.10.1", "fd00:10::1")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search example.test\nnameserver 9.9.9.9\n")
    write_nameservers(str(resolv), want.servers)
    assert resolv.read_text() == "search example.test\nnameserver 192.168.10.1\nnameserver fd00:10::1\n"
    write_nameservers(str(resolv), ("9.9.9.9",))
    assert resolv.read_text() == "search example.test\nnameserver 9.9.9.9\n"


# --- verify in both families ----------------------------------------------------------------------------


def test_routing_is_per_family(ds):
    c = load_checked(CAMPUS)
    g = c.graph
    e4, e6 = graph.expected(c.topology, g, family=4), graph.expected(c.topology, g, family=6)
    # campus: the router has router6 on mgmt and web only, so app is routed in IPv4 alone.
    assert e4[("web-a", "app-a")] is Expect.ROUTED and e6[("web-a", "app-a")] is Expect.BLOCKED
    assert e4[("web-a", "web1")] is e6[("web-a", "web1")] is Expect.ROUTED
    assert ("backup-db", "db-a") in e4 and not any("backup-db" in pair for pair in e6)  # backup is IPv4 only
    assert graph.families(c.topology) == (4, 6) and graph.families(load_checked(ROOT / "topologies" / "seed.toml").topology) == (4,)


def fake_probe(spec, v4: str, v6: str | None) -> containers.Probe:
    return containers.Probe(spec, "c" * 64, f"p-{spec.name}", v4, "02:42:0a:64:00:40", 77, "local/busybox:1", v6)


def dual_probes(ds, v6_web1: str = "fd00:100::ff4d:0:0:0/64") -> list[containers.Probe]:
    out = []
    for s in containers.specs(ds.topology):
        v4 = str(addressing.family_slice(ds.topology, s.host, s.vlan, 4).network[0]) + "/24"
        v6 = str(addressing.family_slice(ds.topology, s.host, s.vlan, 6).network[0]) + "/64"
        out.append(fake_probe(s, v4, v6_web1 if s.name == "web@node1" else v6))
    return out


def report_of(ds, probes, seen=lambda pair, exp, family: exp is not Expect.BLOCKED):
    plans = probe_plans(ds, all_pairs=True, probes=probes)
    return dual([build_report("dualstack", p.stations, p.expected, {k: seen(k, e, p.family) for k, e in p.expected.items()},
                              probes=probe_records(ds.topology, probes, p.family), family=p.family) for p in plans])


def test_a_dual_stack_report_has_a_grid_per_family_and_says_both_counts(ds):
    probes = dual_probes(ds)
    assert all(p.spec.ipv6 and p.in_slice for p in probes)
    rep = report_of(ds, probes)
    assert rep.ok and rep.family == 4 and rep.ipv6.family == 6 and rep.probed == rep.ipv6.probed == 90
    text = render_matrix(rep)
    lines = text.splitlines()
    assert lines[1] == "IPv4:" and "IPv6:" in lines and lines[-1] == "OK: 180 pairs probed (90 IPv4, 90 IPv6), 0 mismatches, 0 capture findings"
    assert "web@node1 10.100.0.64/24 fd00:100::ff4d:0:0:0/64" in text
    body = to_json(rep)
    assert body["family"] == 4 and body["ipv6"]["probed"] == 90 and body["ipv6"]["stations"][0]["address"] == "fd00:100::11/64"
    assert json.loads(json.dumps(body)) == body


def test_an_ipv6_mismatch_or_a_probe_outside_its_ipv6_slice_fails_the_report(ds):
    node2_slice = addressing.family_slice(ds.topology, "node2", "web", 6).network
    probes = dual_probes(ds, v6_web1=f"{node2_slice[5]}/64")
    assert probes[0].in_slice_of(4) and not probes[0].in_slice_of(6) and not probes[0].in_slice
    rep = report_of(ds, probes, seen=lambda pair, exp, family: exp is not Expect.BLOCKED and (family, pair) != (6, ("web1", "web2")))
    assert not rep.ok and rep.mismatches == () and rep.problems == ()
    assert [(p.src, p.dst) for p in rep.ipv6.mismatches] == [("web1", "web2")]
    (problem,) = rep.ipv6.problems
    assert "IPv6 slice" in problem and str(node2_slice) not in problem and "ip_range6" in problem
    text = render_matrix(rep)
    assert "MISMATCH (IPv6) web1 -> web2 (fd00:100::12): expected same-vlan" in text and f"PROBLEM {problem}" in text
    body = to_json(rep)
    assert body["mismatches"] == [{"src": "web1", "dst": "web2", "expect": "same-vlan", "reached": False, "family": 6}]
    assert body["problems"] == [problem]


def test_verify_on_a_host_pings_its_row_in_both_families(ds):
    asked = {}

    def pinger(jobs, concurrency):
        asked.update(jobs)
        return {k: not str(v[1]).startswith(("10.200", "fd00:200")) for k, v in jobs.items()}

    rep = verify_host(ds, addresses={"192.168.10.11", "fd00:10::11"}, pinger=pinger, probes=False)
    assert rep.ok, render_matrix(rep)
    assert {k[0] for k in asked} == {4, 6} and len(asked) == 2 * 5
    assert {(p.src, p.dst) for p in rep.ipv6.pairs} == {("node1", n) for n in ("web1", "web2", "db1", "db2", "node2")}
    assert asked[(6, ("node1", "web1"))] == (None, "fd00:100::11")


def test_a_capture_needs_icmpv6_echoes_where_ipv6_had_to_cross():
    req = parse_frame("08:00:00.000000 02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 802.1Q (0x8100), length 122: "
                      "vlan 100, p 0, ethertype IPv6 (0x86dd), fd00:100::11 > fd00:100::12: ICMP6, echo request, id 7, seq 1, length 64")
    ns = parse_frame("08:00:00.000000 02:00:00:00:00:01 > 33:33:ff:00:00:12, ethertype 802.1Q (0x8100), length 90: "
                     "vlan 100, p 0, ethertype IPv6 (0x86dd), fd00:100::11 > ff02::1:ff00:12: ICMP6, neighbor solicitation, who has fd00:100::12, length 32")
    assert req.echo6 and req.tags == (100,) and req.sender_ip == "fd00:100::11"
    assert not ns.echo6 and ns.ethertype == "IPv6"
    point = CapturePoint("switch", "sw", "h1-eth1", "trunk", frozenset({10, 100}), native=10, near=frozenset({"node1"}),
                         required=frozenset(), required6=frozenset({100}))
    macs = {"02:00:00:00:00:01": MacOwner("web1", 100, "node1")}
    subnets = Subnets([("fd00:100::/64", 100)])
    _, found = analyze(point, [ns], macs, subnets)
    assert [(f.kind, f.vlan) for f in found] == [("missing-ipv6", 100)] and "no ICMPv6 echo of VLAN 100 from node1" in found[0].detail
    _, found = analyze(point, [ns, req], macs, subnets)
    assert found == []
    # An IPv6 frame of the right VLAN but the wrong tag is a finding like any other.
    wrong = replace(req, tags=(200,))
    _, found = analyze(point, [wrong, req], macs, subnets)
    assert [f.kind for f in found] == ["wrong-tag"]


# --- import and the pictures -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [DUALSTACK, CAMPUS], ids=lambda p: p.stem)
def test_import_writes_the_ipv6_parts_back(path):
    c = load_checked(path)
    for host in c.topology.hosts:
        r = run.settle(host, applied(c.topology, host))
        t = r.checked.topology
        mine, theirs = c.topology.hosts[host], t.hosts[host]
        assert theirs.management.gateway6 == mine.management.gateway6 and theirs.management.addresses == mine.management.addresses
        for d in mine.docker:
            v, w = c.topology.vlans[d.vlan], next(x for x in t.vlans.values() if x.id == c.topology.vlans[d.vlan].id)
            assert (w.subnet6, w.router6) == (v.subnet6, v.router6)
            assert addressing.family_slice(t, host, w.name, 6) == addressing.family_slice(c.topology, host, d.vlan, 6) or v.subnet6 is None
        if mine.management.gateway6:
            assert f'gateway6 = "{mine.management.gateway6}"' in r.text


def test_a_flat_dual_stack_host_imports_back_with_both_families():
    text = (ROOT / "topologies" / "flat.toml").read_text()
    text = text.replace('router = "192.168.1.1"', 'router = "192.168.1.1"\nsubnet6 = "fd00:1::/64"\nrouter6 = "fd00:1::1"', 1)
    text = text.replace('addresses = ["192.168.1.11/24"]\ngateway = "192.168.1.1"', 'addresses = ["192.168.1.11/24", "fd00:1::11/64"]\ngateway = "192.168.1.1"\ngateway6 = "fd00:1::1"', 1)
    c = check(parse(text, "flat.toml"))
    assert c.topology.hosts["node1"].management.gateway6 is not None
    r = run.settle("node1", applied(c.topology, "node1"))
    t = r.checked.topology
    m = t.hosts["node1"].management
    assert [str(a) for a in m.addresses] == ["192.168.1.11/24", "fd00:1::11/64"] and str(m.gateway6) == "fd00:1::1"
    (v,) = t.vlans.values()
    assert (str(v.subnet6), str(v.router6)) == ("fd00:1::/64", "fd00:1::1")
    assert 'router6 = "fd00:1::1"  # guessed: the host\'s IPv6 default gateway' in r.text
    p = planner.diff(planner.desire(t, t.hosts["node1"]), applied(c.topology, "node1"))
    assert p.changes == ()


def test_pictures_show_both_families(ds):
    static = tree.to_tree(ds.graph)
    assert "br-web (Linux bridge, Docker network web, 10.100.0.0/24 + fd00:100::/64)" in static
    assert "mgmt (router leg, 192.168.10.1/24, fd00:10::1/64)" in static
    assert "web1 (endpoint, 10.100.0.11/24, fd00:100::11/64)" in static
    live = tree.to_tree(snapshot.build("node1", applied(ds.topology, "node1"), "dualstack"))
    assert "192.168.10.11/24, fd00:10::11/64, default via 192.168.10.1, default via fd00:10::1" in live
    assert "subnet6 fd00:100::/64, gateway6 fd00:100::1, ip_range6 fd00:100:0:0:ff4d::/80" in live
    # An IPv4-only network is drawn as before.
    seed = load_checked(ROOT / "topologies" / "seed.toml")
    assert "br-web (Linux bridge, Docker network web)\n" in tree.to_tree(seed.graph) + "\n"


def test_a_docker_network_on_a_v4_only_vlan_is_unchanged(ds):
    seed = load_checked(ROOT / "topologies" / "seed.toml")
    (web, _db) = planner.desire(seed.topology, seed.topology.hosts["node1"]).of("docker-network")
    assert (web.subnet6, web.gateway6, web.ip_range6) == (None, None, None)
    d = planner.desire(seed.topology, seed.topology.hosts["node1"])
    p = planner.diff(d, replace(from_nothing(d), docker={}))
    assert not any(c.phase is Phase.CLEANUP for c in p.changes)
    assert DockerNetwork("web", "i", "bridge", "br-web", "10.100.0.0/24", None, None, None).subnet6 is None
