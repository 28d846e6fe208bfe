"""examples/compose.yaml with Debian's docker-compose against two lab hosts'
engines (`ovsnet lab up --docker`): services on two hosts reach each other
on their VLAN, are isolated across unrouted VLANs, and get addresses inside
their host's slice."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess

import pytest

from ovsnet.lab import netns
from tests.support.fleet import OVSNET, REPO

pytestmark = pytest.mark.root
SEED = REPO / "topologies" / "seed.toml"
COMPOSE = REPO / "examples" / "compose.yaml"


def _compose(docker_host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": docker_host, "COMPOSE_INTERACTIVE_NO_CLI": "1"}
    proc = subprocess.run(["docker-compose", "-p", "shop", "-f", str(COMPOSE), *args], capture_output=True, text=True,
                          env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker-compose {' '.join(args)} ({docker_host}) exited {proc.returncode}: {proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def engines():
    if shutil.which("docker-compose") is None and not os.environ.get("CI"):
        pytest.skip("docker-compose is not installed (.ci/setup installs it)")
    prefix = netns.unique_prefix("ovt")
    try:
        up = subprocess.run([str(OVSNET), "lab", "up", str(SEED), "--prefix", prefix, "--docker"], capture_output=True, text=True, timeout=900)
        assert up.returncode == 0, up.stderr
        from ovsnet import api
        from ovsnet.lab import docker as lab_docker
        from ovsnet.lab.ledger import load_lab

        lab = load_lab(api.load(SEED).topology, prefix)
        hosts = {h: lab_docker.docker_host(lab, h) for h in ("node1", "node2")}
        for url in hosts.values():
            _compose(url, "up", "-d", "--no-build")
        yield hosts
    finally:
        subprocess.run([str(OVSNET), "lab", "down", str(SEED), "--prefix", prefix], capture_output=True, timeout=300)


def _address(docker_host: str, service: str) -> str:
    cid = _compose(docker_host, "ps", "-q", service).stdout.strip()
    env = {**os.environ, "DOCKER_HOST": docker_host}
    info = json.loads(subprocess.run(["docker", "inspect", cid], capture_output=True, text=True, env=env, check=True).stdout)
    nets = info[0]["NetworkSettings"]["Networks"]
    assert list(nets) == [service], nets  # each service on exactly its VLAN's network
    return nets[service]["IPAddress"]


def _ping(docker_host: str, service: str, address: str) -> bool:
    return _compose(docker_host, "exec", "-T", service, "ping", "-c", "2", "-W", "2", address, check=False).returncode == 0


def test_compose_services_reach_their_vlan_across_hosts_and_nothing_else(engines):
    addr = {(h, s): _address(url, s) for h, url in engines.items() for s in ("web", "db")}
    slices = json.loads(subprocess.run([str(OVSNET), "addresses", str(SEED), "--json"], capture_output=True, text=True, check=True).stdout)
    for (host, service), ip in addr.items():
        mine = next(s["ip_range"] for s in slices if s["host"] == host and s["vlan"] == service)
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(mine), f"{service}@{host} {ip} outside {mine}"
    n1, n2 = engines["node1"], engines["node2"]
    assert _ping(n1, "web", addr[("node2", "web")]), "web@node1 -> web@node2 over VLAN 100"
    assert _ping(n2, "db", addr[("node1", "db")]), "db@node2 -> db@node1 over VLAN 200"
    assert not _ping(n1, "web", addr[("node2", "db")]), "web and db are not routed: isolated"
    assert not _ping(n2, "db", addr[("node1", "web")]), "db reaches nothing outside VLAN 200"
