#!/usr/bin/env python3
"""The test bed's helpers, shared by provision.sh (inside each VM), run.sh and
the QEMU harness (on the machine that runs the VMs). Python standard library
only, so it runs with the guest's /usr/bin/python3 before ovsnet is installed.

It reads the same topology file as ovsnet and builds only what stands in for
the world around the hosts: the router (a network namespace on the host whose
access ports are named rtr-<VLAN>) and the endpoints (a network namespace per
endpoint, plugged into its VLAN's Docker bridge like a container). It never
configures anything ovsnet configures, except `switch`: an OVS bridge that
stands in for ovsnet on the router's host when a scenario's subject is another
host (provision.sh's OVSNET_PROVISION=network).

  testbed.py facts FILE HOST       shell assignments: NIC, ADDRESSES, GATEWAY, ...
  testbed.py router FILE HOST      (re)make the router namespace, if HOST has one,
                                   with its DHCP server on the management VLAN
  testbed.py switch FILE HOST      without ovsnet: a plain OVS bridge (br-testbed)
                                   trunking HOST's uplink NIC, the router's legs
                                   on it as access ports (after `router`)
  testbed.py endpoints FILE HOST   (re)make HOST's endpoint namespaces
  testbed.py pings FILE HOST       ping from HOST's members to every member: JSON lines
  testbed.py matrix FILE [RESULTS...]   print the matrix of the pings' JSON lines
                                        (files, or stdin); exit 0 when every
                                        result is as expected, 1 otherwise
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

ROUTER_NS = "router"
ROUTER_PREFIX = "rtr-"
SWITCH_BRIDGE = "br-testbed"  # not the topology's bridge name: ovsnet would refuse it as not its own
# The router's DHCP server (dnsmasq) on the management VLAN: hosts .100 to .150
# of its subnet, short leases so that a test sees renewals within minutes
# (two minutes is dnsmasq's shortest). Its files, per VLAN name:
DHCP_FIRST, DHCP_LAST = 100, 150
DHCP_LEASE = os.environ.get("OVSNET_TESTBED_DHCP_LEASE", "2m")
DHCP_LEASES = "/var/lib/ovsnet-testbed/dhcp-{vlan}.leases"
DHCP_PID = "/run/ovsnet-testbed/dhcp-{vlan}.pid"
DHCP_LOG = "/var/log/ovsnet-testbed/dhcp-{vlan}.log"
PING = ["ping", "-n", "-q", "-c", "3", "-i", "0.3", "-w", "5"]


# --- the topology, as far as the test bed needs it ---------------------------------


@dataclass(frozen=True)
class Member:
    """Something that pings and is pinged: a host (its management address) or an endpoint."""

    name: str
    host: str
    vlan: str
    address: str  # without prefix
    prefix: int
    namespace: str | None  # None: the host's own namespace
    gateway: str | None
    # Its IPv6 side on a dual-stack VLAN (subnet6): address without prefix, prefix, IPv6 gateway.
    address6: str | None = None
    prefix6: int = 64
    gateway6: str | None = None

    def addr(self, family: int) -> str | None:
        return self.address if family == 4 else self.address6


class Topo:
    def __init__(self, path: str):
        with open(path, "rb") as f:
            self.data = tomllib.load(f)
        self.vlans = self.data.get("vlans", {})
        self.hosts = self.data.get("hosts", {})
        self.routed = {self.vlan_name(v) for v in self.data.get("router", {}).get("vlans", [])}

    def vlan_name(self, ref) -> str:
        """A VLAN reference (name, id or quoted id) as the VLAN's name."""
        if isinstance(ref, str) and ref in self.vlans:
            return ref
        for name, v in self.vlans.items():
            if str(v.get("id")) == str(ref):
                return name
        raise SystemExit(f"testbed: no VLAN {ref!r} in the topology")

    def host(self, name: str) -> dict:
        if name not in self.hosts:
            raise SystemExit(f"testbed: no host {name!r} in the topology; hosts: {', '.join(self.hosts)}")
        return self.hosts[name]

    @staticmethod
    def nics_of(uplink: dict) -> list[str]:
        """An uplink's NICs: its one `nic`, or a bond's `nics`."""
        return [uplink["nic"]] if "nic" in uplink else list(uplink["nics"])

    def uplink_nic(self, host: str) -> str:
        """The NIC holding the host's address before ovsnet: from_nic, or the first
        uplink's NIC (a bond's first member)."""
        h = self.host(host)
        mgmt = h.get("management", {})
        return mgmt.get("from_nic") or self.nics_of(h["uplinks"][0])[0]

    def uplink_of(self, host: str, nic: str) -> dict | None:
        return next((u for u in self.host(host).get("uplinks", []) if nic in self.nics_of(u)), None)

    def mgmt_vlan(self, host: str) -> str | None:
        h = self.host(host)
        mgmt = h.get("management", {})
        if "vlan" in mgmt:
            return self.vlan_name(mgmt["vlan"])
        u = self.uplink_of(host, self.uplink_nic(host))
        return self.vlan_name(u["native_vlan"]) if u and "native_vlan" in u else None

    def router_legs(self, host: str) -> list[tuple[str, str, str]]:
        """(interface, VLAN, router address with prefix) for each rtr-* access port of host
        (router6 with subnet6's prefix is the leg's IPv6 address: see router_legs6)."""
        legs = []
        for ap in self.host(host).get("access_ports", []):
            if not ap["interface"].startswith(ROUTER_PREFIX):
                continue
            vlan = self.vlan_name(ap["vlan"])
            v = self.vlans[vlan]
            if "router" not in v or "subnet" not in v:
                raise SystemExit(f"testbed: router leg {ap['interface']} is on VLAN {vlan}, which has no router address or subnet")
            prefix = ipaddress.ip_network(v["subnet"]).prefixlen
            legs.append((ap["interface"], vlan, f"{v['router']}/{prefix}"))
        return legs

    def router6_of(self, vlan: str) -> str | None:
        """The router's IPv6 address with prefix on a dual-stack VLAN, if it has one."""
        v = self.vlans[vlan]
        if "router6" not in v or "subnet6" not in v:
            return None
        return f"{v['router6']}/{ipaddress.ip_network(v['subnet6']).prefixlen}"

    def router_host(self) -> str | None:
        for name in self.hosts:
            if self.router_legs(name):
                return name
        return None

    def gateway_of(self, vlan: str) -> str | None:
        return self.vlans[vlan].get("router") if vlan in self.routed else None

    def gateway6_of(self, vlan: str) -> str | None:
        return self.vlans[vlan].get("router6") if vlan in self.routed else None

    def members(self) -> list[Member]:
        out = []
        for name, h in self.hosts.items():
            mgmt = h.get("management")
            vlan = self.mgmt_vlan(name)
            if not mgmt or not vlan:
                continue
            ifaces = [ipaddress.ip_interface(a) for a in mgmt["addresses"]]
            v4 = next(i for i in ifaces if i.version == 4)
            v6 = next((i for i in ifaces if i.version == 6), None)
            out.append(Member(name, name, vlan, str(v4.ip), v4.network.prefixlen, None, mgmt.get("gateway"),
                              str(v6.ip) if v6 else None, v6.network.prefixlen if v6 else 64, mgmt.get("gateway6")))
        for ep in self.data.get("endpoints", []):
            if ep.get("attach", "docker") != "docker":
                raise SystemExit(f"testbed: endpoint {ep['name']}: only attach = \"docker\" is supported here")
            vlan = self.vlan_name(ep["vlan"])
            iface = ipaddress.ip_interface(ep["address"])
            v6 = ipaddress.ip_interface(ep["address6"]) if "address6" in ep else None
            out.append(Member(ep["name"], ep["host"], vlan, str(iface.ip), iface.network.prefixlen, f"ep-{ep['name']}", self.gateway_of(vlan),
                              str(v6.ip) if v6 else None, v6.network.prefixlen if v6 else 64, self.gateway6_of(vlan) if v6 else None))
        return out

    def docker_bridge(self, host: str, vlan: str) -> str:
        for d in self.host(host).get("docker", []):
            if self.vlan_name(d["vlan"]) == vlan:
                return d["bridge"]
        raise SystemExit(f"testbed: host {host} has no Docker bridge on VLAN {vlan}")

    def expect(self, src: Member, dst: Member, family: int = 4) -> bool:
        """Same VLAN: reachable. Different VLANs: only through the router, when it joins both
        (in that family: router, or router6, on both VLANs)."""
        if src.vlan == dst.vlan:
            return True
        if family == 6:
            return src.vlan in self.routed and dst.vlan in self.routed and bool(src.gateway6) and bool(dst.gateway6)
        return src.vlan in self.routed and dst.vlan in self.routed and bool(src.gateway) and bool(dst.gateway)

    def families(self) -> tuple[int, ...]:
        """4, and 6 when any member has an IPv6 address (a dual-stack topology)."""
        return (4, 6) if any(m.address6 for m in self.members()) else (4,)


