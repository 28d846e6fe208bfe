"""A host's desired objects as plain data: what `ovsnet import` must give back."""

from __future__ import annotations

import dataclasses

from ovsnet.plan import planner


def shape(topo, host):
    """Each kind's desired objects with VLANs by id and no reasons, sorted."""
    d = planner.desire(topo, topo.hosts[host])
    ids = {v.name: v.id for v in topo.vlans.values()}
    out = {}
    for kind, objs in d.parts.items():
        rows = []
        for o in objs:
            f = dataclasses.asdict(o)
            f.pop("reason", None)
            if isinstance(f.get("vlan"), str):
                f["vlan"] = ids[f["vlan"]]
            rows.append(f)
        out[kind] = sorted(rows, key=repr)
    # An uplink MTU written as the default (1500) sets what the NIC already
    # has: import cannot tell it from "leave it", and writes nothing.
    out["nic"] = sorted(({**r, "mtu": None if r.get("mtu") == 1500 else r.get("mtu")} for r in out.get("nic", [])), key=repr)
    return out
