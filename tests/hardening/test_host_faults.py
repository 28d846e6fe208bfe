"""The host changing under ovsnet: interfaces vanishing, names taken, the state file lost or corrupt.

Each test ends with the host as it was (down) or as ovsnet left it after a
refusal, compared with a full dump by ip and ovs-vsctl; foreign objects are
compared on every path.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from hardening_kit import (
    RESOLV,
    TOPOLOGY,
    assert_nothing_of_ours,
    assert_same,
    foreign_snapshot,
    host_snapshot,
)

from ovsnet import apply
from ovsnet.apply import record
from ovsnet.errors import BackendError, RefusedError

pytestmark = pytest.mark.root


def _target(h):
    return dataclasses.replace(h.target, gateway_timeout=30.0)


def _state_file(h) -> Path:
    return Path(h.target.state_dir) / h.topology_name / "node1.json"


# --- an interface vanishing between plan and apply ----------------------------------


def _up_losing_a_link(h, after: str, link: str, target=None) -> apply.ApplyFailed:
    """Run up; someone deletes `link` right after ovsnet made the change `after`. Up must fail."""

    def hook(change):
        if change.resource == after:
            h.ip("link", "del", link)

    with pytest.raises(apply.ApplyFailed) as err:
        apply.up(h.checked(), "node1", target or _target(h), apply.UpOptions(after_change=hook))
    return err.value


def _vanish_br_web(h):
    """Someone deletes br-web right after ovsnet created it, before the veth joins it."""
    return _up_losing_a_link(h, "link:br-web", "br-web")


def test_bridge_vanishing_mid_apply_fails_clearly_and_up_again_converges(host):
    h = host
    before = host_snapshot(h)
    foreign = foreign_snapshot(h)
    err = _vanish_br_web(h)
    assert "br-web" in str(err) and "rolled back" in str(err), err
    assert err.exit_code == 3
    assert_same(foreign, foreign_snapshot(h), "br-web vanished")
    # Whatever the rollback left, it is ovsnet's and a plain up/down handles it.
    apply.up(h.checked(), "node1", _target(h))
    assert apply.drift(h.checked(), "node1", h.target).empty
    apply.down(h.checked(), "node1", h.target)
    assert_same(before, host_snapshot(h), "br-web vanished, up, down")
    assert_nothing_of_ours(h)


def test_rollback_undoes_a_change_that_failed_part_way(host):
    h = host
    before = host_snapshot(h)
    _vanish_br_web(h)
    try:
        assert_same(before, host_snapshot(h), "rollback after br-web vanished")
    finally:
        apply.up(h.checked(), "node1", _target(h))
        apply.down(h.checked(), "node1", h.target)


def test_rollback_of_a_vanished_link_is_not_an_undo_error(host):
    h = host
    err = _vanish_br_web(h)
    try:
        assert err.undo_errors == [], err.undo_errors
    finally:
        apply.up(h.checked(), "node1", _target(h))
        apply.down(h.checked(), "node1", h.target)


def _vanish_veth_before_transaction(h):
    # Deleting one end is enough: the kernel removes both. After the last Linux
    # change (the bridge ends' TX checksumming, on this netdev bridge), so that
    # nothing but the OVS transaction can notice.
    return _up_losing_a_link(h, "link:lnx-br-db", "ovs-br-web", dataclasses.replace(_target(h), ovs_timeout=5.0))


def test_veth_vanishing_before_the_ovs_transaction_rolls_back(host):
    """OVS cannot open the port: exit 4 naming it, the OVSDB rows are taken out again."""
    h = host
    before = host_snapshot(h)
    foreign = foreign_snapshot(h)
    err = _vanish_veth_before_transaction(h)
    msg = str(err)
    assert err.exit_code == 4
    assert "could not set up ovs-br-web" in msg and "rolled back" in msg, msg
    assert_same(before, host_snapshot(h), "veth vanished before the transaction")
    assert_same(foreign, foreign_snapshot(h))
    assert_nothing_of_ours(h)
    apply.up(h.checked(), "node1", _target(h))
    apply.down(h.checked(), "node1", h.target)
    assert_same(before, host_snapshot(h))


def test_failed_at_names_the_ovs_transaction_not_the_next_step(host):
    h = host
    err = _vanish_veth_before_transaction(h)
    assert err.failed.startswith("the OVSDB transaction"), err.failed


def test_veth_deleted_between_plan_and_up_is_planned_again(host):
    """`plan` shows one change; a veth is deleted before `up`: up re-reads, converges, verifies."""
    h = host
    before = host_snapshot(h)
    assert h.cli("up").returncode == 0
    edited = h.workdir / "edited.toml"
    edited.write_text(h.text().replace('bridge = "br-db"\nvlan = "db"', 'bridge = "br-db"\nvlan = "web"'))
    p = h.cli("plan", "--json", file=edited)
    assert p.returncode == 0, p.stderr
    assert [c["resource"] for c in json.loads(p.stdout)["changes"]] == ["port:br-ovs/ovs-br-db"]
    h.ip("link", "del", "ovs-br-db")  # someone else, between plan and up
    foreign = foreign_snapshot(h)
    r = h.cli("up", "--json", file=edited)
    assert r.returncode == 0, r.stderr
    assert {c["resource"] for c in json.loads(r.stdout)["changes"]} >= {"veth:ovs-br-db/lnx-br-db", "port:br-ovs/ovs-br-db"}
    assert h.cli("status", file=edited).returncode == 0
    assert h.vsctl("get", "Port", "ovs-br-db", "tag") == "100"
    assert_same(foreign, foreign_snapshot(h))
    assert h.cli("down", file=edited).returncode == 0
    assert_same(before, host_snapshot(h), "vanished between plan and up, then down")


# --- a name already taken by a foreign object ---------------------------------------


TAKEN = [
    ("br-web", ["link", "add", "br-web", "type", "bridge"]),  # a Docker bridge's name
    ("lnx-br-db", ["link", "add", "lnx-br-db", "type", "bridge"]),  # a patch end's name
    ("ovs-br-web", ["link", "add", "ovs-br-web", "type", "veth", "peer", "name", "zz-peer"]),
    ("ovs-br-db", "ovs-port"),  # an OVS port of ours, on the foreign OVS bridge
    ("br-ovs", "ovs-bridge"),  # the OVS bridge itself, made by someone else
]


def test_name_taken_by_a_foreign_object_is_refused_and_nothing_changes(host):
    h = host
    for name, make in TAKEN:
        if make == "ovs-port":
            h.ip("link", "add", name, "type", "veth", "peer", "name", "zz-peer")
            h.vsctl("add-port", "fbr", name)
        elif make == "ovs-bridge":
            h.vsctl("add-br", name, "--", "set", "Bridge", name, "datapath_type=netdev")
        else:
            h.ip(*make)
        before = host_snapshot(h)
        r = h.cli("up")
        assert r.returncode == 5, (name, r.returncode, r.stderr)
        assert "refusing to apply; nothing was changed" in r.stderr and name in r.stderr, r.stderr
        assert_same(before, host_snapshot(h), f"refused ({name} taken)")
        assert h.state_files() == []
        with pytest.raises(RefusedError, match=name):
            apply.up(h.checked(), "node1", h.target)
        # Take the foreign object away again for the next case.
        if make == "ovs-port":
            h.vsctl("del-port", "fbr", name)
            h.ip("link", "del", name)
        elif make == "ovs-bridge":
            h.vsctl("del-br", name)
        else:
            h.ip("link", "del", name)


def test_management_port_name_taken_changes_nothing(host):
    """A foreign link named like the internal port: OVS cannot create it; rolled back, exit 4."""
    h = host
    h.ip("link", "add", "mgmt0", "type", "bridge")
    h.ip("addr", "add", "10.44.0.1/24", "dev", "mgmt0")
    before = host_snapshot(h)
    r = h.cli("up")
    assert r.returncode in (4, 5), (r.returncode, r.stderr)
    assert "mgmt0" in r.stderr, r.stderr
    assert_same(before, host_snapshot(h), "mgmt0 taken")
    assert h.state_files() == []


def test_management_port_name_taken_is_refused_before_any_change(host):
    h = host
    h.ip("link", "add", "mgmt0", "type", "bridge")
    r = h.cli("up")
    assert r.returncode == 5, (r.returncode, r.stderr)
    assert "nothing was changed" in r.stderr


def test_linux_link_named_like_the_ovs_bridge_is_left_alone(host):
    """ovsnet makes no local port for its bridge, so a Linux br-ovs does not collide; down keeps it."""
    h = host
    h.ip("link", "add", "br-ovs", "type", "bridge")
    h.ip("addr", "add", "10.55.0.1/24", "dev", "br-ovs")
    before = host_snapshot(h)
    theirs = [l for l in before["links"] if l[0] == "br-ovs"]
    r = h.cli("up")
    assert r.returncode == 0, r.stderr
    assert [l for l in host_snapshot(h)["links"] if l[0] == "br-ovs"] == theirs
    assert h.cli("down").returncode == 0
    assert_same(before, host_snapshot(h), "Linux br-ovs")


# --- the state file ---------------------------------------------------------------------


def test_state_file_missing_down_uses_the_copy_in_ovsdb(host):
    """The state file is gone: its copy in the OVS bridge's external_ids gives back everything, DNS included."""
    h = host
    before = host_snapshot(h)
    foreign = foreign_snapshot(h)
    assert h.cli("up").returncode == 0
    copy = json.loads(json.loads(h.vsctl("get", "Bridge", "br-ovs", "external_ids:ovsnet-record")))
    assert copy == json.loads(_state_file(h).read_text())
    _state_file(h).unlink()
    r = h.cli("down")
    assert r.returncode == 0, r.stderr
    assert "no state file at" in r.stderr and "using the copy of the record kept in OVSDB" in r.stderr, r.stderr
    assert_same(before, host_snapshot(h), "down from the OVSDB copy")
    assert_same(foreign, foreign_snapshot(h))
    assert_nothing_of_ours(h)


