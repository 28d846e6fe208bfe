"""The lab's state file: written before each thing is made, read by every later command.

`teardown.destroy` removes a half-built lab, or one whose builder crashed, from this
file alone; `load_lab` gives a later process the Lab that build() returned.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ovsnet.errors import UsageError
from ovsnet.lab import layout
from ovsnet.lab.layout import LabLayout
from ovsnet.lab.names import OVS_PROGRAMS, Lab, LabNames, OvsRun, default_lab_dir
from ovsnet.topology.model import Topology

STATE_FILE = "lab.json"
STATE_FORMAT = 1


class Ledger:
    """The lab's state file, rewritten (atomically) before each thing is made."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data

    @classmethod
    def begin(cls, lab_dir: Path, names: LabNames, topo: Topology) -> Ledger:
        lab_dir.mkdir(parents=True, exist_ok=True)
        ledger = cls(
            lab_dir / STATE_FILE,
            {
                "format": STATE_FORMAT,
                "prefix": names.prefix,
                "topology": topo.name,
                "source": topo.source,
                "lab_dir": str(lab_dir),
                "complete": False,
                "names": _names_json(names),
                "namespaces": [],
                "ovs": {},
                "etc_netns": [],
                "switch_ports": {},
            },
        )
        ledger.save()
        return ledger

    @classmethod
    def reopen(cls, lab_dir: Path) -> Ledger:
        """The state file of a lab built earlier, to record what is added to it (lab/ssh.py)."""
        data = read_state(lab_dir)
        if not data:
            raise UsageError(f"no lab state file in {lab_dir}")
        return cls(lab_dir / STATE_FILE, data)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

    def namespace(self, name: str) -> None:
        self.data["namespaces"].append(name)
        self.save()

    def ovs(self, run: OvsRun) -> None:
        self.data["ovs"][run.namespace] = {"rundir": run.rundir, "pids": {}}
        self.save()

    def ovs_pids(self, run: OvsRun, pids: Mapping[str, int]) -> None:
        self.data["ovs"][run.namespace]["pids"] = dict(pids)
        self.save()

    def etc_netns(self, name: str) -> None:
        self.data["etc_netns"].append(name)
        self.save()

    def station(self, name: str, namespace: str) -> None:
        self.data.setdefault("stations", {})[name] = namespace
        self.save()

    def complete(self, switch_ports: Mapping[str, str], built: LabLayout) -> None:
        self.data["switch_ports"] = dict(switch_ports)
        self.data["layout"] = layout.to_json(built)
        self.data["complete"] = True
        self.save()

    def converged(self, names: LabNames, built: LabLayout, topo: Topology | None = None) -> None:
        """What the lab is made of now (after each stage of `lab up` on a built lab)."""
        self.data["names"] = _names_json(names)
        self.data["layout"] = layout.to_json(built)
        self.data["switch_ports"] = {w.key: w.far for w in built.wires.values() if built.switch and w.far_node == built.switch}
        if topo is not None:
            self.data["source"] = topo.source
        self.save()

    def forget(self, ns: str) -> None:
        """A namespace removed with everything in it (a host or endpoint the edit took out)."""
        self.data["namespaces"] = [n for n in self.data["namespaces"] if n != ns]
        self.data["ovs"].pop(ns, None)
        self.data["etc_netns"] = [n for n in self.data["etc_netns"] if n != ns]
        self.save()

    def docker(self, hosts: Sequence[str] = ()) -> None:
        """The lab runs Docker (`lab up --docker`), with a dockerd in these hosts."""
        self.data["docker"] = True
        if isinstance(self.data.get("layout"), dict):
            self.data["layout"]["docker"] = sorted(set(self.data["layout"].get("docker", [])) | set(hosts))
        self.save()


def _names_json(names: LabNames) -> dict[str, Any]:
    return {
        "hosts": list(names.hosts),
        "endpoints": list(names.endpoints),
        "switch": names.switch,
        "router": names.router,
        "host_numbers": names.all_host_numbers(),
        "endpoint_numbers": names.all_endpoint_numbers(),
    }


def recorded_names(data: Mapping[str, Any]) -> LabNames:
    """The names of the lab as built (or last converged), from its state file."""
    raw = data.get("names", {})
    hosts = tuple(str(h) for h in raw.get("hosts", ()))
    endpoints = tuple(str(e) for e in raw.get("endpoints", ()))
    return LabNames(
        prefix=str(data.get("prefix")),
        hosts=hosts,
        endpoints=endpoints,
        switch=raw.get("switch"),
        router=raw.get("router"),
        # A lab built before numbers were recorded was numbered in its file's order.
        host_numbers={str(h): int(n) for h, n in raw.get("host_numbers", {}).items()},
        endpoint_numbers={str(e): int(n) for e, n in raw.get("endpoint_numbers", {}).items()},
    )


def recorded_layout(data: Mapping[str, Any]) -> LabLayout | None:
    """What the lab was made of when last built or converged; None when the state file does not say."""
    raw = data.get("layout")
    if not isinstance(raw, dict):
        return None
    try:
        return layout.from_json(raw)
    except (KeyError, TypeError, ValueError):
        return None


def read_state(lab_dir: Path) -> dict[str, Any]:
    """The state file, or {} when it is missing or unreadable (down must still work)."""
    try:
        data = json.loads((lab_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_lab(topo: Topology, prefix: str | None = None, lab_dir: str | os.PathLike[str] | None = None) -> Lab:
    """The Lab of an earlier build(), from its state file (for commands run in a later process)."""
    names = LabNames.for_topology(topo, prefix)
    where = Path(lab_dir or default_lab_dir(names.prefix)).resolve()
    data = read_state(where)
    if not data:
        raise UsageError(f"no lab {names.prefix} at {where}: build it first")
    if data.get("prefix") == names.prefix:
        # Numbered as the lab was built: an edited file's new hosts come after the lab's.
        names = LabNames.for_topology(topo, prefix, before=recorded_names(data))
    if data.get("prefix") != names.prefix or data.get("topology") != topo.name:
        raise UsageError(f"the lab at {where} is {data.get('prefix')} of topology {data.get('topology')!r}, not this one")
    if not data.get("complete"):
        raise UsageError(f"lab {names.prefix} was not completely built; destroy it and build again")
    ovs = {ns: OvsRun(ns, info["rundir"]) for ns, info in data["ovs"].items()}
    stations = {n: ns for n, ns in data.get("stations", {}).items() if isinstance(ns, str) and names.owns(ns)}
    return Lab(topo, names, where, ovs, dict(data.get("switch_ports", {})), stations)


def pidfile_pids(rundir: Path) -> dict[str, int]:
    pids = {}
    for program in OVS_PROGRAMS:
        try:
            pids[program] = int((rundir / f"{program}.pid").read_text().strip())
        except (OSError, ValueError):
            continue
    return pids
