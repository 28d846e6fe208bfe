#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ovsnet developers; Apache-2.0
"""ovsnet_verify: this host's row of the reachability matrix, with real pings."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ovsnet_verify
short_description: Prove this host's row of the reachability matrix with real traffic
description:
  - Runs C(ovsnet verify) on the host. From the host's own network namespace it pings every station
    of the topology and compares what answered with what the topology expects (same VLAN reached,
    routed VLANs reached through the router, everything else blocked).
  - Fails the host on any mismatch, naming the pairs. Changes nothing on the host except short-lived
    probe containers, removed again, when the topology names a probe image and Docker runs there.
version_added: 0.1.0
author: ovsnet developers
options:
  topology:
    description: The topology file on the target.
    type: path
    required: true
  hosts:
    description:
      - Only the stations of these hosts count (during a rollout, the hosts configured so far;
        those of later batches are not ready yet). Default all.
    type: list
    elements: str
  endpoints:
    description: Include the topology's test endpoints (a lab plugs them in only after the rollout).
    type: bool
    default: true
  probes:
    description: Start probe containers (true), never (false), or when an image and Docker are there (unset).
    type: bool
  docker_host:
    description: The Docker Engine for the probe containers.
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Verify this host's row
  ovsnet.fleet.ovsnet_verify:
    topology: /etc/ovsnet/topology.toml
"""

RETURN = r"""
report:
  description: The matrix as data (ovsnet verify --json).
  returned: always
  type: dict
mismatches:
  description: The pairs that did not match, each as "FROM -> TO, expected ..., reached or not reached".
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ovsnet.fleet.plugins.module_utils.ovsnet_common import OvsnetError, api, fail, require_ovsnet


def main():
    module = AnsibleModule(
        argument_spec=dict(
            topology=dict(type="path", required=True),
            hosts=dict(type="list", elements="str"),
            endpoints=dict(type="bool", default=True),
            probes=dict(type="bool"),
            docker_host=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    require_ovsnet(module)
    p = module.params
    log = []
    try:
        checked = api.load(p["topology"])
        report = api.verify(checked, probes=p["probes"], docker_host=p["docker_host"], hosts=p["hosts"],
                            endpoints=p["endpoints"], report=log.append)
    except OvsnetError as exc:
        fail(module, exc, log=log)
    body = api.as_data(report)
    bad = [f"{m['src']} -> {m['dst']}, expected {m['expect']}, {'reached' if m['reached'] else 'not reached'}" for m in body["mismatches"]]
    bad += [str(x) for x in body["problems"]]
    if not report.ok:
        module.fail_json(msg=f"ovsnet verify: {len(bad)} mismatches: " + "; ".join(bad[:10]), exit_code=1,
                         reason="verify mismatch", report=body, mismatches=bad, log=log)
    module.exit_json(changed=False, report=body, mismatches=bad, log=log)


if __name__ == "__main__":
    main()
