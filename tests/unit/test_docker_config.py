"""daemon.json for flat-layout hosts: bridge, this host's slice, the router, the MTU."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pytest

from ovsnet.docker_config import docker_config, docker_config_text
from ovsnet.errors import UsageError
from ovsnet.topology import addressing
from ovsnet.topology.load import load, parse

ROOT = Path(__file__).resolve().parents[2]
FLAT_TEXT = (ROOT / "topologies" / "flat.toml").read_text()


def sub(pattern: str, repl: str, text: str = FLAT_TEXT) -> str:
    new, n = re.subn(pattern, repl, text, count=1, flags=re.M)
    assert n
    return new


def test_flat_host_settings_match_the_address_plan():
    topo = parse(FLAT_TEXT)
    slices, _ = addressing.plan(topo)
    for host in ("node1", "node2"):
        cfg = docker_config(topo, host)
        assert cfg.settings == {
            "bridge": "br0",
            "fixed-cidr": str(slices[(host, "lan")].network),
            "default-gateway": "192.168.1.1",
            "mtu": 1500,
        }
        assert ipaddress.ip_network(cfg.settings["fixed-cidr"]).subnet_of(ipaddress.ip_network("192.168.1.0/24"))
    # Two hosts on one segment: their dockerds never hand out one address.
    a = ipaddress.ip_network(docker_config(topo, "node1").settings["fixed-cidr"])
    b = ipaddress.ip_network(docker_config(topo, "node2").settings["fixed-cidr"])
    assert not a.overlaps(b)


def test_text_is_json_then_restart_note():
    topo = parse(FLAT_TEXT)
    cfg = docker_config(topo, "node1")
    assert json.loads(cfg.json) == cfg.settings
    text = docker_config_text(topo, "node1")
    assert text.startswith(cfg.json)
    notes = text[len(cfg.json):]
    assert "restart dockerd for it to take effect" in notes
    assert all(line.startswith("# ") for line in notes.splitlines())


def test_no_router_no_default_gateway_and_vlan_mtu():
    text = sub(r'^router = "192\.168\.1\.1".*$', "mtu = 9000")
    text = re.sub(r"^\[router\]\nvlans = \[\"lan\"\]\n", "", text, flags=re.M)
    topo = parse(text)
    s = docker_config(topo, "node2").settings
    assert "default-gateway" not in s
    assert s["mtu"] == 9000
    assert s["bridge"] == "br0" and "fixed-cidr" in s


def test_flat_bridge_without_vlan_says_no_slice():
    text = FLAT_TEXT.replace('nic = "eth0"\nvlan = "lan"\n', 'nic = "eth0"\n')
    text = re.sub(r"^\[\[endpoints\]\][^\[]*", "", text, flags=re.M)
    topo = parse(text)
    cfg = docker_config(topo, "node1")
    assert cfg.settings == {"bridge": "br0", "mtu": 1500}
    assert any("no fixed-cidr" in n for n in cfg.notes)


def test_vlan_layout_host_is_a_usage_error_naming_up():
    topo = load(ROOT / "topologies" / "seed.toml")
    with pytest.raises(UsageError) as err:
        docker_config(topo, "node1")
    msg = str(err.value)
    assert "vlan layout" in msg and "ovsnet up" in msg and "web, db" in msg


def test_unknown_host_lists_the_hosts():
    topo = parse(FLAT_TEXT)
    with pytest.raises(UsageError, match="hosts: node1, node2"):
        docker_config(topo, "nope")
