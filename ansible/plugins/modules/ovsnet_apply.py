#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ovsnet developers; Apache-2.0
"""ovsnet_apply: make a host match its part of the topology (ovsnet up), or take it down (ovsnet down)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ovsnet_apply
short_description: Apply an ovsnet topology to this host (up), or remove it (down)
description:
  - C(state=present) runs ovsnet's C(up) for O(host) through the ovsnet library on the target,
    with all of its safety - refusal before any change when something in the way is not ovsnet's,
    the gateway check after the host's address moves, and automatic rollback on any failure.
  - C(state=absent) runs ovsnet's C(down), which restores the NIC as it was before ovsnet.
  - Check mode reads the host and computes the plan without changing anything; the task is
    C(changed) exactly when the plan is not empty. Diff mode shows the plan as before/after lines.
  - Failures carry ovsnet's own message and exit code (2 bad input, 3 backend, 4 rolled back,
    5 refused, 6 locked).
version_added: 0.1.0
author: ovsnet developers
options:
  topology:
    description: The topology file on the target.
    type: path
    required: true
  host:
    description: The host's name in the topology (usually the inventory hostname).
    type: str
    required: true
  state:
    description: C(present) = ovsnet up, C(absent) = ovsnet down.
    type: str
    choices: [present, absent]
    default: present
  allow_uplink_move:
    description:
      - Move the NIC's address onto the bridge even though this SSH session runs over that NIC.
      - ovsnet refuses that by default (exit 5). The rollout playbook sets it on purpose, and runs the
        task async so that a dropped connection during the move is not a failure; ovsnet still rolls
        back by itself if the gateway stops answering.
    type: bool
    default: false
  adopt:
    description: Take over bridges, ports and links that are not ovsnet's (ovsnet up --adopt).
    type: bool
    default: false
  wait:
    description: Seconds to wait for another ovsnet run on this host to release its lock.
    type: float
    default: 0
  db:
    description: The host's OVSDB (default the topology's, else unix:/var/run/openvswitch/db.sock).
    type: str
  netns:
    description: Apply inside this network namespace instead of the module's own (the SSH guard does not apply there).
    type: str
  state_dir:
    description: Where ovsnet keeps what the host had before it, and its locks (default /var/lib/ovsnet).
    type: path
  resolv_conf:
    description: The resolv.conf ovsnet writes the DNS servers to (default /etc/resolv.conf).
    type: path
  docker_host:
    description: The Docker Engine to create the networks in (default the topology's, else DOCKER_HOST).
    type: str
  datapath:
    description: Overrides the topology's OVS datapath (a simulated host has only C(netdev)).
    type: str
    choices: [system, netdev]
  gateway_timeout:
    description: Seconds the gateway may take to answer after the move before it is rolled back (default 5, at most 300).
    type: float
  gateway_check:
    description:
      - With C(state=absent), C(false) restores the NIC without asking its gateway to answer afterwards.
      - Only for a host reached out of band, whose NIC had no in-band path before ovsnet either (its
        management VLAN tagged on a switch port with no native VLAN). Refused with C(state=present).
    type: bool
    default: true
  ovs_timeout:
    description: Seconds ovs-vswitchd may take to apply a transaction (default 10).
    type: float
  docker_timeout:
    description: Seconds the Docker Engine may take to answer one call (default 10; a slow or emulated host needs more).
    type: float
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
requirements:
  - ovsnet installed for the Python that runs the module (the rollout playbook's venv)
"""

EXAMPLES = r"""
- name: Configure the host
  ovsnet.fleet.ovsnet_apply:
    topology: /etc/ovsnet/topology.toml
    host: "{{ inventory_hostname }}"
    allow_uplink_move: true

- name: Remove ovsnet's objects and restore the NIC
  ovsnet.fleet.ovsnet_apply:
    topology: /etc/ovsnet/topology.toml
    host: "{{ inventory_hostname }}"
    state: absent
"""

RETURN = r"""
plan:
  description: The plan as data (ovsnet plan --json), in order.
  returned: always
  type: dict
applied:
  description: The resources changed, in order (empty in check mode).
  returned: always
  type: list
  elements: str
seconds:
  description: How long ovsnet's own apply took.
  returned: always
  type: float
window:
  description: When ovsnet's own work began and ended (seconds since the epoch, the host's clock).
  returned: always
  type: list
  elements: float
log:
  description: ovsnet's progress lines, one per change.
  returned: always
  type: list
  elements: str
exit_code:
  description: ovsnet's exit code on failure (2 bad input, 3 backend, 4 rolled back, 5 refused, 6 locked).
  returned: failure
  type: int
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ovsnet.fleet.plugins.module_utils.ovsnet_common import TARGET_ARGS, OvsnetError, api, fail, load, plan_diff


def main():
    module = AnsibleModule(
        argument_spec=dict(
            TARGET_ARGS,
            state=dict(type="str", choices=["present", "absent"], default="present"),
            allow_uplink_move=dict(type="bool", default=False),
            adopt=dict(type="bool", default=False),
            wait=dict(type="float", default=0.0),
            gateway_check=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["gateway_check"] and p["state"] == "present":
        module.fail_json(msg="ovsnet bad input (exit 2): gateway_check: false applies to state: absent only "
                             "(on up, the gateway check is what rolls a bad move back)", exit_code=2, reason="bad input")
    checked, where = load(module)
    host, present = p["host"], p["state"] == "present"
    log = []
    started, began = time.monotonic(), time.time()
    try:
        if module.check_mode:
            plan = api.plan(checked, host, where, adopt=p["adopt"]) if present else api.plan_down(checked, host, where)
            body = api.as_data(plan)
            if plan.blockers and present:
                module.fail_json(msg="ovsnet refused (exit 5): " + "; ".join(f"{b.resource}: {b.message}" for b in plan.blockers),
                                 exit_code=5, reason="refused", plan=body)
            applied = []
        elif present:
            result = api.up(checked, host, where, adopt=p["adopt"], allow_uplink_move=p["allow_uplink_move"],
                            wait=p["wait"], report=log.append)
            plan, body, applied = result.plan, api.as_data(result), [c.resource for c in result.applied]
        else:
            result = api.down(checked, host, where, wait=p["wait"], report=log.append, gateway_check=p["gateway_check"])
            plan, body, applied = result.plan, api.as_data(result), [c.resource for c in result.applied]
    except OvsnetError as exc:
        fail(module, exc, log=log, seconds=round(time.monotonic() - started, 3))
    out = dict(
        changed=bool(plan.changes) if module.check_mode else bool(applied),
        plan=body, applied=applied, log=log, seconds=round(time.monotonic() - started, 3),
        window=[round(began, 3), round(time.time(), 3)],
    )
    if module._diff:
        out["diff"] = plan_diff(plan, "up" if present else "down")
    module.exit_json(**out)


if __name__ == "__main__":
    main()
