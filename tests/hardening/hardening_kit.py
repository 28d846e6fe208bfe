"""Fixtures for the hardening tests: a lab host with foreign objects, full dumps, the CLI.

The host is the one of tests/integration's `lab_host` and of the
benchmarks (tests/support/labhost.py): a namespace with a private
ovsdb-server + ovs-vswitchd whose eth1 is a veth to a gateway namespace. On
top of it every host here carries objects that are *not* ovsnet's - an OVS
bridge with ports, a Linux bridge with a port, addresses and a route - so
each test can prove, with a full dump taken by independent tools
(ovs-vsctl, ip), that no fault made ovsnet touch them.

Every name carries a per-run prefix; every namespace and daemon is removed at
teardown, pass or fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ovsnet.apply.target import Target
from ovsnet.lab.ovs_instance import OvsInstance
from tests.support.commands import ns_json, sh, vsctl
from tests.support.labhost import (
    FOREIGN_LINKS,
    OWNER_KEY,
    add_foreign_objects,
    node1_target,
    wire_uplink,
)
from tests.support.leaks import daemon_pid as _daemon_pid
from tests.support.leaks import processes_naming, wait_gone
from tests.support.topologies import as_template, node1

ROOT = Path(__file__).resolve().parents[2]
OVSNET = str(ROOT / ".venv" / "bin" / "ovsnet")
LONG = os.environ.get("OVSNET_LONG") == "1"

# The seed's node1 with its router, every name pinned; a str.format template
# ({tag}) because tests write edited copies of it.
TOPOLOGY = as_template(node1("h{tag}", router=True, mgmt_port=True), "tag")

# Names ovsnet creates on node1 for TOPOLOGY.
OURS = ("br-ovs", "mgmt0", "br-web", "br-db", "ovs-br-web", "lnx-br-web", "ovs-br-db", "lnx-br-db")

RESOLV = "# written by the test\nsearch example.test\nnameserver 9.9.9.9\nnameserver 149.112.112.112\noptions edns0\n"


# --- small tools ------------------------------------------------------------------


def ovsnet_cli(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run the real CLI; never a traceback, whatever the outcome."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("OVSNET_TEST_CRASH_AFTER", "OVSNET_STATE_DIR")}
    full_env.update(env or {})
    out = subprocess.run([OVSNET, *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT)
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr
    return out


def daemon_pid(inst: OvsInstance, program: str) -> int | None:
    return _daemon_pid(inst.rundir, program)


def kill_ovsdb_server(inst: OvsInstance, sig: int = signal.SIGKILL) -> None:
    """Stop this instance's ovsdb-server only (as a crash would: SIGKILL by default)."""
    pid = daemon_pid(inst, "ovsdb-server")
    assert pid is not None, "ovsdb-server is not running"
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert str(inst.rundir).encode() in cmdline, "pidfile names a process that is not this instance's"
    os.kill(pid, sig)
    wait_gone(pid)
    (inst.rundir / "ovsdb-server.pid").unlink(missing_ok=True)


def start_ovsdb_server(inst: OvsInstance) -> None:
    """Start ovsdb-server again with the same database, socket and files as OvsInstance.start."""
    rundir = inst.rundir
    argv = [
        "ip", "netns", "exec", inst.netns, "ovsdb-server", "--detach", "--no-chdir",
        f"--pidfile={rundir / 'ovsdb-server.pid'}", f"--log-file={rundir / 'ovsdb-server.log'}",
        f"--remote=punix:{rundir / 'db.sock'}", str(rundir / "conf.db"),
    ]
    p = subprocess.run(argv, env={**os.environ, "OVS_RUNDIR": str(rundir)}, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def restart_ovsdb_server(inst: OvsInstance, sig: int = signal.SIGKILL) -> None:
    kill_ovsdb_server(inst, sig)
    start_ovsdb_server(inst)


def our_processes(marker: str) -> list[str]:
    """Command lines of live processes whose argv mentions `marker` (a run prefix or dir)."""
    return [" ".join(argv) for argv in processes_naming(marker)]


# --- fixtures ---------------------------------------------------------------------


@dataclass
class LabHost:
    ns: str
    gw: str
    ovs: OvsInstance
    tag: str
    workdir: Path
    target: Target
    topo_file: Path
    resolv: Path
    extra_env: dict = field(default_factory=dict)

    @property
    def topology_name(self) -> str:
        return f"h{self.tag}"

    @property
    def where(self) -> list[str]:
        return ["--host", "node1", "--db", self.ovs.remote, "--netns", self.ns,
                "--state-dir", self.target.state_dir, "--resolv-conf", str(self.resolv)]

    def text(self) -> str:
        return TOPOLOGY.format(tag=self.tag)

    def checked(self, text: str | None = None):
        from ovsnet.topology import check
        from ovsnet.topology.load import parse

        return check(parse(text or self.text(), str(self.topo_file)))

    def cli(self, verb: str, *args: str, env: dict | None = None, file: Path | None = None, timeout: float = 180):
        return ovsnet_cli(verb, str(file or self.topo_file), *self.where, *args, env=env, timeout=timeout)

    def vsctl(self, *args: str) -> str:
        return vsctl(self.ovs.remote, *args).strip()

    def ip(self, *args: str) -> str:
        return sh("ip", "-n", self.ns, *args)

    def state_files(self) -> list[str]:
        d = Path(self.target.state_dir)
        return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file() and p.suffix != ".lock") if d.exists() else []