# --- building the stand-ins ------------------------------------------------------------


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"testbed: {shlex.join(argv)} failed: {p.stderr.strip()}")
    return p


def netns_exists(name: str) -> bool:
    return name in sh("ip", "netns", "list").stdout.split()


def remake_netns(name: str) -> None:
    if netns_exists(name):
        sh("ip", "netns", "del", name)
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")


def stop_dhcp(vlan: str) -> None:
    """The DHCP server of an earlier run, if any (it would outlive its namespace)."""
    try:
        pid = int(open(DHCP_PID.format(vlan=vlan)).read().strip())
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() == "dnsmasq":
                os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


def start_dhcp(topo: Topo, vlan: str, inner: str) -> None:
    """dnsmasq in the router namespace on its leg of vlan: DHCP only (no DNS), the
    router as the clients' gateway and DNS server."""
    v = topo.vlans[vlan]
    net = ipaddress.ip_network(v["subnet"])
    first, last = net.network_address + DHCP_FIRST, net.network_address + DHCP_LAST
    files = {k: f.format(vlan=vlan) for k, f in (("leases", DHCP_LEASES), ("pid", DHCP_PID), ("log", DHCP_LOG))}
    for f in files.values():
        os.makedirs(os.path.dirname(f), exist_ok=True)
    open(files["leases"], "w").close()  # a new run starts with no leases
    sh("ip", "netns", "exec", ROUTER_NS, "dnsmasq", "--conf-file=/dev/null", "--port=0", f"--interface={inner}",
       "--bind-interfaces", "--dhcp-authoritative", f"--dhcp-range={first},{last},{net.netmask},{DHCP_LEASE}",
       f"--dhcp-option=option:router,{v['router']}", f"--dhcp-option=option:dns-server,{v['router']}",
       f"--dhcp-leasefile={files['leases']}", f"--pid-file={files['pid']}", "--log-dhcp",
       f"--log-facility={files['log']}", "--user=root", "--group=root")
    print(f"testbed: DHCP on VLAN {vlan} (router:{inner}): {first}-{last}, lease {DHCP_LEASE}, leases in {files['leases']}")