def test_state_file_and_copy_missing_down_falls_back_to_the_management_section(host):
    """Documented fallback (docs/reliability.md): the topology's addresses and gateway."""
    h = host
    before = host_snapshot(h)
    foreign = foreign_snapshot(h)
    assert h.cli("up").returncode == 0
    _state_file(h).unlink()
    h.vsctl("remove", "Bridge", "br-ovs", "external_ids", "ovsnet-record")
    r = h.cli("down")
    assert r.returncode == 0, r.stderr
    assert "no saved state for eth1" in r.stderr, r.stderr
    after = host_snapshot(h)
    assert after["links"] == before["links"] and after["addrs"] == before["addrs"]
    routes = [json.loads(x) for x in after["routes"]]
    assert any(x["dst"] == "default" and x["dev"] == "eth1" and x["gateway"] == "192.168.10.1" for x in routes), routes
    assert after["ovs"] == before["ovs"]
    assert_same(foreign, foreign_snapshot(h))
    assert_nothing_of_ours(h)
    # Not in the topology, so not restorable without a record: the DNS servers
    # stay as ovsnet set them (documented in docs/reliability.md).
    assert after["resolv.conf"][0] == ("nameserver 192.168.10.1",)


CORRUPT = {
    "empty": b"",
    "truncated": b'{"format": 1, "topology": "x", "ho',
    "binary": b"\xff\xfe\x00\x01garbage",
    "empty-object": b"{}",
    "wrong-format": b'{"format": 99, "topology": "x", "host": "node1", "uplink": null}',
    "missing-keys": b'{"format": 1}',
    "uplink-not-a-table": b'{"format": 1, "topology": "x", "host": "node1", "uplink": "eth1"}',
    "route-bad-fields": b'{"format": 1, "topology": "x", "host": "node1", "uplink": {"nic": "eth1", "addresses": [], "routes": [{"via": 1}], "dns": null}}',
}