@pytest.fixture
def host(ovs, make_ns, tmp_path, run_prefix):
    """node1 before ovsnet: eth1 holds 192.168.10.11/24 and the default route; foreign objects around."""
    ns = ovs.netns
    gw = make_ns("gw")
    wire_uplink(ns, gw)
    target = node1_target(ovs.remote, ns, tmp_path, RESOLV, gateway_timeout=5.0)
    tag = run_prefix[-5:]
    topo_file = tmp_path / "topology.toml"
    topo_file.write_text(TOPOLOGY.format(tag=tag))
    h = LabHost(ns, gw, ovs, tag, tmp_path, target, topo_file, Path(target.resolv_conf))
    add_foreign_objects(ns, ovs.remote, tag)
    settle(h)
    return h


def settle(h: LabHost, seconds: float = 0.15) -> None:
    """Let carrier/operstate changes of fresh links settle before a snapshot."""
    deadline = time.monotonic() + 5
    prev = None
    while time.monotonic() < deadline:
        cur = _links(h)
        if cur == prev:
            return
        prev = cur
        time.sleep(seconds)


# --- dumps -----------------------------------------------------------------------

OVS_COLUMNS = {
    "Bridge": "_uuid,name,datapath_type,external_ids,other_config,ports,fail_mode,protocols,controller,mirrors,stp_enable",
    "Port": "_uuid,name,interfaces,tag,trunks,vlan_mode,external_ids,other_config,bond_mode",
    "Interface": "_uuid,name,type,options,external_ids,ofport_request,mtu_request",
}


def ovs_tables(h: LabHost) -> dict[str, list[dict]]:
    """Bridge/Port/Interface rows, the stable columns, as ovs-vsctl (not ovsnet) sees them."""
    out = {}
    for table, cols in OVS_COLUMNS.items():
        raw = json.loads(sh("ovs-vsctl", f"--db={h.ovs.remote}", "--timeout=30", "--no-wait", "--format=json", "--data=json", f"--columns={cols}", "list", table))
        rows = []
        for data in raw["data"]:
            row = dict(zip(raw["headings"], data))
            rows.append(json.loads(json.dumps(row, sort_keys=True)))
        out[table] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    root = json.loads(sh("ovs-vsctl", f"--db={h.ovs.remote}", "--timeout=30", "--no-wait", "--format=json", "--data=json", "--columns=bridges", "list", "Open_vSwitch"))
    out["Open_vSwitch.bridges"] = root["data"]
    return out


def _extids(row: dict) -> dict:
    v = row.get("external_ids")
    # --data=json: ["map", [[k, v], ...]]
    return dict(v[1]) if isinstance(v, list) and v and v[0] == "map" else {}


def ovs_rows_of(h: LabHost, topology: str | None = None) -> dict[str, int]:
    """How many rows of each table there are; with `topology`, only the ones marked as its."""
    t = ovs_tables(h)
    if topology is None:
        return {k: len(v) for k, v in t.items() if k != "Open_vSwitch.bridges"}
    return {k: sum(1 for r in v if _extids(r).get(OWNER_KEY) == topology) for k, v in t.items() if k != "Open_vSwitch.bridges"}


