"""The netlink backend against a real kernel, in throwaway namespaces.

What the backend did is checked with iproute2 (`ip`, `bridge`), not with
the backend's own read(), so one bug cannot hide another.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from ovsnet.backends.netlink import Netlink, NetlinkOpError
from ovsnet.backends.netlink.ops import (
    NlAddAddress,
    NlDelAddress,
    NlDeleteLink,
    NlDelRoute,
    NlReplaceRoute,
    NlSetLink,
)
from ovsnet.errors import BackendError, VerificationError
from ovsnet.kinds.linux_bridge import NlCreateBridge
from ovsnet.kinds.veth import NlCreateVeth
from ovsnet.lab import netns

pytestmark = pytest.mark.root


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def ip_json(ns: str, *args: str) -> list[dict]:
    return json.loads(run("ip", "-n", ns, "-j", *args) or "[]")


def links(ns: str) -> dict[str, dict]:
    return {link["ifname"]: link for link in ip_json(ns, "-d", "link")}


def addresses(ns: str, ifname: str) -> set[str]:
    (entry,) = ip_json(ns, "addr", "show", "dev", ifname)
    return {f"{a['local']}/{a['prefixlen']}" for a in entry["addr_info"] if a.get("scope") != "link"}


def bridge_ports(ns: str) -> dict[str, str]:
    """Port name -> bridge name, as `bridge link` sees them."""
    return {p["ifname"]: p["master"] for p in json.loads(run("bridge", "-n", ns, "-j", "link") or "[]")}


@pytest.fixture
def ns(make_ns) -> str:
    return make_ns("a")


@pytest.fixture
def pair(make_ns) -> tuple[str, str]:
    """Namespaces a and b joined by veth p0 (in a, 192.0.2.1/24) -- p1 (in b, 192.0.2.2/24), both up.

    Built with `ip` so the backend under test is not also the fixture.
    """
    a, b = make_ns("a"), make_ns("b")
    run("ip", "-n", a, "link", "add", "p0", "type", "veth", "peer", "name", "p1", "netns", b)
    run("ip", "-n", a, "addr", "add", "192.0.2.1/24", "dev", "p0")
    run("ip", "-n", b, "addr", "add", "192.0.2.2/24", "dev", "p1")
    run("ip", "-n", a, "link", "set", "p0", "up")
    run("ip", "-n", b, "link", "set", "p1", "up")
    return a, b


def test_read_fresh_namespace(ns):
    with Netlink(ns) as nl:
        state = nl.read()
    assert set(state.links) == set(links(ns)) == {"lo"}
    lo = state.links["lo"]
    assert lo.up and lo.kind == "" and lo.master is None and lo.index == links(ns)["lo"]["ifindex"]
    # 127.0.0.1 and ::1 are there for ip, but loopback addresses are not ovsnet's business.
    assert state.addresses == ()
    assert state.routes == ()


def test_missing_namespace_is_an_error_not_created(run_prefix):
    name = f"{run_prefix}nope"
    with pytest.raises(BackendError, match="no network namespace"):
        Netlink(name)
    assert not netns.exists(name)


def test_create_bridge_and_veth_then_enslave_and_raise(ns):
    with Netlink(ns) as nl:
        nl.apply([
            NlCreateBridge("br-t", mtu=9000, alias="ovsnet:t:bridge"),
            NlCreateVeth("vo-t", "vi-t", mtu=9000, alias="ovsnet:t:web"),
        ])
        seen = links(ns)
        # Created down: nothing carries traffic before the apply says so.
        assert "UP" not in seen["br-t"]["flags"] and "UP" not in seen["vo-t"]["flags"]
        assert seen["br-t"]["linkinfo"]["info_kind"] == "bridge"
        assert seen["vo-t"]["linkinfo"]["info_kind"] == seen["vi-t"]["linkinfo"]["info_kind"] == "veth"
        assert seen["br-t"]["ifalias"] == "ovsnet:t:bridge"
        assert seen["vo-t"]["ifalias"] == seen["vi-t"]["ifalias"] == "ovsnet:t:web"
        assert seen["br-t"]["mtu"] == seen["vo-t"]["mtu"] == seen["vi-t"]["mtu"] == 9000
        assert bridge_ports(ns) == {}

        nl.apply([
            NlSetLink("vo-t", master="br-t", up=True),
            NlSetLink("vi-t", up=True),
            NlSetLink("br-t", up=True),
        ])
        seen = links(ns)
        assert bridge_ports(ns) == {"vo-t": "br-t"}
        assert all("UP" in seen[n]["flags"] for n in ("br-t", "vo-t", "vi-t"))

        state = nl.read()
    br, vo, vi = (state.links[n] for n in ("br-t", "vo-t", "vi-t"))
    assert (br.kind, br.mtu, br.up, br.alias, br.owner) == ("bridge", 9000, True, "ovsnet:t:bridge", "t")
    assert (vo.kind, vo.master, vo.peer, vo.up) == ("veth", "br-t", "vi-t", True)
    assert (vi.peer, vi.master, vi.mac) == ("vo-t", None, seen["vi-t"]["address"])
    assert br.index == seen["br-t"]["ifindex"]


def test_set_link_changes_only_what_is_given_and_releases(ns):
    with Netlink(ns) as nl:
        nl.apply([
            NlCreateBridge("br-t"),
            NlCreateVeth("vo-t", "vi-t", alias="ovsnet:t:web"),
            NlSetLink("vo-t", master="br-t", up=True),
        ])
        nl.apply([NlSetLink("vo-t", mtu=1400)])
        seen = links(ns)["vo-t"]
        assert (seen["mtu"], seen["master"], seen["ifalias"]) == (1400, "br-t", "ovsnet:t:web")
        assert "UP" in seen["flags"]

        nl.apply([NlSetLink("vo-t", master="", up=False, alias="ovsnet:t:other")])
        seen = links(ns)["vo-t"]
    assert "master" not in seen and "UP" not in seen["flags"] and seen["ifalias"] == "ovsnet:t:other"
    assert bridge_ports(ns) == {}


def test_bridge_keeps_its_mtu_when_its_last_port_goes(ns):
    # A bridge created with IFLA_MTU follows its ports and drops to 1500 when
    # they leave; the backend sets the MTU after the create so that it stays.
    with Netlink(ns) as nl:
        nl.apply([
            NlCreateBridge("br-t", mtu=9000),
            NlCreateVeth("vo-t", "vi-t", mtu=9000),
            NlSetLink("vo-t", master="br-t"),
            NlDeleteLink("vo-t"),
        ])
    assert links(ns)["br-t"]["mtu"] == 9000


def test_add_and_delete_addresses(ns):
    with Netlink(ns) as nl:
        nl.apply([
            NlCreateBridge("br-t"),
            NlAddAddress("br-t", "192.0.2.10/24"),
            NlAddAddress("br-t", "2001:db8::10/64"),
        ])
        assert addresses(ns, "br-t") == {"192.0.2.10/24", "2001:db8::10/64"}
        assert nl.read().addresses_of("br-t") == ("192.0.2.10/24", "2001:db8::10/64")

        with pytest.raises(BackendError, match="cannot add address 192.0.2.10/24 to br-t.*already there"):
            nl.apply([NlAddAddress("br-t", "192.0.2.10/24")])

        nl.apply([NlDelAddress("br-t", "192.0.2.10/24"), NlDelAddress("br-t", "2001:db8::10/64")])
        assert addresses(ns, "br-t") == set()
        assert nl.read().addresses == ()
        # Gone already (a network manager flushed it): the end state asked for, not an error;
        # a rollback that finds it so has nothing left to undo.
        nl.apply([NlDelAddress("br-t", "192.0.2.10/24"), NlDelAddress("br-t", "2001:db8::10/64")])
        assert addresses(ns, "br-t") == set()


def test_replace_default_route_via_peer(pair):
    a, _ = pair
    with Netlink(a) as nl:
        nl.apply([NlReplaceRoute("default", "p0", gateway="192.0.2.2", metric=100)])
        (route,) = [r for r in ip_json(a, "route") if r["dst"] == "default"]
        assert (route["gateway"], route["dev"], route["metric"]) == ("192.0.2.2", "p0", 100)
        assert nl.read().default_routes()[0].gateway == "192.0.2.2"

        # Replace, not add: still one default route of that metric, now via .3.
        nl.apply([NlReplaceRoute("default", "p0", gateway="192.0.2.3", metric=100)])
        defaults = [r for r in ip_json(a, "route") if r["dst"] == "default"]
        assert [(r["gateway"], r["metric"]) for r in defaults] == [("192.0.2.3", 100)]
        (mine,) = nl.read().default_routes()
        assert (mine.dst, mine.ifname, mine.gateway, mine.metric, mine.proto) == (
            "default", "p0", "192.0.2.3", 100, "static")
        # The connected route is there too and read as the kernel's.
        assert any(r.dst == "192.0.2.0/24" and r.proto == "kernel" for r in nl.read().routes)

        nl.apply([NlDelRoute("default", "p0", gateway="192.0.2.3", metric=100)])
        assert [r for r in ip_json(a, "route") if r["dst"] == "default"] == []
        assert nl.read().default_routes() == ()


def test_replace_ipv6_default_and_a_prefix_route(pair):
    a, _ = pair
    run("ip", "-n", a, "addr", "add", "2001:db8::1/64", "dev", "p0", "nodad")
    with Netlink(a) as nl:
        nl.apply([
            NlReplaceRoute("default", "p0", gateway="2001:db8::2", metric=50),
            NlReplaceRoute("198.51.100.0/24", "p0", gateway="192.0.2.2"),
        ])
        state = nl.read()
    (v6,) = ip_json(a, "-6", "route", "show", "default")
    assert (v6["gateway"], v6["dev"], v6["metric"]) == ("2001:db8::2", "p0", 50)
    (v4,) = ip_json(a, "route", "show", "198.51.100.0/24")
    assert v4["gateway"] == "192.0.2.2"
    assert {(r.dst, r.gateway) for r in state.routes_via("p0")} >= {
        ("default", "2001:db8::2"), ("198.51.100.0/24", "192.0.2.2")}


def test_arp_probe_sees_the_peer_and_not_an_absent_address(pair):
    a, _ = pair
    with Netlink(a) as nl:
        assert nl.answers("p0", "192.0.2.2", timeout=2.0)
        # Again, with the entry now cached: the answer must be fresh, not the cache's.
        assert nl.answers("p0", "192.0.2.2", timeout=2.0)
        started = time.monotonic()
        assert not nl.answers("p0", "192.0.2.99", timeout=1.5)
        assert time.monotonic() - started < 2.5


def test_arp_probe_does_not_trust_a_stale_entry(pair):
    a, b = pair
    with Netlink(a) as nl:
        assert nl.answers("p0", "192.0.2.2", timeout=2.0)
        # The gateway goes away; the kernel still remembers its MAC.
        run("ip", "-n", b, "addr", "del", "192.0.2.2/24", "dev", "p1")
        assert ip_json(a, "neigh", "show", "192.0.2.2", "dev", "p0")
        assert not nl.answers("p0", "192.0.2.2", timeout=1.0)


def test_arp_probe_ipv6(pair):
    a, b = pair
    run("ip", "-n", a, "addr", "add", "2001:db8::1/64", "dev", "p0", "nodad")
    run("ip", "-n", b, "addr", "add", "2001:db8::2/64", "dev", "p1", "nodad")
    with Netlink(a) as nl:
        assert nl.answers("p0", "2001:db8::2", timeout=2.0)
        assert not nl.answers("p0", "2001:db8::99", timeout=1.0)


def test_failing_op_reports_what_was_done(ns):
    ops = [
        NlCreateBridge("br-t"),
        NlCreateVeth("vo-t", "vi-t"),
        NlCreateVeth("vo-t", "vi-t"),
        NlSetLink("br-t", up=True),
    ]
    with Netlink(ns) as nl, pytest.raises(BackendError) as caught:
        nl.apply(ops)
    err = caught.value
    assert isinstance(err, NetlinkOpError)
    assert str(err) == f"netlink: cannot create veth vo-t/vi-t in namespace {ns}: File exists"
    assert err.op is ops[2]
    assert err.done == ops[:2]
    # Nothing after the failure ran.
    assert "UP" not in links(ns)["br-t"]["flags"]


def test_failing_op_on_a_missing_link_names_it(ns):
    with Netlink(ns) as nl, pytest.raises(NetlinkOpError, match="cannot set link ghost up .*no link named ghost") as caught:
        nl.apply([NlSetLink("ghost", up=True)])
    assert caught.value.done == []


def test_failed_create_leaves_nothing_half_made(ns):
    # The alias goes in a second message; when that fails the new link must go too.
    with Netlink(ns) as nl, pytest.raises(NetlinkOpError):
        nl.apply([NlCreateBridge("br-t", mtu=10**6)])
    assert "br-t" not in links(ns)


def test_delete_link(ns):
    with Netlink(ns) as nl:
        nl.apply([NlCreateBridge("br-t"), NlCreateVeth("vo-t", "vi-t")])
        nl.apply([NlDeleteLink("vo-t"), NlDeleteLink("br-t")])
        assert set(nl.read().links) == {"lo"}
    # Deleting one end of a veth takes the other with it.
    assert set(links(ns)) == {"lo"}


def test_wait_link(ns):
    later = threading.Timer(0.3, run, ("ip", "-n", ns, "link", "add", "late0", "type", "bridge"))
    later.start()
    try:
        with Netlink(ns) as nl:
            assert nl.wait_link("late0", timeout=5.0).kind == "bridge"
            with pytest.raises(VerificationError, match="never0 did not appear"):
                nl.wait_link("never0", timeout=0.3)
    finally:
        later.join()


def test_read_veth_whose_peer_is_in_another_namespace(pair):
    a, _ = pair
    with Netlink(a) as nl:
        state = nl.read()
    p0 = state.links["p0"]
    # Its IFLA_LINK is an index in b; naming whatever has that index in a would be a lie.
    assert (p0.kind, p0.peer, p0.up) == ("veth", None, True)
    assert state.addresses_of("p0") == ("192.0.2.1/24",)
