"""A crash at every step of an apply, then a plain `up` converges and `down` restores the host.

Two kinds of crash, each after change k for every k = 1..K (K = the number of
changes of a fresh `up` on the seed's node1):

* SIGKILL: the real CLI in a subprocess with OVSNET_TEST_CRASH_AFTER=k kills
  itself after its k-th change - no rollback, no `finally`, as a power cut
  or an OOM kill would leave it. Then `ovsnet up` must converge, `ovsnet
  status` exit 0, and `ovsnet down` leave the host exactly as before.
* An exception (UpOptions.after_change raising at change k): the run rolls
  back by itself and the host equals the before-snapshot at once.

Both hooks run inside the one netlink write path that every run uses
(ovsnet.backends.netlink.send: each request sent and acknowledged before the
next), between two changes of a group, so k = 1..K stops in the middle of
the Linux group as well as between phases; the OVSDB changes are one
transaction, so every k inside that phase stops right after its commit.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from hardening_kit import (
    LONG,
    assert_nothing_of_ours,
    assert_same,
    foreign_snapshot,
    host_snapshot,
)

from ovsnet import apply

pytestmark = pytest.mark.root

def fresh_changes(h) -> list[str]:
    return [c.resource for c in apply.plan_live(h.checked(), "node1", h.target).changes]


def cli_up_converges(h, notes: list[str]):
    """`ovsnet up` must exit 0. A silent gateway (probe timeout) is a clean rollback, retried once."""
    r = h.cli("up")
    if r.returncode == 4 and "did not answer" in r.stderr:
        # The CLI's gateway probe waits 5 s; userspace OVS on a loaded machine has been
        # seen to take longer to forward the first ARP. Rolled back: try again.
        notes.append(r.stderr.strip().splitlines()[0])
        r = h.cli("up")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r


def test_sigkill_at_every_step_then_up_converges_and_down_restores(host):
    """SIGKILL after change k, k = 1..K; then `ovsnet up` converges and `down` restores.

    The crash and the recovering `up` are real CLI subprocesses every time;
    `status` and `down` run through the CLI too at the first and last k and
    with OVSNET_LONG=1, in-process (the same core code) otherwise, to keep the
    default run short.
    """
    h = host
    before = host_snapshot(h)
    foreign = foreign_snapshot(h, full=before)
    steps = fresh_changes(h)
    assert len(steps) >= 10, steps
    notes: list[str] = []
    tried = 0
    for k in range(1, len(steps) + 1):
        crashed = h.cli("up", env={"OVSNET_TEST_CRASH_AFTER": str(k)})
        assert crashed.returncode == -9, (k, crashed.returncode, crashed.stderr)
        tried += 1
        # Dead mid-apply: what it left is its own, nothing foreign was touched.
        assert_same(foreign, foreign_snapshot(h), f"after SIGKILL at step {k} ({steps[k - 1]})")
        # A plain `up` finishes the job, whatever was left half-done.
        cli_up_converges(h, notes)
        assert h.vsctl("get", "Port", "mgmt0", "tag") == "10"
        if LONG or k in (1, len(steps)):
            st = h.cli("status", "--json")
            assert st.returncode == 0, (k, st.stdout, st.stderr)
            assert json.loads(st.stdout)["in_sync"] is True
            down = h.cli("down")
            assert down.returncode == 0, (k, down.stdout, down.stderr)
        else:
            assert apply.drift(h.checked(), "node1", h.target).empty, k
            apply.down(h.checked(), "node1", h.target)
        after = host_snapshot(h)
        assert_same(before, after, f"SIGKILL at step {k} ({steps[k - 1]}), up, down")
        assert_nothing_of_ours(h)
        assert h.state_files() == []
    # One more than K: the hook never fires, the run completes.
    whole = h.cli("up", env={"OVSNET_TEST_CRASH_AFTER": str(len(steps) + 1)})
    assert whole.returncode == 0, whole.stderr
    assert h.cli("down").returncode == 0
    assert_same(before, host_snapshot(h), "complete up + down")
    print(f"\nSIGKILL crash points tried: {tried} (K = {len(steps)}); gateway-probe retries: {len(notes)} {notes}")


def test_exception_at_every_step_rolls_back_to_the_before_snapshot(host):
    h = host
    checked = h.checked()
    target = dataclasses.replace(h.target, gateway_timeout=30.0)
    before = host_snapshot(h)
    steps = fresh_changes(h)
    tried = 0
    for k in range(1, len(steps) + 1):
        seen = [0]

        def boom(change, k=k):
            seen[0] += 1
            if seen[0] == k:
                raise RuntimeError(f"injected at step {k}")

        with pytest.raises(apply.ApplyFailed, match=f"injected at step {k}") as err:
            apply.up(checked, "node1", target, apply.UpOptions(after_change=boom))
        tried += 1
        assert err.value.undo_errors == [], (k, err.value.undo_errors)
        assert len(err.value.undone) >= 1, k
        assert err.value.exit_code == 3
        assert_same(before, host_snapshot(h), f"exception at step {k} ({steps[k - 1]})")
        assert_nothing_of_ours(h)
        assert h.state_files() == [], k
    print(f"\nexception crash points tried: {tried}")


@pytest.mark.skipif(not LONG, reason="OVSNET_LONG=1: the same SIGKILL sweep on an edit of a running host")
def test_sigkill_at_every_step_of_an_edit(host):
    """From a converged host, an edit (VLAN of br-db, a new Docker bridge); crash at every step."""
    h = host
    base = h.text()
    edited = base.replace('bridge = "br-db"\nvlan = "db"', 'bridge = "br-db"\nvlan = "web"') + '[[hosts.node1.docker]]\nbridge = "br-x"\nvlan = "db"\n'
    edit_file = h.workdir / "edited.toml"
    edit_file.write_text(edited)
    notes: list[str] = []
    before = host_snapshot(h)
    cli_up_converges(h, notes)
    converged = host_snapshot(h)
    k_max = len(apply.plan_live(h.checked(edited), "node1", h.target).changes)
    assert k_max >= 4
    for k in range(1, k_max + 1):
        r = h.cli("up", env={"OVSNET_TEST_CRASH_AFTER": str(k)}, file=edit_file)
        assert r.returncode == -9, (k, r.stderr)
        r = h.cli("up", file=edit_file)
        assert r.returncode == 0, (k, r.stderr)
        assert h.cli("status", file=edit_file).returncode == 0
        # Back to the original file: converge again to the first state.
        cli_up_converges(h, notes)
        assert h.cli("status").returncode == 0
        now = host_snapshot(h)
        # Linux objects recreated by the edit get new ifindexes; compare what matters.
        assert now["addrs"] == converged["addrs"] and now["routes"] == converged["routes"]
    assert h.cli("down").returncode == 0
    assert_same(before, host_snapshot(h), "edit sweep, down")
    print(f"\nSIGKILL crash points tried on an edit: {k_max}")


def test_a_refusal_in_the_middle_of_the_linux_group_rolls_back_and_spares_the_stranger(host):
    """Between the plan and the apply something else takes a name the plan is about to create.

    The kernel refuses that create (EEXIST) halfway through the Linux group.
    Nothing after it may run: the stranger's link is neither marked as ours,
    nor brought up, nor deleted by the rollback; the changes before it are
    undone, and the host is as before.
    """
    h = host
    before = host_snapshot(h)
    steps = fresh_changes(h)
    assert steps[:2] == ["link:br-web", "link:br-db"], steps

    def squat(change):
        if change.resource == "link:br-web":
            # A veth pair stands in for any stranger's link (this kernel has no dummy module).
            h.ip("link", "add", "br-db", "type", "veth", "peer", "name", "sq-peer")

    with pytest.raises(apply.ApplyFailed) as err:
        apply.up(h.checked(), "node1", h.target, apply.UpOptions(after_change=squat))
    text = str(err.value)
    assert "failed at link:br-db: netlink: cannot create bridge br-db" in text and "File exists" in text, text
    assert err.value.undone == ["link:br-web"], err.value.undone
    assert err.value.undo_errors == []
    stranger = json.loads(h.ip("-j", "-d", "link", "show", "dev", "br-db"))[0]
    assert stranger["linkinfo"]["info_kind"] == "veth" and "ifalias" not in stranger and "UP" not in stranger["flags"]
    h.ip("link", "del", "br-db")
    assert_same(before, host_snapshot(h), "refusal mid-group, rolled back")
    assert_nothing_of_ours(h)
    assert h.state_files() == []


def test_exception_at_every_step_of_down_rolls_back_to_the_converged_host(host):
    """`down` fails at change k, k = 1..K: the run undoes what it did, and the host is as `up` left it."""
    h = host
    checked = h.checked()
    target = dataclasses.replace(h.target, gateway_timeout=30.0)
    before = host_snapshot(h)
    apply.up(checked, "node1", target)
    converged = host_snapshot(h)
    record_before = h.state_files()
    tried = 0
    k = 1
    while True:
        seen = [0]

        def boom(change, k=k):
            seen[0] += 1
            if seen[0] == k:
                raise RuntimeError(f"injected at step {k}")

        try:
            apply.down(checked, "node1", target, after_change=boom)
        except apply.ApplyFailed as err:
            assert f"injected at step {k}" in str(err), str(err)
            assert err.undo_errors == [], (k, err.undo_errors)
            assert err.exit_code == 3
            assert "the host is as it was before this down" in str(err)
        else:
            break  # k is past the last change: this down went through
        tried += 1
        # Rolled back: everything ovsnet made is there again (row and link ids may differ).
        now = host_snapshot(h)
        assert now["addrs"] == converged["addrs"], k
        assert now["routes"] == converged["routes"], k
        assert now["resolv.conf"] == converged["resolv.conf"], k
        assert apply.drift(checked, "node1", target).empty, (k, [c.line() for c in apply.drift(checked, "node1", target).changes])
        assert h.state_files() == record_before, k
        k += 1
    assert tried >= 8, tried
    assert_same(before, host_snapshot(h), "the last down, after every failed one")
    assert_nothing_of_ours(h)
    print(f"\ndown failure points tried: {tried}")