def _links(h: LabHost) -> list[tuple]:
    rows = []
    for l in ns_json(h.ns, "-d", "link"):
        flags = tuple(sorted(f for f in l.get("flags", []) if f not in ("LOWER_UP",)))
        rows.append((l["ifname"], l["ifindex"], (l.get("linkinfo") or {}).get("info_kind"), l.get("master"), l.get("mtu"),
                     flags, l.get("address"), l.get("ifalias"), l.get("operstate")))
    return sorted(rows)


def _addrs(h: LabHost) -> list[tuple]:
    rows = []
    for a in ns_json(h.ns, "addr"):
        for i in a.get("addr_info", []):
            if i.get("family") == "inet6" and i.get("scope") == "link":
                continue  # kernel-made, comes and goes with the link
            rows.append((a["ifname"], i.get("family"), i.get("local"), i.get("prefixlen"), i.get("scope"), i.get("broadcast"), i.get("label")))
    return sorted(rows)


def _routes(h: LabHost) -> list[str]:
    out = []
    for fam in ("-4", "-6"):
        for r in json.loads(sh("ip", "-n", h.ns, "-j", fam, "route", "show", "table", "all") or "[]"):
            if r.get("table") == "local" or (r.get("dst", "").startswith("fe80") or r.get("dst") == "ff00::/8"):
                continue
            out.append(json.dumps(r, sort_keys=True))
    return sorted(out)


def resolv_meaning(text: str) -> tuple:
    """resolv.conf as the resolver reads it: nameservers in order, every other line in order.

    Byte-for-byte restoration is checked on its own (test_host_faults.py,
    test_resolv_conf_restored_byte_for_byte).
    """
    lines = text.splitlines()
    ns = tuple(l for l in lines if l.split()[:1] == ["nameserver"])
    return ns, tuple(l for l in lines if l.split()[:1] != ["nameserver"])


def host_snapshot(h: LabHost, with_ovs: bool = True) -> dict:
    """Everything of the host that ovsnet could touch, as independent tools show it."""
    settle(h)
    snap = {
        "links": _links(h),
        "addrs": _addrs(h),
        "routes": _routes(h),
        "resolv.conf": resolv_meaning(h.resolv.read_text()),
    }
    if with_ovs:
        snap["ovs"] = ovs_tables(h)
    return snap


def foreign_snapshot(h: LabHost, vswitchd_restarted: bool = False, full: dict | None = None) -> dict:
    """Only the objects that are not this topology's: must never change, whatever the fault."""
    full = full or host_snapshot(h)
    mine = h.topology_name
    fl = set(FOREIGN_LINKS)
    links = [l for l in full["links"] if l[0] in fl]
    if vswitchd_restarted:
        # A restarted ovs-vswitchd recreates the tap of each bridge's internal port:
        # same name and settings, new ifindex and MAC. That is OVS, not ovsnet.
        links = [(l[0], None if l[2] == "tun" else l[1], *l[2:6], None if l[2] == "tun" else l[6], *l[7:]) for l in links]
    tables = full["ovs"]
    foreign_ovs = {}
    for table in ("Bridge", "Port", "Interface"):
        foreign_ovs[table] = [r for r in tables[table] if _extids(r).get(OWNER_KEY) != mine]
    # Interfaces carry no marks: keep only those of foreign ports.
    port_ifaces = set()
    for r in foreign_ovs["Port"]:
        ifs = r["interfaces"]
        port_ifaces |= {u[1] for u in ifs[1]} if ifs[0] == "set" else {ifs[1]}
    foreign_ovs["Interface"] = [r for r in foreign_ovs["Interface"] if r["_uuid"][1] in port_ifaces]
    return {
        "links": links,
        "addrs": [a for a in full["addrs"] if a[0] in fl],
        "routes": [r for r in full["routes"] if json.loads(r).get("dev") in fl],
        "ovs": foreign_ovs,
    }


def assert_same(before: dict, after: dict, what: str = "") -> None:
    for key in before:
        assert after[key] == before[key], f"{what}: {key} changed:\nbefore {before[key]}\nafter  {after[key]}"


def assert_nothing_of_ours(h: LabHost) -> None:
    assert ovs_rows_of(h, h.topology_name) == {"Bridge": 0, "Port": 0, "Interface": 0}
    names = {l[0] for l in _links(h)}
    assert not names & set(OURS), names & set(OURS)