def test_state_file_corrupt_is_a_clear_error_and_changes_nothing(host):
    h = host
    assert h.cli("up").returncode == 0
    converged = host_snapshot(h)
    sf = _state_file(h)
    for i, (kind, body) in enumerate(sorted(CORRUPT.items())):
        sf.write_bytes(body)
        for verb in (("down", "up", "status") if i == 0 else ("down",)):
            r = h.cli(verb)
            assert r.returncode == 3, (kind, verb, r.returncode, r.stderr)
            assert f"state file {sf} is corrupt" in r.stderr and "move it aside" in r.stderr, (kind, r.stderr)
        with pytest.raises(BackendError, match="is corrupt"):
            apply.drift(h.checked(), "node1", h.target)
    assert_same(converged, host_snapshot(h), "corrupt state files")
    # As the message says: move it aside, and down restores from the topology.
    sf.rename(sf.with_suffix(".bad"))
    assert h.cli("down").returncode == 0
    assert_nothing_of_ours(h)


@pytest.mark.parametrize("kind", ["json-list", "json-null", "directory"])
def test_state_file_not_an_object_is_a_clear_error(kind, tmp_path):
    """No host needed: `down` reads the state file before it connects to anything."""
    from typer.testing import CliRunner

    from ovsnet.cli import app

    topo = tmp_path / "t.toml"
    topo.write_text(TOPOLOGY.format(tag="sf"))
    sf = record.path_for(tmp_path / "state", "hsf", "node1")
    sf.parent.mkdir(parents=True)
    if kind == "directory":
        sf.mkdir()
    else:
        sf.write_text("[]" if kind == "json-list" else "null")
    r = CliRunner().invoke(app, ["down", str(topo), "--host", "node1", "--db", f"unix:{tmp_path}/none.sock",
                                 "--netns", "ohd-none", "--state-dir", str(tmp_path / "state")])
    assert r.exit_code == 3, (r.exit_code, r.stderr)
    assert "is corrupt" in r.stderr, r.stderr


