#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ovsnet developers; Apache-2.0
"""ovsnet_status: what ovsnet up would change on this host now (drift), as facts."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ovsnet_status
short_description: Report a host's drift from its part of the topology, as facts
description:
  - Reads the host and computes the plan C(ovsnet up) would run now (C(ovsnet status)). Changes nothing.
  - Sets the fact C(ovsnet) with C(in_sync), C(exit_status) (0 in sync, 1 drift), C(drift),
    the pending changes as data, and C(health), what is configured as declared but not working
    (a bond's member down, LACP not negotiated), which counts as drift too. The task is never
    C(changed) and fails only on an ovsnet error (with ovsnet's message and exit code).
version_added: 0.1.0
author: ovsnet developers
options:
  topology:
    description: The topology file on the target.
    type: path
    required: true
  host:
    description: The host's name in the topology.
    type: str
    required: true
  db:
    description: The host's OVSDB.
    type: str
  netns:
    description: Read inside this network namespace.
    type: str
  state_dir:
    description: Where ovsnet keeps its record of the host.
    type: path
  resolv_conf:
    description: The resolv.conf ovsnet manages.
    type: path
  docker_host:
    description: The Docker Engine.
    type: str
  datapath:
    description: Overrides the topology's OVS datapath.
    type: str
    choices: [system, netdev]
  gateway_timeout:
    description: Not used by a read; accepted so that one set of variables serves every module.
    type: float
  ovs_timeout:
    description: Not used by a read; accepted so that one set of variables serves every module.
    type: float
  docker_timeout:
    description: Seconds the Docker Engine may take to answer one call (default 10).
    type: float
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Drift of every host
  ovsnet.fleet.ovsnet_status:
    topology: /etc/ovsnet/topology.toml
    host: "{{ inventory_hostname }}"

- name: Show the hosts that drifted
  ansible.builtin.debug:
    var: ansible_facts.ovsnet.drift
  when: not ansible_facts.ovsnet.in_sync
"""

RETURN = r"""
ansible_facts:
  description: C(ovsnet) with in_sync (bool), exit_status (0 or 1), drift (list of changes) and health (list of findings).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ovsnet.fleet.plugins.module_utils.ovsnet_common import TARGET_ARGS, OvsnetError, api, fail, load


def main():
    module = AnsibleModule(argument_spec=dict(TARGET_ARGS), supports_check_mode=True)
    checked, where = load(module)
    try:
        plan = api.status(checked, module.params["host"], where)
    except OvsnetError as exc:
        fail(module, exc)
    body = api.as_data(plan)
    in_sync = plan.empty and not plan.health
    facts = {"in_sync": in_sync, "exit_status": 0 if in_sync else 1, "drift": body["changes"], "health": body["health"], "notes": body["notes"]}
    module.exit_json(changed=False, ansible_facts={"ovsnet": facts}, **facts)


if __name__ == "__main__":
    main()
