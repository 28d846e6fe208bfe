"""Handing the host's addresses over from the NIC's network manager to the management port.

On a real host something already manages the NIC ovsnet moves into the
bridge: systemd-networkd (netplan), NetworkManager, ifupdown, or a DHCP
client run by hand. Left alone, it puts the address back on the NIC, or
renews a lease there. So `up` refuses, naming the manager, unless the
topology chooses a handover (`management.handover`); then, after the move,
the manager is told to leave the NIC to OVS and to run the management port
instead, with the same address or the same lease. `down` gives the NIC
back as it was. Each manager's way is in ovsnet.managers.<manager>; the
files ovsnet writes carry its mark and are put back byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ovsnet.kinds.base import Context, Kind, Settings
from ovsnet.managers import DHCLIENT, LABELS, Managed
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.model import Handover, Host, Layout, Topology


@dataclass(frozen=True)
class HandoverWant:
    mode: Handover
    nic: str
    port: str
    dhcp: bool


@dataclass(frozen=True)
class SavedHandover:
    """Which manager had the NIC, so that `down` gives it back."""

    manager: str
    nic: str
    port: str
    lease: str | None = None  # the port's lease file before ovsnet wrote one (dhclient), verbatim


@dataclass(frozen=True)
class DhclientStop:
    iface: str
    backend: ClassVar[str] = "dhcp"

    def run(self, dhcp: Any) -> None:
        dhcp.stop(self.iface)

    def describe(self) -> str:
        return f"stop the DHCP client of {self.iface} (its lease is kept)"


@dataclass(frozen=True)
class DhclientStart:
    iface: str
    backend: ClassVar[str] = "dhcp"

    def run(self, dhcp: Any) -> None:
        dhcp.start(self.iface)

    def describe(self) -> str:
        return f"start the DHCP client of {self.iface}"


@dataclass(frozen=True)
class DhclientLease:
    """The port's lease file: a copy of the NIC's (to ask for the same address), or given text."""

    iface: str
    copy_from: str | None = None
    text: str | None = None
    backend: ClassVar[str] = "dhcp"

    def run(self, dhcp: Any) -> None:
        if self.copy_from:
            dhcp.copy_lease(self.copy_from, self.iface)
        else:
            dhcp.write_leases(self.iface, self.text)

    def describe(self) -> str:
        return f"write the lease file of {self.iface}"


class Handovers(Kind):
    name: ClassVar[str] = "handover"
    reads: ClassVar[frozenset[str]] = frozenset({"managers"})

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[HandoverWant, ...]:
        m, nic = host.management, host.uplink_nic
        if m is None or nic is None:
            return ()
        port = host.flat.bridge if host.layout is Layout.FLAT and host.flat else m.port
        return (HandoverWant(m.handover, nic, port, m.dhcp),)

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        for w in want:
            self._plan(w, ctx)

    def _plan(self, w: HandoverWant, ctx: Context) -> None:
        on_nic: Managed | None = ctx.current.managers.get(w.nic)
        on_port: Managed | None = ctx.current.managers.get(w.port)
        for m in (on_nic, on_port):
            if m is not None:
                ctx.facts.append(m.describe())
        for a in ctx.current.linux.addresses:
            if a.ifname in (w.nic, w.port) and a.dynamic:
                ctx.facts.append(f"{a.ifname} holds {a.cidr} as a lease ({a.valid} s left)")
        if on_nic is None:
            return  # nobody would take the NIC back (or it was handed over already)
        mode = on_nic.manager if w.mode is Handover.AUTO else w.mode.value
        label = LABELS[on_nic.manager]
        if mode == Handover.NONE.value:
            ctx.block(f"link:{w.nic}", f"{on_nic.describe()}; after the move it would put the host's address back on {w.nic}",
                      f'set handover = "{on_nic.manager}" (or "auto") under the host\'s [management] so that ovsnet hands {w.nic} '
                      f"to OVS and {w.port} to {label}, or stop {label} managing {w.nic} yourself")
            return
        if mode != on_nic.manager:
            ctx.block(f"link:{w.nic}", f'handover = "{mode}", but {on_nic.describe()}',
                      f'set handover = "{on_nic.manager}" or "auto"')
            return
        if mode == DHCLIENT:
            self._dhclient(w, ctx)
            return
        ctx.block(f"link:{w.nic}", f"{on_nic.describe()}; handing a NIC over from {label} is not available in this ovsnet",
                  f"stop {label} managing {w.nic} yourself, then run up again")

    def _dhclient(self, w: HandoverWant, ctx: Context) -> None:
        """The NIC's DHCP client stops (keeping its lease); one starts on the port, asking for the same lease."""
        ctx.add(Action.MODIFY, f"dhcp:{w.nic}", Phase.HANDOVER, f"its lease now lives on {w.port}; a renewal must not put the address back on {w.nic}",
                before="DHCP client running", after="stopped, lease kept", ops=(DhclientStop(w.nic),), undo=(DhclientStart(w.nic),))
        ctx.add(Action.CREATE, f"dhcp:{w.port}", Phase.HANDOVER, f"the lease follows the host's address (same MAC as {w.nic}, same lease)",
                after=f"DHCP client, with {w.nic}'s lease", ops=(DhclientLease(w.port, copy_from=w.nic), DhclientStart(w.port)),
                undo=(DhclientStop(w.port), DhclientLease(w.port, text=None)))
        ctx.keep[self.name] = SavedHandover(DHCLIENT, w.nic, w.port)

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        saved: SavedHandover | None = ctx.saved(self.name)
        if saved is None or saved.manager != DHCLIENT:
            return
        ctx.add(Action.RESTORE, f"dhcp:{saved.nic}", Phase.HANDOVER, "the DHCP client goes back to the NIC, with its lease",
                before=f"running on {saved.port}", after=f"running on {saved.nic}",
                ops=(DhclientStop(saved.port), DhclientStart(saved.nic)), undo=(DhclientStop(saved.nic), DhclientStart(saved.port)))

    def record_to_json(self, part: SavedHandover) -> Any:
        return {"manager": part.manager, "nic": part.nic, "port": part.port, "lease": part.lease}

    def record_from_json(self, raw: Any) -> SavedHandover:
        if not isinstance(raw, dict) or raw.get("manager") not in LABELS:
            raise ValueError("handover is not an object naming a known network manager")
        return SavedHandover(str(raw["manager"]), str(raw["nic"]), str(raw["port"]), raw.get("lease"))
