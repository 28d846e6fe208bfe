"""`ovsnet lab up`: build the simulated network, then configure every host
with the very same apply code as `ovsnet up`, pointed at its namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ovsnet import apply
from ovsnet.lab import build
from ovsnet.topology import Checked


def up(checked: Checked, prefix: str | None = None, lab_dir: Path | None = None, report: Callable[[str], None] = lambda _m: None) -> build.Lab:
    lab = build.build(checked.topology, prefix, lab_dir)
    try:
        report(f"lab {lab.prefix}: {len(lab.namespaces)} namespaces built")
        for host, target in build.targets(lab).items():
            result = apply.up(checked, host, target, report=report)
            report(f"{host}: {len(result.applied)} changes applied in {result.seconds:.2f} s")
        build.attach_endpoints(lab)
    except BaseException:
        # A half-built lab is of no use to anyone: remove all of it.
        build.destroy(lab.prefix, lab.lab_dir)
        raise
    return lab


def down(checked: Checked, prefix: str | None = None, lab_dir: Path | None = None) -> str:
    names = build.LabNames.for_topology(checked.topology, prefix)
    build.destroy(names.prefix, lab_dir)
    return names.prefix
