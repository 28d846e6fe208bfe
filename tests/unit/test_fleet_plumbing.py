"""The fleet's pure parts: how the lab's controller joins the management VLAN,
which hosts need an out-of-band link, the modules' error mapping and diff,
and the inventory plugin on a topology (ansible-inventory, no host reached)."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ovsnet import api
from ovsnet.errors import LockedError, RefusedError, UsageError
from ovsnet.lab import fleet, ssh
from ovsnet.plan import planner
from ovsnet.plan.offline import from_nothing

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "ansible" / "plugins" / "module_utils"))
import ovsnet_common  # noqa: E402


def test_controller_takes_the_highest_free_address_of_the_management_vlan():
    seed = api.load(REPO / "topologies" / "seed.toml").topology
    assert ssh.management_vlan(seed) == "mgmt"
    assert ssh.controller_address(seed, "mgmt") == ipaddress.ip_interface("192.168.10.254/24")


def test_only_a_host_whose_management_vlan_is_tagged_needs_the_out_of_band_link():
    topo = api.load(REPO / "topologies" / "fleet.toml").topology
    assert {h: ssh.needs_oob(topo.hosts[h]) for h in topo.hosts} == {"node1": False, "node2": False, "node3": False, "node4": True}
    assert ssh._oob_pair(4) == ("198.18.0.17", "198.18.0.18")


def test_a_vlan_inside_the_out_of_band_range_is_refused():
    from dataclasses import replace

    topo = api.load(REPO / "topologies" / "seed.toml").topology
    vlans = dict(topo.vlans)
    vlans["mgmt"] = replace(vlans["mgmt"], subnet=ipaddress.ip_network("198.18.4.0/24"))
    with pytest.raises(UsageError, match="overlaps the lab's out-of-band network 198.18.0.0/16"):
        ssh._check_oob_free(replace(topo, vlans=vlans))


def test_sshd_config_keeps_every_file_under_the_lab():
    f = ssh.Fleet(Path("/run/ovsnet-lab/ofx1"), "ofx1-c", "192.168.10.254", {})
    text = ssh.sshd_config(f, ssh.Station("node1", "ofx1-h1", "192.168.10.11", False))
    paths = [line.split()[1] for line in text.splitlines() if line.split()[:1] in (["HostKey"], ["PidFile"], ["AuthorizedKeysFile"])]
    assert len(paths) == 3 and all(p.startswith("/run/ovsnet-lab/ofx1/ssh/") for p in paths)
    assert "PasswordAuthentication no" in text and "PermitRootLogin prohibit-password" in text


def test_inventory_config_names_the_plugin_the_file_and_the_lab():
    text = fleet.inventory_config("topologies/seed.toml", "ofx1")
    assert "plugin: ovsnet.fleet.topology\n" in text and "lab: ofx1\n" in text
    assert f"topology: {REPO / 'topologies' / 'seed.toml'}\n" in text or "topology: /" in text


@pytest.mark.parametrize("exc, code, reason", [(RefusedError("x"), 5, "refused"), (LockedError("x"), 6, "locked"),
                                               (UsageError("x"), 2, "bad input")])
def test_module_failures_carry_ovsnets_exit_code_and_message(exc, code, reason):
    class Module:
        def fail_json(self, **kw):
            raise SystemExit(kw)

    with pytest.raises(SystemExit) as out:
        ovsnet_common.fail(Module(), exc, log=["a"])
    kw = out.value.args[0]
    assert kw["exit_code"] == code and kw["reason"] == reason and kw["msg"] == f"ovsnet {reason} (exit {code}): x"


def test_plan_diff_is_one_line_per_resource_before_and_after():
    checked = api.load(REPO / "topologies" / "seed.toml")
    want = planner.desire(checked.topology, checked.topology.hosts["node1"])
    p = planner.diff(want, from_nothing(want))
    d = ovsnet_common.plan_diff(p)
    before, after = d["before"].splitlines(), d["after"].splitlines()
    assert len(before) == len(after) == len(p.changes)
    assert "bridge:br-ovs: (absent)" in before
    assert any(line.startswith("bridge:br-ovs: OVS bridge") and "# create" in line for line in after)


def test_inventory_plugin_hosts_groups_and_overrides(tmp_path):
    config = tmp_path / "fleet.ovsnet.yml"
    config.write_text(f"plugin: ovsnet.fleet.topology\ntopology: {REPO / 'topologies' / 'fleet.toml'}\n"
                      "hosts:\n  node4:\n    ansible_host: 10.9.9.4\nvars:\n  ansible_user: admin\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible" / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp_path),
           "ANSIBLE_HOME": str(tmp_path / "home")}
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-inventory"), "-i", str(config), "--list"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # Values the plugin sets come back marked unsafe (never templated): {"__ansible_unsafe": value}.
    inv = json.loads(proc.stdout, object_hook=lambda d: d.get("__ansible_unsafe", d) if len(d) == 1 else d)
    hv = inv["_meta"]["hostvars"]
    assert sorted(hv) == ["node1", "node2", "node3", "node4"]
    assert hv["node1"]["ansible_host"] == "192.168.10.11" and hv["node4"]["ansible_host"] == "10.9.9.4"
    assert hv["node2"]["ansible_user"] == "admin"
    assert sorted(inv["layout_vlan"]["hosts"]) == ["node1", "node2", "node3", "node4"]
    assert sorted(inv["vlan_db"]["hosts"]) == ["node1", "node2", "node4"]  # node3 carries no db


def test_inventory_plugin_refuses_a_host_the_topology_does_not_have(tmp_path):
    config = tmp_path / "fleet.ovsnet.yml"
    config.write_text(f"plugin: ovsnet.fleet.topology\ntopology: {REPO / 'topologies' / 'seed.toml'}\nhosts:\n  node9: {{}}\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible" / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp_path),
           "ANSIBLE_HOME": str(tmp_path / "home"), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1"}
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-inventory"), "-i", str(config), "--list"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    assert "hosts node9 are not in" in proc.stderr and "hosts: node1, node2" in proc.stderr


def test_apply_module_refuses_skipping_the_gateway_check_on_up(tmp_path):
    """gateway_check: false is for a teardown only; with state: present the module fails before reading anything."""
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "topology": str(REPO / "topologies" / "seed.toml"), "host": "node1", "state": "present", "gateway_check": False}}))
    module = REPO / "ansible" / "collections" / "ansible_collections" / "ovsnet" / "fleet" / "plugins" / "modules" / "ovsnet_apply.py"
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'ansible' / 'collections'}:{REPO}"}  # this checkout's ovsnet
    proc = subprocess.run([sys.executable, str(module), str(args)], capture_output=True, text=True, env=env, timeout=120)
    result = json.loads(proc.stdout)
    assert proc.returncode == 1 and result["failed"] is True
    assert result["msg"] == ("ovsnet bad input (exit 2): gateway_check: false applies to state: absent only "
                             "(on up, the gateway check is what rolls a bad move back)")
    assert result["exit_code"] == 2 and result["reason"] == "bad input"



def test_docker_timeout_reaches_the_target_and_the_docker_client(monkeypatch):
    """A slow Engine (an emulated guest's took over 10 s to create a network) gets the time it is given."""
    import ovsnet.backends.docker as docker_backend
    from ovsnet.apply.live import Live

    checked = api.load(str(REPO / "topologies" / "seed.toml"))
    assert api.target(checked, "node1").docker_timeout == 10.0
    where = api.target(checked, "node1", docker_timeout=120)
    assert where.docker_timeout == 120.0
    made = []
    monkeypatch.setattr(docker_backend, "Docker", lambda host, timeout: made.append((host, timeout)) or object())
    assert Live(where).docker() is not None
    assert made == [(None, 120.0)]


@pytest.mark.parametrize("given", [0, -1, 601, float("nan")])
def test_docker_timeout_out_of_range_is_bad_input(given):
    checked = api.load(str(REPO / "topologies" / "seed.toml"))
    with pytest.raises(UsageError) as err:
        api.target(checked, "node1", docker_timeout=given)
    assert str(err.value) == (f"docker_timeout {given:g}: give the seconds the Docker Engine may take per call, "
                              "more than 0 and at most 600")


def test_apply_module_passes_a_bad_docker_timeout_back_as_bad_input(tmp_path):
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "topology": str(REPO / "topologies" / "seed.toml"), "host": "node1", "state": "present", "docker_timeout": 0}}))
    module = REPO / "ansible" / "collections" / "ansible_collections" / "ovsnet" / "fleet" / "plugins" / "modules" / "ovsnet_apply.py"
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'ansible' / 'collections'}:{REPO}"}  # this checkout's ovsnet
    proc = subprocess.run([sys.executable, str(module), str(args)], capture_output=True, text=True, env=env, timeout=120)
    result = json.loads(proc.stdout)
    assert proc.returncode == 1 and result["exit_code"] == 2 and result["reason"] == "bad input"
    assert result["msg"] == ("ovsnet bad input (exit 2): docker_timeout 0: give the seconds the Docker Engine may take "
                             "per call, more than 0 and at most 600")
