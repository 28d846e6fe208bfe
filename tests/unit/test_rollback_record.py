"""The record after a rollback that could not undo everything (ovsnet.apply.run).

Seen on the VMs (NetworkManager with DHCP, issue 15): an `up` failed, its
rollback could not undo one change, and the record kept every part the run had
added; a later run took that uplink part for the host's original state. Now a
part stays only when its kind has a change left in place; the others go back
to what the record said before the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from ovsnet.apply import record
from ovsnet.apply.run import ApplyFailed, _apply
from ovsnet.current import Route
from ovsnet.errors import BackendError
from ovsnet.kinds.handover import SavedHandover
from ovsnet.kinds.uplink import SavedUplink
from ovsnet.plan.model import Action, Change, Phase, Plan

UPLINK = SavedUplink("eth1", ("192.168.10.120/24",), (Route("default", "eth1", "192.168.10.1", 0, "dhcp"),))
HANDOVER = SavedHandover("networkmanager", "eth1", "mgmt0", files=(("/etc/NetworkManager/conf.d/90-ovsnet-ho.conf", None),))
OLDER = SavedUplink("eth1", ("192.168.10.11/24",), ())


@dataclass(frozen=True)
class Op:
    name: str
    fails: bool = False
    backend: ClassVar[str] = "fake"


class FakeLive:
    """Runs ops one group at a time; an op marked `fails` raises, as a backend would."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    @staticmethod
    def report(_line: str) -> None:
        pass

    def apply_groups(self, backend: str, groups: Any, on_group: Any, wait: bool = True) -> None:
        for i, ops in enumerate(groups):
            for op in ops:
                if op.fails:
                    exc = BackendError(f"{op.name} failed")
                    exc.failed, exc.touched = i, tuple(range(i))  # type: ignore[attr-defined]
                    raise exc
                self.ran.append(op.name)
            if on_group is not None:
                on_group(i)


def plan(undo_fails: str | None) -> Plan:
    """The uplink moves the address, the handover writes a file, then the manager fails (no lease)."""
    changes = (
        Change(Action.MODIFY, "address:mgmt0/192.168.10.120/24", Phase.UPLINK, "moved", ops=(Op("move"),),
               undo=(Op("move back", fails=undo_fails == "uplink"),), kind="uplink"),
        Change(Action.CREATE, "file:/etc/NetworkManager/conf.d/90-ovsnet-ho.conf", Phase.HANDOVER, "written", ops=(Op("write"),),
               undo=(Op("remove", fails=undo_fails == "handover"),), kind="handover"),
        Change(Action.MODIFY, "manager:networkmanager", Phase.HANDOVER, "reads", ops=(Op("connection up", fails=True),), kind="handover"),
    )
    return Plan("ho", "node1", changes, keep={"uplink": UPLINK, "handover": HANDOVER})


def run(tmp_path, undo_fails: str | None, before: record.Record | None) -> tuple[ApplyFailed, record.Record | None]:
    if before is not None:
        record.write(tmp_path, before)
    target = SimpleNamespace(state_dir=tmp_path)
    with pytest.raises(ApplyFailed) as err:
        _apply(plan(undo_fails), FakeLive(), target, "ho", "node1", None, "up")  # type: ignore[arg-type]
    return err.value, record.read(tmp_path, "ho", "node1")


def test_a_rollback_that_undid_everything_leaves_no_record(tmp_path):
    err, left = run(tmp_path, None, None)
    assert err.undo_errors == [] and left is None


def test_a_kind_whose_undo_failed_keeps_its_part_and_only_that(tmp_path):
    err, left = run(tmp_path, "handover", None)
    assert err.undo_errors == ["file:/etc/NetworkManager/conf.d/90-ovsnet-ho.conf (remove failed)"]
    # The manager's file is still there: down must know what it was. The address came back to
    # eth1: the uplink part, the NIC before this run, would be stale for a later down.
    assert left is not None and dict(left.parts) == {"handover": HANDOVER}

    err, left = run(tmp_path / "b", "uplink", None)
    assert err.undo_errors == ["address:mgmt0/192.168.10.120/24 (move back failed)"]
    assert left is not None and dict(left.parts) == {"uplink": UPLINK}


def test_a_record_from_an_earlier_run_is_kept_as_it_was(tmp_path):
    older = record.Record("ho", "node1", {"uplink": OLDER})
    err, left = run(tmp_path, "handover", older)
    # The older uplink part wins (it is the host before ovsnet); the stuck handover's part joins it.
    assert err.undo_errors and left == record.Record("ho", "node1", {"uplink": OLDER, "handover": HANDOVER})
    err, left = run(tmp_path / "b", None, older)
    assert not err.undo_errors and left == older
