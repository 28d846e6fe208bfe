"""The registry of kinds: every object sort ovsnet manages, in the order their changes run.

The order is the seed's safety argument. Within one phase (see
ovsnet.plan.model.Phase) changes run in this order: Linux bridges before the
veths enslaved to them, the OVS bridge before its ports, the host's
addresses (uplink) before DNS. Adding a kind: one module here, one line
below.
"""

from __future__ import annotations

from ovsnet.kinds.base import Context, Desired, Kind, Presumed, Settings
from ovsnet.kinds.bond import Bonds
from ovsnet.kinds.dns import Dns
from ovsnet.kinds.docker_network import DockerNetworks
from ovsnet.kinds.handover import Handovers
from ovsnet.kinds.linux_bridge import LinuxBridges
from ovsnet.kinds.nic import Nics
from ovsnet.kinds.ovs_bridge import OvsBridges
from ovsnet.kinds.ovs_port import OvsPorts
from ovsnet.kinds.uplink import Uplink
from ovsnet.kinds.veth import Veths

KINDS: tuple[Kind, ...] = (
    LinuxBridges(),
    Veths(),
    OvsBridges(),
    OvsPorts(),
    Bonds(),
    Uplink(),
    Nics(),
    Dns(),
    Handovers(),
    DockerNetworks(),
)
BY_NAME = {k.name: k for k in KINDS}

__all__ = ["BY_NAME", "KINDS", "Context", "Desired", "Kind", "Presumed", "Settings"]