def test_state_file_with_nonsense_addresses_stops_down_before_any_change(host):
    h = host
    assert h.cli("up").returncode == 0
    body = json.loads(_state_file(h).read_text())
    body["parts"]["uplink"]["addresses"] = "abc"  # a string where a list of CIDRs belongs
    _state_file(h).write_text(json.dumps(body))
    converged = host_snapshot(h)
    r = h.cli("down")
    assert r.returncode == 3, r.stderr
    assert "is corrupt (uplink addresses and routes must be lists)" in r.stderr, r.stderr
    body["parts"]["uplink"]["addresses"] = ["192.168.10.11/24", "abc"]
    _state_file(h).write_text(json.dumps(body))
    r = h.cli("down")
    assert r.returncode == 3 and "is corrupt" in r.stderr and "abc" in r.stderr, r.stderr
    assert_same(converged, host_snapshot(h), "nonsense state file")
    _state_file(h).unlink()
    assert h.cli("down").returncode == 0


# --- resolv.conf restored byte for byte ----------------------------------------------------


def test_resolv_conf_restored_byte_for_byte(host):
    h = host
    assert h.resolv.read_text() == RESOLV
    apply.up(h.checked(), "node1", _target(h))
    apply.down(h.checked(), "node1", h.target)
    assert h.resolv.read_text() == RESOLV


def test_resolv_conf_symlink_survives(host, tmp_path):
    """resolv.conf is often a symlink (systemd-resolved): ovsnet writes through it and keeps it."""
    h = host
    real = tmp_path / "real-resolv.conf"
    shutil.move(h.resolv, real)
    h.resolv.symlink_to(real)
    apply.up(h.checked(), "node1", _target(h))
    assert h.resolv.is_symlink() and "nameserver 192.168.10.1" in real.read_text()
    apply.down(h.checked(), "node1", h.target)
    assert h.resolv.is_symlink()
    assert "nameserver 9.9.9.9" in real.read_text()