def cmd_router(topo: Topo, host: str) -> None:
    legs = topo.router_legs(host)
    if not legs:
        print(f"testbed: {host} has no router legs (rtr-* access ports): no router here")
        return
    mgmt = topo.mgmt_vlan(host)
    if mgmt:
        stop_dhcp(mgmt)
    remake_netns(ROUTER_NS)
    for iface, vlan, addr in legs:
        inner = f"v{topo.vlans[vlan]['id']}"
        sh("ip", "link", "del", iface, check=False)
        sh("ip", "link", "add", iface, "type", "veth", "peer", "name", inner, "netns", ROUTER_NS)
        sh("ip", "link", "set", iface, "up")
        sh("ip", "-n", ROUTER_NS, "addr", "add", addr, "dev", inner)
        addr6 = topo.router6_of(vlan)
        if addr6:
            # nodad: usable at once, not "tentative" while the hosts' gateway checks ask for it.
            sh("ip", "-n", ROUTER_NS, "addr", "add", addr6, "dev", inner, "nodad")
        sh("ip", "-n", ROUTER_NS, "link", "set", inner, "up")
        print(f"testbed: router leg {iface} (VLAN {vlan}) -> router:{inner} {addr}" + (f", {addr6}" if addr6 else ""))
        if vlan == mgmt:
            start_dhcp(topo, vlan, inner)
    sh("ip", "netns", "exec", ROUTER_NS, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    if any(topo.router6_of(v) for _, v, _ in legs):
        sh("ip", "netns", "exec", ROUTER_NS, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")


def cmd_endpoints(topo: Topo, host: str) -> None:
    for m in topo.members():
        if m.host != host or m.namespace is None:
            continue
        bridge = topo.docker_bridge(host, m.vlan)
        remake_netns(m.namespace)
        outer = m.namespace  # ep-NAME: the "container's" veth on the host side
        sh("ip", "link", "del", outer, check=False)
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", m.namespace)
        sh("ip", "link", "set", outer, "master", bridge, "up")
        sh("ip", "-n", m.namespace, "addr", "add", f"{m.address}/{m.prefix}", "dev", "eth0")
        if m.address6:
            sh("ip", "-n", m.namespace, "addr", "add", f"{m.address6}/{m.prefix6}", "dev", "eth0", "nodad")
        sh("ip", "-n", m.namespace, "link", "set", "eth0", "up")
        if m.gateway:
            sh("ip", "-n", m.namespace, "route", "add", "default", "via", m.gateway)
        if m.gateway6:
            sh("ip", "-n", m.namespace, "-6", "route", "add", "default", "via", m.gateway6)
        print(f"testbed: endpoint {m.name} {m.address}/{m.prefix}" + (f", {m.address6}/{m.prefix6}" if m.address6 else "")
              + f" in netns {m.namespace} on {bridge} (VLAN {m.vlan})" + (f", default via {m.gateway}" if m.gateway else "")
              + (f" and {m.gateway6}" if m.gateway6 else ""))


def cmd_switch(topo: Topo, host: str) -> None:
    """What ovsnet would make for the router's host, minus the host itself: the
    uplink NIC as a trunk of the topology's VLANs (the native one untagged) and
    each router leg on its VLAN, on the kernel datapath. ovs-vsctl, not ovsnet:
    this is the network a scenario's subject host meets, not the product."""
    h = topo.host(host)
    up = h["uplinks"][0]
    ids = sorted(int(topo.vlans[topo.vlan_name(v)]["id"]) for v in up["vlans"])
    vsctl = ["ovs-vsctl", "--timeout=30", "--may-exist", "add-br", SWITCH_BRIDGE, "--", "set", "bridge", SWITCH_BRIDGE, "datapath_type=system",
             "--", "--may-exist", "add-port", SWITCH_BRIDGE, up["nic"], "--", "set", "port", up["nic"], f"trunks={','.join(map(str, ids))}"]
    if "native_vlan" in up:
        native = topo.vlans[topo.vlan_name(up["native_vlan"])]["id"]
        vsctl += [f"tag={native}", "vlan_mode=native-untagged"]
    for iface, vlan, _ in topo.router_legs(host):
        vsctl += ["--", "--may-exist", "add-port", SWITCH_BRIDGE, iface, "--", "set", "port", iface, f"tag={topo.vlans[vlan]['id']}"]
    sh(*vsctl)
    sh("ip", "link", "set", up["nic"], "up")
    legs = ", ".join(f"{i} (VLAN {v})" for i, v, _ in topo.router_legs(host))
    print(f"testbed: switch {SWITCH_BRIDGE}: {up['nic']} trunks VLANs {ids}" + (f", native {up['native_vlan']}" if "native_vlan" in up else "") + f"; {legs}")


# --- pinging -----------------------------------------------------------------------------


def _in(m: Member, argv: list[str]) -> list[str]:
    return (["ip", "netns", "exec", m.namespace] if m.namespace else []) + argv


def _ping(src: Member, dst: Member, kind: str, expect: bool, family: int = 4) -> dict:
    address = dst.addr(family)
    assert address is not None
    argv = _in(src, PING + [address])
    added = False
    host_route = f"{address}/{32 if family == 4 else 128}"
    if kind == "l2":
        # Try to reach dst as if it were on src's own segment: an on-link route
        # makes src ARP (IPv6: solicit) for it on src's VLAN. Only a VLAN leak could answer.
        p = sh(*_in(src, ["ip", "route", "add", host_route, "dev", "eth0"]), check=False)
        added = p.returncode == 0
    t = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True)
    took = time.monotonic() - t
    if added:
        sh(*_in(src, ["ip", "route", "del", host_route, "dev", "eth0"]), check=False)
    return {"kind": kind, "family": family, "src": src.name, "dst": dst.name, "src_vlan": src.vlan, "dst_vlan": dst.vlan,
            "address": address, "expect": expect, "ok": p.returncode == 0, "seconds": round(took, 2)}


def cmd_pings(topo: Topo, host: str) -> int:
    members = topo.members()
    jobs = []
    for family in topo.families():
        for src in members:
            if src.host != host or src.addr(family) is None:
                continue
            for dst in members:
                if dst is src or dst.addr(family) is None:
                    continue
                jobs.append((src, dst, "ip", topo.expect(src, dst, family), family))
                if src.namespace and dst.namespace and src.vlan != dst.vlan:
                    jobs.append((src, dst, "l2", False, family))
    # Routed and same-VLAN pings first; the layer-2 probes add on-link routes
    # that would change what a concurrent routed ping to the same address does.
    with ThreadPoolExecutor(max_workers=8) as pool:
        for kind in ("ip", "l2"):
            for r in pool.map(lambda j: _ping(*j), [j for j in jobs if j[2] == kind]):
                print(json.dumps(r), flush=True)
    return 0


# --- the matrix -------------------------------------------------------------------------------


def cmd_matrix(topo: Topo, sources: list[str]) -> int:
    lines: list[str] = []
    if sources:
        for s in sources:
            with open(s) as f:
                lines += f.read().splitlines()
    else:
        lines = sys.stdin.read().splitlines()
    results = []
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            try:
                results.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    members = topo.members()
    families = topo.families()
    bad = missing = leaked = probes = 0
    print("Ping matrix (row pings column): ok = replies, -- = no reply;")
    print("a cell marked ! is NOT what the topology says (same VLAN: reachable; other VLANs: only via the router).")
    for family in families:
        # Records of an older testbed.py carry no family: IPv4.
        mine = [r for r in results if r.get("family", 4) == family]
        fam = [m for m in members if m.addr(family)]
        names = [m.name for m in fam]
        ip = {(r["src"], r["dst"]): r for r in mine if r["kind"] == "ip"}
        l2 = [r for r in mine if r["kind"] == "l2"]
        width = max(6, *(len(n) for n in names)) + 1
        vlan_of = {m.name: m.vlan for m in fam}
        if len(families) > 1:
            print(f"IPv{family}:")
        print(" " * (width + 6) + "".join(n.rjust(width) for n in names))
        for s in names:
            row = f"{s:<{width}}{vlan_of[s]:<6}"
            for d in names:
                if s == d:
                    cell = "."
                elif (s, d) not in ip:
                    cell, missing = "?", missing + 1
                else:
                    r = ip[(s, d)]
                    cell = "ok" if r["ok"] else "--"
                    if r["ok"] != r["expect"]:
                        cell += "!"
                        bad += 1
                row += cell.rjust(width)
            print(row)
        leaks = [r for r in l2 if r["ok"]]
        print(f"VLAN isolation{f' (IPv{family})' if len(families) > 1 else ''} (on-link pings across VLANs, every one must fail): "
              f"{len(l2) - len(leaks)}/{len(l2)} blocked")
        for r in leaks:
            print(f"  LEAK: {r['src']} ({r['src_vlan']}) reached {r['dst']} ({r['dst_vlan']}) at layer 2")
        leaked += len(leaks)
        probes += len(ip) + len(l2)
    failed = bad + leaked + missing
    if missing:
        print(f"  {missing} pairs have no result (a host did not report)")
    if failed == 0 and probes:
        print(f"RESULT: PASS ({probes} pings as expected)")
        return 0
    print(f"RESULT: FAIL ({failed} of {probes + missing} not as expected)")
    return 1


def cmd_facts(topo: Topo, host: str) -> int:
    h = topo.host(host)
    mgmt = h.get("management", {})
    legs = topo.router_legs(host)
    up = topo.uplink_of(host, topo.uplink_nic(host)) if h.get("uplinks") else None
    facts = {
        "NIC": topo.uplink_nic(host),
        "BRIDGE": h.get("bridge", {}).get("name", "br-ovs") if isinstance(h.get("bridge"), dict) else h.get("bridge", "br-ovs"),
        "ADDRESSES": " ".join(mgmt.get("addresses", [])),
        "GATEWAY": mgmt.get("gateway", ""),
        "GATEWAY6": mgmt.get("gateway6", ""),
        # A bond of several NICs with LACP: its peer passes no frame before this host bonds too.
        "UPLINK_LACP": up.get("lacp", "off") if up and "nics" in up else "off",
        # Every NIC of that uplink (a bond's members): provisioning brings them up, as cabled NICs.
        "UPLINK_NICS": " ".join(topo.nics_of(up)) if up else topo.uplink_nic(host),
        "ROUTER_HOST": topo.router_host() or "",
        "ROUTER_LEGS": " ".join(i for i, _, _ in legs),
        "TOPOLOGY_NAME": topo.data.get("name", ""),
        # Docker networks of this host: provisioning installs and starts Docker only for them.
        "DOCKER_NETWORKS": " ".join(d["network"] for d in h.get("docker", []) if d.get("network")),
        "PROBE_IMAGE": topo.data.get("verify", {}).get("probe_image", ""),
        # The router's DHCP server on the management VLAN (on the router's host).
        "DHCP_LEASES": DHCP_LEASES.format(vlan=topo.mgmt_vlan(host)) if topo.mgmt_vlan(host) else "",
    }
    for k, v in facts.items():
        print(f"{k}={shlex.quote(v)}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    cmd, path, rest = argv[0], argv[1], argv[2:]
    topo = Topo(path)
    if cmd == "matrix":
        return cmd_matrix(topo, rest)
    if len(rest) != 1:
        print(f"testbed: {cmd} needs FILE HOST", file=sys.stderr)
        return 2
    host = rest[0]
    topo.host(host)
    if cmd == "facts":
        return cmd_facts(topo, host)
    if cmd == "router":
        cmd_router(topo, host)
        return 0
    if cmd == "endpoints":
        cmd_endpoints(topo, host)
        return 0
    if cmd == "switch":
        cmd_switch(topo, host)
        return 0
    if cmd == "pings":
        return cmd_pings(topo, host)
    print(f"testbed: unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
