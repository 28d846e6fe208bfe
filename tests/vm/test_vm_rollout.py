"""The rollout playbook over SSH against the two VMs, on the kernel datapath (issue 14, item 5).

One boot of node2 and node1 (vagrant/topology.toml), provisioned as the
seed's hosts before ovsnet (OVSNET_PROVISION=fresh: the address and default
route on eth1, the router namespace on node2, ovsnet's venv at /opt/ovsnet
with its dependencies, Docker and the probe image; ovsnet not run). Then,
from this machine, as a user would run it:

- `ansible-playbook ovsnet.fleet.rollout` with the collection's inventory
  plugin on vagrant/topology.toml, each host reached over its SSH forward
  (ansible_host from WORK/ssh_config), the playbook's wheel built here from
  this checkout and the host's .wheels (ovsnet_offline), ovsnet_venv the
  guest's /opt/ovsnet; both hosts in one batch (node2 holds the router that
  node1's gateway check needs, and comes second in the topology), verify
  without the endpoints (the test bed plugs those in only after `up`);
- converged: `ovsnet status` in sync on both, the kernel datapath, the
  address on mgmt0;
- the same playbook again: changed=0 on both;
- `ovsnet.fleet.teardown` (without the gateway check: down on both at once
  unplugs the router, and SSH runs over eth0 anyway): eth1's addresses and
  MTU, the routes and resolv.conf as before the rollout.

Beyond CI's budget: runs with OVSNET_VM_TESTS=all. In an emulated, loaded
guest, creating a Docker network and answering an OVSDB transaction each
took longer than ovsnet's default 10 s, so the inventory gives both daemons
120 s (ovsnet_docker_timeout, ovsnet_ovs_timeout).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vms import ALL, ALL_REASON, ENABLED, REPO, SKIP_REASON, Bed, Vm, log, timed, two_vm_bed

pytestmark = [pytest.mark.vm, pytest.mark.skipif(not ENABLED, reason=SKIP_REASON), pytest.mark.skipif(not ALL, reason=ALL_REASON)]

MODULE = "rollout"
HOSTS = ("node2", "node1")
TOPO_REL = "vagrant/topology.toml"
GUEST_VENV = "/opt/ovsnet"
GUEST_DIR = "/opt/ovsnet-fleet"  # the playbook's wheels and topology copy (the venv is the box's)
GUEST_TOPO = f"{GUEST_DIR}/topology.toml"
PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
# Each host as provisioning left it, before the rollout: what teardown must give back.
FRESH: dict[str, dict[str, object]] = {}
RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def inventory(work: Path) -> Path:
    path = work / "vms.ovsnet.yml"
    path.write_text(json.dumps({
        "plugin": "ovsnet.fleet.topology",
        "topology": str(REPO / TOPO_REL),
        # The management addresses of the topology are not reachable from here: each VM's sshd is
        # forwarded from 127.0.0.1 (WORK/ssh_config names them).
        "hosts": {h: {"ansible_host": h} for h in HOSTS},
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_common_args": f"-F {work / 'ssh_config'}",
            "ovsnet_venv": GUEST_VENV,
            "ovsnet_dir": GUEST_DIR,
            "ovsnet_offline": True,
            # node1's gateway (node2's router) answers once node2 has run up, in the same batch.
            "ovsnet_gateway_timeout": 180,
            # In emulated, loaded guests ovsdb-server took over 10 s (the default) to answer one
            # transaction, and the Docker Engine over 10 s to create one network.
            "ovsnet_ovs_timeout": 120,
            "ovsnet_docker_timeout": 120,
            "ovsnet_verify_endpoints": False,
        },
    }, indent=2))  # JSON is YAML
    return path


def playbook(bed: Bed, name: str, *extra: str) -> tuple[subprocess.CompletedProcess, dict[str, tuple[int, ...]], float]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible" / "ansible.cfg"), "ANSIBLE_HOME": str(bed.work / "ansible-home"),
           "ANSIBLE_LOCAL_TEMP": str(bed.work / "ansible-tmp"), "ANSIBLE_NOCOLOR": "1", "PYTHONUNBUFFERED": "1"}
    argv = [str(PLAYBOOK), "-i", str(inventory(bed.work)), f"ovsnet.fleet.{name}", *extra]
    t = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800, cwd=REPO / "ansible")
    took = time.monotonic() - t
    out = p.stdout + p.stderr
    (bed.work / f"ansible-{name}-{int(t)}.log").write_text(out)
    tail = out.rsplit("PLAY RECAP", 1)[-1] if "PLAY RECAP" in out else ""
    recap = {m.group(1): tuple(int(x) for x in m.groups()[1:]) for m in (RECAP_RE.match(x.strip()) for x in tail.splitlines()) if m}
    log(f"ansible-playbook {name} {' '.join(extra)}: exit {p.returncode} in {took:.0f} s; recap (ok, changed, unreachable, failed): {recap}")
    return p, recap, took


def snapshot(vm: Vm) -> dict[str, object]:
    """What teardown must put back: eth1's global addresses and MTU, the IPv4 routes, resolv.conf."""
    link = json.loads(vm.check("ip -j addr show dev eth1", 30))[0]
    routes = json.loads(vm.check("ip -4 -j route show table main", 30))
    return {
        "eth1": (link["mtu"], sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if a.get("scope") == "global")),
        "routes": sorted(json.dumps(r, sort_keys=True) for r in routes),
        "resolv.conf": vm.check("cat /etc/resolv.conf", 30),
    }


