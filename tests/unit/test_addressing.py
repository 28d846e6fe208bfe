"""Per-host container address slices: distinct, inside, stable."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ovsnet.topology import addressing
from ovsnet.topology.load import parse
from tests.support.topologies import growing

ROOT = Path(__file__).resolve().parents[2]
SEED_TEXT = (ROOT / "topologies" / "seed.toml").read_text()


def sub(pattern: str, repl: str, text: str = SEED_TEXT) -> str:
    new, n = re.subn(pattern, repl, text, count=1, flags=re.M)
    assert n
    return new


def test_seed_slices_distinct_inside_and_clear_of_reserved():
    topo = parse(SEED_TEXT)
    slices, fs = addressing.plan(topo)
    assert fs == []
    assert set(slices) == {("node1", "web"), ("node2", "web"), ("node1", "db"), ("node2", "db")}
    held = addressing.reserved_addresses(topo)
    assert ipaddress.ip_address("10.100.0.1") in held
    for (host, vname), s in slices.items():
        assert (s.host, s.vlan) == (host, vname)
        subnet = topo.vlans[vname].subnet
        assert s.network.subnet_of(subnet)
        assert s.network.prefixlen == 26
        assert not s.explicit
        for addr in held:
            assert addr not in s.network, f"{addr} inside {s}"
    for vname in ("web", "db"):
        nets = [s.network for s in slices.values() if s.vlan == vname]
        assert len(nets) == 2 and not nets[0].overlaps(nets[1])


def test_default_slice_size_is_16_slots():
    topo = parse(sub(r"^host_slice = 26.*$", ""))
    slices, _ = addressing.plan(topo)
    assert slices[("node1", "web")].network.prefixlen == 28


def test_deterministic():
    a = addressing.plan(parse(SEED_TEXT))
    for _ in range(3):
        assert addressing.plan(parse(SEED_TEXT)) == a


def test_explicit_ip_range_honoured():
    text = SEED_TEXT.replace('bridge = "br-web"\nvlan = "web"\nnetwork = "web"', 'bridge = "br-web"\nvlan = "web"\nnetwork = "web"\nip_range = "10.100.0.192/26"', 1)
    slices, fs = addressing.plan(parse(text))
    assert fs == []
    s1 = slices[("node1", "web")]
    assert s1.network == ipaddress.ip_network("10.100.0.192/26") and s1.explicit
    s2 = slices[("node2", "web")]
    assert not s2.network.overlaps(s1.network)


def test_explicit_ip_ranges_colliding():
    text = SEED_TEXT.replace('bridge = "br-web"\nvlan = "web"\nnetwork = "web"', 'bridge = "br-web"\nvlan = "web"\nnetwork = "web"\nip_range = "10.100.0.128/25"', 1)
    text = text.replace('[[hosts.node2.docker]]\nbridge = "br-web"\nvlan = "web"\nnetwork = "web"', '[[hosts.node2.docker]]\nbridge = "br-web"\nvlan = "web"\nnetwork = "web"\nip_range = "10.100.0.192/26"', 1)
    slices, fs = addressing.plan(parse(text))
    (f,) = fs
    assert f.path == "hosts.node2.docker[0].ip_range"
    assert "overlaps host node1's slice 10.100.0.128/25" in f.message
    assert ("node2", "web") not in slices


def test_explicit_ip_range_containing_reserved_address():
    text = SEED_TEXT.replace('bridge = "br-web"\nvlan = "web"\nnetwork = "web"', 'bridge = "br-web"\nvlan = "web"\nnetwork = "web"\nip_range = "10.100.0.0/26"', 1)
    _, fs = addressing.plan(parse(text))
    (f,) = fs
    assert f.path == "hosts.node1.docker[0].ip_range"
    assert "10.100.0.1 (router of VLAN web)" in f.message
    assert "10.100.0.11 (endpoint web1)" in f.message


def test_explicit_ip_range_outside_subnet():
    text = SEED_TEXT.replace('bridge = "br-web"\nvlan = "web"\nnetwork = "web"', 'bridge = "br-web"\nvlan = "web"\nnetwork = "web"\nip_range = "10.101.0.0/26"', 1)
    (f,) = addressing.plan(parse(text))[1]
    assert "outside VLAN web's subnet" in f.message


def test_running_out_of_slots_is_a_finding():
    text = sub(r"^host_slice = 26.*$", "host_slice = 25")  # web: 2 slots, slot 0 holds router and endpoints
    slices, fs = addressing.plan(parse(text))
    assert len([s for s in slices.values() if s.vlan == "web"]) == 1
    (f,) = fs
    assert f.path.startswith("hosts.node") and f.path.endswith(".docker[0]")
    assert "has no free /25 slice" in f.message


def test_host_slice_shorter_than_subnet():
    text = sub(r"^host_slice = 26.*$", "host_slice = 20")
    (f,) = addressing.plan(parse(text))[1]
    assert f.path == "vlans.web.host_slice"


# --- appending a host never moves the others ------------------------------------------------


def many_hosts(names: list[str]) -> str:
    return growing(names, ["[vlans.web]", "id = 100", 'subnet = "10.100.0.0/24"', 'router = "10.100.0.1"',
                           "[vlans.db]", "id = 200", 'subnet = "10.200.0.0/22"'])


host_names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(host_names, min_size=1, max_size=12, unique=True), new=host_names)
def test_appending_a_host_never_moves_existing_slices(names, new):
    if new in names:
        return
    before, fs = addressing.plan(parse(many_hosts(names)))
    assert fs == []
    after, fs2 = addressing.plan(parse(many_hosts(names + [new])))
    assert fs2 == []
    for key, s in before.items():
        assert after[key] == s
    assert {(new, "web"), (new, "db")} <= set(after)
    for vname in ("web", "db"):
        nets = [s.network for s in after.values() if s.vlan == vname]
        assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
        assert all(ipaddress.ip_address("10.100.0.1") not in n for n in nets)
