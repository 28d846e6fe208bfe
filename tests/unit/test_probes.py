"""Probe containers for `ovsnet verify`, the parts that need no Docker: the topology key,
which probes to start, how they become stations and what is expected of them, when a
left-over probe is stale, and how the report shows them."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ovsnet.backends.docker import Container, container_from_inspect
from ovsnet.errors import ConfigError, UsageError
from ovsnet.render.verify import render_matrix, to_json
from ovsnet.topology import check
from ovsnet.topology.graph import Expect
from ovsnet.topology.load import parse
from ovsnet.verify import containers
from ovsnet.verify.matrix import probe_plan
from ovsnet.verify.pings import flush_neighbour, ping_argv
from ovsnet.verify.probing import probe_records
from ovsnet.verify.report import build_report

ROOT = Path(__file__).resolve().parents[2]
SEED_TEXT = (ROOT / "topologies" / "seed.toml").read_text()
NO_VERIFY = SEED_TEXT.replace('[verify]\nprobe_image = "local/busybox:1"\n', "")


def seed(text: str = SEED_TEXT):
    return check(parse(text, "seed.toml"))


def errors_of(text: str) -> list:
    with pytest.raises(ConfigError) as err:
        check(parse(text, "seed.toml"))
    return err.value.findings


# --- the topology key ----------------------------------------------------------------------


def test_seed_names_the_lab_image():
    from ovsnet.lab.docker import IMAGE

    assert seed().topology.verify.probe_image == IMAGE
    assert seed(NO_VERIFY).topology.verify.probe_image is None


@pytest.mark.parametrize("ref", ["local/busybox:1", "busybox", "localhost:5000/team/probe:v1.2",
                                 "registry.example.com/a/b_c-d@sha256:" + "ab" * 32])
def test_good_image_references(ref):
    assert seed(NO_VERIFY + f'\n[verify]\nprobe_image = "{ref}"\n').topology.verify.probe_image == ref


@pytest.mark.parametrize("ref,words", [
    ("Local/Busybox:1", "lowercase"),
    ("local/busybox:", "malformed tag"),
    ("local busybox", "not an image reference"),
    ("", "empty"),
    ("a/b@sha256:xyz", "digest"),
])
def test_bad_image_references_are_findings_at_their_key(ref, words):
    (f,) = errors_of(NO_VERIFY + f'\n[verify]\nprobe_image = "{ref}"\n')
    assert f.path == "verify.probe_image" and words in (f.message + " " + f.hint), f
    assert f.line is not None


def test_verify_table_keys_and_types():
    (f,) = errors_of(NO_VERIFY + '\n[verify]\nprobe_imgae = "local/busybox:1"\n')
    assert f.path == "verify.probe_imgae" and "did you mean 'probe_image'" in f.hint
    (f,) = errors_of(NO_VERIFY + "\n[verify]\nprobe_image = 7\n")
    assert f.path == "verify.probe_image" and "expected a string" in f.message
    (f,) = errors_of(NO_VERIFY.replace('name = "seed"', 'name = "seed"\nverify = "local/busybox:1"'))
    assert f.path == "verify" and "expected a table" in f.message
    (f,) = errors_of(NO_VERIFY.replace('name = "seed"', 'name = "seed"\nverfy = 1'))
    assert "did you mean 'verify'" in f.hint


def test_probe_image_without_a_docker_network_warns():
    text = SEED_TEXT.replace('network = "web"\n', "").replace('network = "db"\n', "")
    warnings = [w for w in seed(text).warnings if w.path == "verify.probe_image"]
    assert len(warnings) == 1 and "no host has a Docker network" in warnings[0].message
    assert not [w for w in seed().warnings if w.path == "verify.probe_image"]


# --- which probes ---------------------------------------------------------------------------


def test_a_probe_per_docker_network_in_the_hosts_slice():
    topo = seed().topology
    specs = containers.specs(topo)
    assert [(s.name, s.vlan, s.bridge, s.ip_range) for s in specs] == [
        ("web@node1", "web", "br-web", "10.100.0.64/26"),
        ("db@node1", "db", "br-db", "10.200.0.64/26"),
        ("web@node2", "web", "br-web", "10.100.0.192/26"),
        ("db@node2", "db", "br-db", "10.200.0.128/26"),
    ]
    assert [s.name for s in containers.specs(topo, ["node2"])] == ["web@node2", "db@node2"]


def test_choose_default_explicit_and_off():
    specs = containers.specs(seed().topology)
    why = "no dockerd"
    assert containers.choose(False, "img", specs, {"node1", "node2"}, why) == ([], [])
    assert containers.choose(None, "img", specs, {"node1", "node2"}, why) == (specs, [])
    # Default: what can run runs, the rest is a note.
    chosen, notes = containers.choose(None, "img", specs, {"node2"}, why)
    assert [s.host for s in chosen] == ["node2", "node2"] and notes == ["no probe containers on node1: no dockerd"]
    assert containers.choose(None, None, specs, {"node1"}, why) == ([], [])  # the topology asks for none
    assert containers.choose(None, "img", [], {"node1"}, why) == ([], [])
    # Asked for: everything, or an error saying what is missing.
    with pytest.raises(UsageError, match="no Docker engine for node1: no dockerd"):
        containers.choose(True, "img", specs, {"node2"}, why)
    with pytest.raises(UsageError, match=r"probe_image"):
        containers.choose(True, None, specs, {"node1", "node2"}, why)
    with pytest.raises(UsageError, match="no Docker network"):
        containers.choose(True, "img", [], {"node1"}, why)


# --- probes as stations ----------------------------------------------------------------------


def fake(spec: containers.ProbeSpec, address: str, pid: int = 4242) -> containers.Probe:
    return containers.Probe(spec, "c" * 64, f"ovsnet-probe-{spec.name}", address, "02:42:0a:64:00:40", pid, "local/busybox:1")


def seed_probes() -> list[containers.Probe]:
    addr = {"web@node1": "10.100.0.64/24", "db@node1": "10.200.0.65/24", "web@node2": "10.100.0.192/24", "db@node2": "10.200.0.129/24"}
    return [fake(s, addr[s.name]) for s in containers.specs(seed().topology)]


def test_probes_are_stations_expected_of_as_endpoints():
    checked = seed()
    found = seed_probes()
    p = probe_plan(checked, all_pairs=True, probes=found)
    by_name = {s.name: s for s in p.stations}
    assert [s.name for s in p.stations] == ["web1", "web2", "db1", "db2", "web@node1", "db@node1", "web@node2", "db@node2", "node1", "node2"]
    web = by_name["web@node1"]
    assert (web.kind, web.probe, web.vlan, web.host, web.ip) == ("probe", "web", 100, "node1", "10.100.0.64")
    assert web.group == by_name["web1"].group  # one Docker bridge, one tag: one group
    e = p.expected
    same = {("web@node1", "web@node2"), ("web@node1", "web1"), ("web@node1", "web2"), ("web2", "web@node1"),
            ("db@node1", "db@node2"), ("db@node1", "db2"), ("db1", "db@node2")}
    assert {pair: e[pair] for pair in same} == {pair: Expect.SAME_VLAN for pair in same}
    for pair in (("web@node1", "node1"), ("web@node2", "node1"), ("node2", "web@node1")):
        assert e[pair] is Expect.ROUTED, pair  # the seed routes web and mgmt
    for other in ("web1", "web@node1", "web@node2", "node1", "node2"):
        assert e[("db@node1", other)] is Expect.BLOCKED and e[(other, "db@node1")] is Expect.BLOCKED
    # Every pair of the plain topology keeps its expectation.
    plain = probe_plan(checked, all_pairs=True)
    assert all(e[pair] is exp for pair, exp in plain.expected.items())
    assert len(e) == 90 and len(plain.expected) == 30
    # The topology itself is untouched.
    assert [ep.name for ep in checked.topology.endpoints] == ["web1", "web2", "db1", "db2"]


def test_a_probe_namespace_is_a_path_pinged_through_nsenter():
    p = fake(containers.specs(seed().topology)[0], "10.100.0.64/24", pid=77)
    assert p.netns == "/proc/77/ns/net"
    argv = ping_argv(p.netns, "10.100.0.12")
    assert argv[:3] == ["nsenter", "--net=/proc/77/ns/net", "--"] and argv[3] == "ping" and argv[-1] == "10.100.0.12"
    assert ping_argv("ab-e1", "10.0.0.1")[:4] == ["ip", "netns", "exec", "ab-e1"]
    assert ping_argv(None, "10.0.0.1")[0] == "ping"
    assert flush_neighbour(p.netns) == 0  # nothing run: its entries go with the container


def test_a_probe_outside_its_slice_fails_the_report():
    checked = seed()
    found = seed_probes()
    found[0] = fake(found[0].spec, "10.100.0.200/24")  # node2's slice
    assert not found[0].in_slice and all(p.in_slice for p in found[1:])
    p = probe_plan(checked, all_pairs=True, probes=found)
    observed = {pair: exp is not Expect.BLOCKED for pair, exp in p.expected.items()}
    rep = build_report("seed", p.stations, p.expected, observed, probes=probe_records(checked.topology, found))
    assert not rep.mismatches and not rep.ok
    (problem,) = rep.problems
    assert "web@node1" in problem and "10.100.0.64/26" in problem
    text = render_matrix(rep)
    assert "PROBLEM probe web@node1" in text and "NETWORK@HOST" in text
    assert text.splitlines()[-1].startswith("FAILED: 90 pairs probed, 0 mismatches, 0 capture findings, 1 probe problem")
    body = to_json(rep)
    assert body["ok"] is False and body["problems"] == [problem]
    assert [(x["name"], x["in_slice"], x["slice"]) for x in body["probes"]][:2] == [("web@node1", False, "10.100.0.64/26"), ("db@node1", True, "10.200.0.64/26")]
    kinds = {s["name"]: (s["kind"], s["network"]) for s in body["stations"]}
    assert kinds["web@node1"] == ("probe", "web") and kinds["web1"] == ("endpoint", None) and kinds["node1"] == ("host", None)


# --- stale probes ----------------------------------------------------------------------------


def container(running: bool = True, owner: str = "", created: str = "2026-11-28T08:00:00.123456789Z") -> Container:
    return Container("id", "ovsnet-probe-x", "local/busybox:1", running, 99 if running else 0, created,
                     {containers.PROBE_LABEL: "seed", containers.OWNER_LABEL: owner})


def test_stale_probes():
    now = datetime(2026, 11, 28, 8, 10, tzinfo=timezone.utc)
    alive = {(100, "555")}

    def is_alive(pid: int, start: str) -> bool:
        return (pid, start) in alive

    mine = "boot-a:100:555:run1"
    assert containers.is_stale(container(running=False, owner=mine), "boot-a", now, is_alive)  # exited: always
    assert not containers.is_stale(container(owner=mine), "boot-a", now, is_alive)  # its verify runs: leave it
    assert containers.is_stale(container(owner="boot-a:100:556:run1"), "boot-a", now, is_alive)  # pid reused since
    assert containers.is_stale(container(owner="boot-a:101:555:run1"), "boot-a", now, is_alive)  # verify gone
    # Another boot or machine: only age tells.
    assert not containers.is_stale(container(owner="boot-b:100:555:r"), "boot-a", now, is_alive)
    later = now + timedelta(seconds=containers.LIFETIME + 60)
    assert containers.is_stale(container(owner="boot-b:100:555:r"), "boot-a", later, is_alive)
    assert containers.is_stale(container(owner="", created="garbage"), "boot-a", now, is_alive)


def test_owner_token_names_this_process():
    boot, pid, start, run = containers.owner_token("r1").split(":")
    assert int(pid) == os.getpid() and run == "r1" and boot
    assert containers._process_alive(os.getpid(), start)
    c = container(owner=containers.owner_token())
    assert not containers.is_stale(c, containers._boot_id(), datetime.now(timezone.utc))


def test_container_inspect_answer():
    info = {
        "Id": "abc", "Name": "/ovsnet-probe-seed-node1-web-1", "Created": "2026-11-28T08:00:00.5Z",
        "State": {"Running": True, "Pid": 4321},
        "Config": {"Image": "local/busybox:1", "Labels": {containers.PROBE_LABEL: "seed"}},
        "NetworkSettings": {"Networks": {"web": {"IPAddress": "10.100.0.64", "IPPrefixLen": 24, "MacAddress": "02:42:0a:64:00:40"}}},
    }
    c = container_from_inspect(info)
    assert (c.name, c.pid, c.running, c.labels[containers.PROBE_LABEL]) == ("ovsnet-probe-seed-node1-web-1", 4321, True, "seed")
    assert c.networks["web"].interface == "10.100.0.64/24" and c.networks["web"].mac == "02:42:0a:64:00:40"
    stopped = container_from_inspect({"Id": "x", "State": {"Running": False, "Pid": 0}})
    assert (stopped.running, stopped.pid, stopped.networks) == (False, 0, {})
