# -*- coding: utf-8 -*-
# Copyright: ovsnet developers; Apache-2.0
"""The hosts of an ovsnet topology file as an Ansible inventory: one source of truth."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: topology
short_description: The hosts of an ovsnet topology file
description:
  - Every C([hosts.NAME]) of the topology (read and validated by ovsnet's own loader on the controller)
    becomes an inventory host; C(ansible_host) is its first management address.
  - Groups C(layout_vlan) / C(layout_flat) by layout, and C(vlan_NAME) for every VLAN a host carries.
  - Per-host variables from O(hosts) override what the topology gives (C(ansible_host) for a host
    reached over another network, the ovsnet_* variables of the playbooks).
  - With O(lab), the hosts of that C(ovsnet lab up --ssh) lab, reached over the lab's SSH, with the
    ovsnet_* variables that point the modules at each simulated host.
  - The config file's name must end in C(ovsnet.yml) or C(ovsnet.yaml).
version_added: 0.1.0
author: ovsnet developers
options:
  plugin:
    description: The name of this plugin.
    required: true
    choices: [ovsnet.fleet.topology]
  topology:
    description: The topology file (on the controller); relative to the inventory file's directory.
    type: path
    required: true
  hosts:
    description: Variables per host name, applied over the topology's (e.g. C(ansible_host)).
    type: dict
    default: {}
  vars:
    description: Variables for every host.
    type: dict
    default: {}
  lab:
    description: The prefix of a lab built with C(ovsnet lab up FILE --ssh); its hosts are the fleet.
    type: str
requirements:
  - ovsnet installed on the controller (pip install 'ovsnet[fleet]')
"""

EXAMPLES = r"""
# fleet.ovsnet.yml
plugin: ovsnet.fleet.topology
topology: topology.toml
hosts:
  node3:
    ansible_host: 10.0.0.13   # reached over its out-of-band network
vars:
  ansible_user: admin
  ansible_become: true
"""

import os
import re

from ansible.errors import AnsibleParserError

from ansible.plugins.inventory import BaseInventoryPlugin


def _group(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


class InventoryModule(BaseInventoryPlugin):
    NAME = "ovsnet.fleet.topology"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("ovsnet.yml", "ovsnet.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            from ovsnet import api
            from ovsnet.errors import OvsnetError
        except ImportError as exc:
            raise AnsibleParserError(f"ovsnet.fleet.topology needs ovsnet on the controller (pip install 'ovsnet[fleet]'): {exc}") from exc
        source = self.get_option("topology")
        if not os.path.isabs(source):
            source = os.path.join(os.path.dirname(os.path.abspath(path)), source)
        try:
            checked = api.load(source)
            lab_vars, shared = self._lab(checked) if self.get_option("lab") else ({}, {})
        except OvsnetError as exc:
            raise AnsibleParserError(f"{path}: {exc}") from exc
        topo = checked.topology
        overrides = self.get_option("hosts") or {}
        unknown = sorted(set(overrides) - set(topo.hosts))
        if unknown:
            raise AnsibleParserError(f"{path}: hosts {', '.join(unknown)} are not in {source}; hosts: {', '.join(topo.hosts)}")
        # Per host, not on group "all": a playbook's group_vars/all would win over those.
        shared = {**shared, **(self.get_option("vars") or {})}
        for name, host in topo.hosts.items():
            if self.get_option("lab") and name not in lab_vars:
                continue  # no management address: nothing to reach it at
            self.inventory.add_host(name)
            hv = {**shared, "ovsnet_host": name, "ovsnet_topology_src": source, "ovsnet_layout": host.layout.value}
            if host.management and host.management.addresses:
                hv["ansible_host"] = str(host.management.addresses[0].ip)
            vlans = self._vlans(host)
            hv["ovsnet_vlans"] = vlans
            hv.update(lab_vars.get(name, {}))
            hv.update(overrides.get(name) or {})
            for key, value in hv.items():
                self.inventory.set_variable(name, key, value)
            for group in [f"layout_{host.layout.value}"] + [f"vlan_{_group(v)}" for v in vlans]:
                self.inventory.add_group(group)
                self.inventory.add_child(group, name)

    @staticmethod
    def _vlans(host):
        names = []
        for u in host.uplinks:
            names += list(u.vlans)
        names += [d.vlan for d in host.docker] + [a.vlan for a in host.access_ports]
        if host.management_vlan:
            names.append(host.management_vlan)
        return sorted(set(names))

    def _lab(self, checked):
        from ovsnet.lab import fleet
        from ovsnet.lab.ledger import load_lab

        lab = load_lab(checked.topology, self.get_option("lab"))
        return fleet.host_vars(lab), fleet.connection_vars(lab)