@pytest.fixture(scope="module")
def bed(request: pytest.FixtureRequest) -> Iterator[Bed]:
    before = request.session.testsfailed
    with two_vm_bed(MODULE, lambda: request.session.testsfailed > before) as b:
        with timed(MODULE, "provision: fresh hosts (address on eth1, router on node2, ovsnet not run)"):
            b.provision({h: {"OVSNET_PROVISION": "fresh"} for h in HOSTS})
        FRESH.update({h: snapshot(b[h]) for h in HOSTS})
        yield b


def failed_output(p: subprocess.CompletedProcess) -> str:
    return (p.stdout + p.stderr)[-6000:]


def test_rollout_converges_both_vms(bed: Bed) -> None:
    with timed(MODULE, "rollout (both hosts, one batch)"):
        p, recap, _ = playbook(bed, "rollout", "-e", "ovsnet_serial=2")
        assert p.returncode == 0, failed_output(p)
        assert sorted(recap) == sorted(HOSTS), recap
        for h in HOSTS:
            ok, changed, unreachable, failed = recap[h]
            assert changed > 0 and unreachable == 0 and failed == 0, f"{h}: {recap[h]}"
    with timed(MODULE, "converged: status in sync, kernel datapath"):
        for h in HOSTS:
            vm = bed[h]
            r = vm.run(f"{GUEST_VENV}/bin/ovsnet status {GUEST_TOPO} --host {h}", 180)
            assert r.code == 0, f"{h}: ovsnet status after the rollout: exit {r.code}:\n{r.text}"
            out = vm.check("ovs-dpctl show; ip -o -4 addr show dev mgmt0; ovs-vsctl port-to-br eth1", 60)
            assert "system@ovs-system" in out and f"192.168.10.1{h[-1]}/24" in out and "br-ovs" in out, f"{h}:\n{out}"
            assert vm.check("ip -o -4 addr show dev eth1", 30).strip() == "", f"{h}: eth1 still holds an IPv4 address"


def test_rollout_again_changes_nothing(bed: Bed) -> None:
    with timed(MODULE, "rollout again"):
        p, recap, _ = playbook(bed, "rollout", "-e", "ovsnet_serial=2")
        assert p.returncode == 0, failed_output(p)
        assert {h: recap[h][1] for h in HOSTS} == {h: 0 for h in HOSTS}, f"changed on the second run: {recap}\n{failed_output(p)}"


def test_teardown_restores_both_vms(bed: Bed) -> None:
    with timed(MODULE, "teardown"):
        p, recap, _ = playbook(bed, "teardown", "-e", "ovsnet_gateway_check=false")
        assert p.returncode == 0, failed_output(p)
        assert all(recap[h][1] > 0 and recap[h][3] == 0 for h in HOSTS), recap
    for h in HOSTS:
        vm = bed[h]
        after = snapshot(vm)
        assert after == FRESH[h], f"{h}: not as before the rollout:\nbefore {FRESH[h]}\nafter  {after}"
        assert "br-ovs" not in vm.check("ovs-vsctl list-br", 30), f"{h}: br-ovs left after teardown"
