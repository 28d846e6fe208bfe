#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ovsnet developers; Apache-2.0
"""ovsnet_validate: check a topology file once, with every cross-host check (ovsnet validate)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ovsnet_validate
short_description: Validate an ovsnet topology file (every finding at once)
description:
  - Loads the topology with ovsnet's own loader and runs every check, the cross-host ones
    included (each host's container slice of every VLAN subnet, loops between hosts, MTUs).
  - Fails with every error, each with its file, line and key path. Meant to run once, on the controller.
version_added: 0.1.0
author: ovsnet developers
options:
  topology:
    description: The topology file.
    type: path
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Validate once on the controller
  ovsnet.fleet.ovsnet_validate:
    topology: topology.toml
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
topology:
  description: The topology's name.
  returned: success
  type: str
hosts:
  description: Its hosts.
  returned: success
  type: list
  elements: str
warnings_found:
  description: Warnings, rendered with file and line.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ovsnet.fleet.plugins.module_utils.ovsnet_common import OvsnetError, api, fail, require_ovsnet


def main():
    module = AnsibleModule(argument_spec=dict(topology=dict(type="path", required=True)), supports_check_mode=True)
    require_ovsnet(module)
    try:
        checked = api.load(module.params["topology"])
    except OvsnetError as exc:
        fail(module, exc)
    topo = checked.topology
    module.exit_json(changed=False, topology=topo.name, hosts=list(topo.hosts),
                     warnings_found=[w.render(topo.source) for w in checked.warnings])


if __name__ == "__main__":
    main()
