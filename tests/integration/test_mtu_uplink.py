"""The uplink's `mtu` on a real NIC: set by up, a no-op again, drift when changed by hand, put back by down.

The NIC is test_apply's lab_host eth1 (a veth inside the test's namespace);
every check reads the kernel with `ip -j`, not through ovsnet.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ovsnet import apply
from ovsnet.apply import record
from ovsnet.topology import check
from ovsnet.topology.load import parse
from tests.support.commands import ns_json, sh
from tests.support.topologies import node1

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]


def text(tag: str, mtu: int) -> str:
    body = node1(f"t{tag}")
    assert 'native_vlan = "mgmt"\n' in body
    return body.replace('native_vlan = "mgmt"\n', f'native_vlan = "mgmt"\nmtu = {mtu}\n', 1)


def ping(ns: str, addr: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr], capture_output=True).returncode == 0


def snapshot(h) -> dict:
    """The Linux side of the host, as ip sees it: links with their MTU, addresses, routes."""
    return {
        "links": sorted((l["ifname"], l.get("master"), l.get("mtu")) for l in ns_json(h.ns, "-d", "link")),
        "addrs": sorted((a["ifname"], i["local"]) for a in ns_json(h.ns, "addr") for i in a.get("addr_info", []) if i.get("scope") != "link"),
        "routes": sorted(json.dumps(r, sort_keys=True) for r in ns_json(h.ns, "route")),
    }


def topo(tag: str, mtu: int):
    return check(parse(text(tag, mtu), "test.toml"))


def nic_mtu(h, name: str = "eth1") -> int:
    (link,) = json.loads(sh("ip", "-n", h.ns, "-j", "link", "show", "dev", name))
    return link["mtu"]


def saved_mtus(h, tag: str) -> dict | None:
    saved = record.read(h.target.state_dir, f"t{tag}", "node1")
    if saved is None:
        return None
    return dict(saved.parts["nic"].mtus) if "nic" in saved.parts else {}


def test_up_sets_the_uplink_mtu_up_again_is_a_noop_drift_is_seen_down_restores(lab_host, tmp_path):
    h = lab_host
    checked = topo(h.tag, 9000)
    before = snapshot(h)
    assert nic_mtu(h) == 1500

    plan = apply.plan_live(checked, "node1", h.target)
    assert "modify  link:eth1  mtu 1500 -> mtu 9000" in [c.line() for c in plan.changes]

    result = apply.up(checked, "node1", h.target)
    assert "link:eth1" in [c.resource for c in result.applied]
    assert nic_mtu(h) == 9000
    assert saved_mtus(h, h.tag) == {"eth1": 1500}
    assert ping(h.ns, "192.168.10.1")  # the host still reaches its gateway over the trunk

    again = apply.up(checked, "node1", h.target)
    assert again.applied == () and again.plan.empty
    assert nic_mtu(h) == 9000

    # Changed by hand: status (the real command) reports it, exit 1.
    sh("ip", "-n", h.ns, "link", "set", "dev", "eth1", "mtu", "1400")
    topo_file = tmp_path / "t.toml"
    topo_file.write_text(text(h.tag, 9000))
    where = ["--host", "node1", "--db", h.ovs.remote, "--netns", h.ns, "--state-dir", h.target.state_dir, "--resolv-conf", str(h.resolv)]
    st = subprocess.run([sys.executable, "-m", "ovsnet", "status", str(topo_file), *where, "--json"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert st.returncode == 1, st.stderr
    body = json.loads(st.stdout)
    assert [(c["resource"], c["before"], c["after"]) for c in body["changes"]] == [("link:eth1", "mtu 1400", "mtu 9000")]
    human = subprocess.run([sys.executable, "-m", "ovsnet", "status", str(topo_file), *where], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert human.returncode == 1 and "modify  link:eth1  mtu 1400 -> mtu 9000" in human.stdout

    apply.up(checked, "node1", h.target)  # repairs it
    assert nic_mtu(h) == 9000
    assert saved_mtus(h, h.tag) == {"eth1": 1500}  # still the original, not the hand-made 1400

    apply.down(checked, "node1", h.target)
    assert nic_mtu(h) == 1500
    after = snapshot(h)
    assert after == before
    assert saved_mtus(h, h.tag) is None


def test_down_restores_the_exact_original_mtu_after_an_edit(lab_host):
    """Original 1450; up at 9000, the file edited to 8000 and applied; down gives back 1450."""
    h = lab_host
    sh("ip", "-n", h.ns, "link", "set", "dev", "eth1", "mtu", "1450")
    apply.up(topo(h.tag, 9000), "node1", h.target)
    assert nic_mtu(h) == 9000
    edited = apply.up(topo(h.tag, 8000), "node1", h.target)
    assert [c.line() for c in edited.applied] == ["modify  link:eth1  mtu 9000 -> mtu 8000"]
    assert nic_mtu(h) == 8000 and saved_mtus(h, h.tag) == {"eth1": 1450}
    apply.down(topo(h.tag, 8000), "node1", h.target)
    assert nic_mtu(h) == 1450


def test_failed_run_puts_the_mtu_and_the_state_file_back(lab_host):
    """A run that fails after the MTU change: the MTU is rolled back and the state file is as before."""
    h = lab_host
    apply.up(topo(h.tag, 1500), "node1", h.target)
    path = record.path_for(h.target.state_dir, f"t{h.tag}", "node1")
    saved_before = path.read_text()
    assert saved_mtus(h, h.tag) == {}

    def boom(change):
        if change.resource == "link:eth1":
            raise RuntimeError("injected failure after the MTU change")

    with pytest.raises(apply.ApplyFailed, match="injected failure") as err:
        apply.up(topo(h.tag, 9000), "node1", h.target, apply.UpOptions(after_change=boom))
    assert "link:eth1" in err.value.undone and not err.value.undo_errors
    assert nic_mtu(h) == 1500
    assert path.read_text() == saved_before
    apply.down(topo(h.tag, 1500), "node1", h.target)
    assert nic_mtu(h) == 1500 and not path.exists()



def test_without_mtu_in_the_file_the_nics_mtu_is_left_alone(lab_host):
    """A NIC already at jumbo MTU stays there when the topology never mentions mtu."""
    h = lab_host
    sh("ip", "-n", h.ns, "link", "set", "dev", "eth1", "mtu", "9000")
    t = check(parse(node1(f"t{h.tag}"), "test.toml"))
    assert t.topology.hosts["node1"].uplinks[0].mtu is None
    done = apply.up(t, "node1", h.target)
    assert not [c for c in done.applied if c.resource == "link:eth1"]
    assert nic_mtu(h) == 9000
    apply.down(t, "node1", h.target)
    assert nic_mtu(h) == 9000
