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

from ovsnet.backends.manager import DhclientRun, RunProgram, WriteFile
from ovsnet.backends.netlink.ops import NlSetLink
from ovsnet.current import HostFiles
from ovsnet.kinds.base import Context, Kind, Settings
from ovsnet.managers import DHCLIENT, IFUPDOWN, LABELS, NETWORKD, NETWORKMANAGER, Managed, ifupdown, networkd, networkmanager
from ovsnet.managers.handoff import Dhclient, Handoff, PortSpec, Step
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.model import Handover, Host, Layout, Topology

# The managers whose handover is their own configuration files (ovsnet.managers.<module>.handoff).
FILE_MANAGERS = {NETWORKD: networkd, NETWORKMANAGER: networkmanager, IFUPDOWN: ifupdown}


@dataclass(frozen=True)
class HandoverWant:
    mode: Handover
    nic: str
    port: str
    dhcp: bool
    addresses: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()


@dataclass(frozen=True)
class SavedHandover:
    """Which manager had the NIC, so that `down` gives it back."""

    manager: str
    nic: str
    port: str
    lease: str | None = None  # the port's lease file before ovsnet wrote one (dhclient), verbatim
    # Every file the handover writes, as it was before (None: absent), byte for byte.
    files: tuple[tuple[str, str | None], ...] = ()
    client_id: str | None = None  # the port's DHCP client identity, as first chosen


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
        return (HandoverWant(m.handover, nic, port, m.dhcp, () if m.dhcp else tuple(str(a) for a in m.addresses),
                             tuple(str(g) for g in m.gateways), tuple(str(d) for d in m.dns)),)

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
        saved: SavedHandover | None = ctx.saved(self.name)
        if on_nic is None:
            # Nobody would take the NIC back, or it was handed over already: then
            # ovsnet's files must still say so (status: drift when one was edited).
            if saved is not None and saved.manager in FILE_MANAGERS and saved.nic == w.nic:
                self._files(w, ctx, saved.manager, saved)
            return
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
        self._files(w, ctx, mode, saved)

    def _files(self, w: HandoverWant, ctx: Context, manager: str, saved: SavedHandover | None) -> None:
        """The manager's files say: the NIC is OVS's, the port is the manager's; then it reads them again."""
        files = ctx.current.files or HostFiles()
        h, spec = self._handoff(w, ctx, manager, saved)
        ctx.notes.extend(h.notes)
        # Handed over, the manager leaves the NIC down at boot: the nic kind brings it up.
        texts = {e.path: files.text(e.path) for e in h.files}  # each file read once (from disk on a real host)
        changed = [(e, texts[e.path]) for e in h.files if texts[e.path] != e.text]
        if saved is None:
            ctx.keep[self.name] = SavedHandover(manager, w.nic, w.port, files=tuple((e.path, texts[e.path]) for e in h.files),
                                                client_id=h.client_id)
        if not changed:
            return
        give = _ops(h.give)
        for k, (e, now) in enumerate(changed):
            # The first file's undo comes last in a rollback: all files are back, the manager reads them.
            ctx.add(Action.CREATE if now is None else Action.MODIFY, f"file:{e.path}", Phase.HANDOVER, e.why,
                    before=summary(now), after=summary(e.text), ops=(WriteFile(e.path, e.text, e.mode),),
                    undo=(WriteFile(e.path, now),) + (give if k == 0 else ()))
        label = LABELS[manager]
        # NetworkManager takes a device down as it stops managing it: the trunk must be
        # up again before the port asks for its lease across it (Handoff.release).
        trunk_up = (Action.MODIFY, f"link:{w.nic}", Phase.HANDOVER, f"the trunk stays up once {label} lets it go")
        if h.release:
            ctx.add(Action.MODIFY, f"manager:{manager}", Phase.HANDOVER, f"{label} reads its configuration again and lets {spec.nic} go",
                    before=f"runs {spec.nic}", after=f"leaves {spec.nic} to OVS", ops=_ops(h.release))
            ctx.add(*trunk_up, before="up", after="up", ops=(NlSetLink(w.nic, up=True),))
        # What the manager then keeps about the port (ifupdown's state file) leaves with a rollback,
        # as with down: left behind, it would say a port that is gone is configured.
        ctx.add(Action.MODIFY, f"manager:{manager}", Phase.HANDOVER, f"{label} reads its files again", before=f"runs {spec.nic}",
                after=f"runs {spec.port}", ops=_ops(h.take), undo=tuple(WriteFile(path, None) for path in h.port_state))
        if not h.release:
            ctx.add(*trunk_up, before="up", after="up", ops=(NlSetLink(w.nic, up=True),))

    def _handoff(self, w: HandoverWant, ctx: Context, manager: str, saved: SavedHandover | None) -> tuple[Handoff, PortSpec]:
        """The handover computed from the host's files as they were before ovsnet (the record's copies)."""
        files = ctx.current.files or HostFiles()
        before = HostFiles(files.root, {**files.texts, **dict(saved.files if saved else ())})
        link = ctx.current.linux.links.get(w.nic)
        spec = PortSpec(ctx.topology, ctx.host, w.nic, w.port, w.addresses, w.gateways, w.dns, w.dhcp,
                        link.index if link is not None else None, saved.client_id if saved else None)
        return FILE_MANAGERS[manager].handoff(spec, before), spec

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
        if saved is not None and saved.manager in FILE_MANAGERS:
            self._give_back(want, ctx, saved)
        if saved is None or saved.manager != DHCLIENT:
            return
        ctx.add(Action.RESTORE, f"dhcp:{saved.nic}", Phase.HANDOVER, "the DHCP client goes back to the NIC, with its lease",
                before=f"running on {saved.port}", after=f"running on {saved.nic}",
                ops=(DhclientStop(saved.port), DhclientStart(saved.nic)), undo=(DhclientStop(saved.nic), DhclientStart(saved.port)))

    def _give_back(self, want: tuple[Any, ...], ctx: Context, saved: SavedHandover) -> None:
        """The manager's files as they were before the first up, byte for byte; then it reads them again."""
        files = ctx.current.files or HostFiles()
        w = next((x for x in want if x.nic == saved.nic), HandoverWant(Handover.AUTO, saved.nic, saved.port, False))
        h, _ = self._handoff(w, ctx, saved.manager, saved)
        texts = {path: files.text(path) for path in (*(p for p, _ in saved.files), *h.port_state)}
        back = [(path, orig, texts[path]) for path, orig in saved.files if texts[path] != orig]
        back += [(path, None, texts[path]) for path in h.port_state if texts[path] is not None]
        take = _ops(h.take)
        for k, (path, orig, now) in enumerate(back):
            ctx.add(Action.RESTORE, f"file:{path}", Phase.HANDOVER, "as it was before the first up", before=summary(now), after=summary(orig),
                    ops=(WriteFile(path, orig),), undo=(WriteFile(path, now),) + (take if k == 0 else ()))
        if back:
            ctx.add(Action.RESTORE, f"manager:{saved.manager}", Phase.HANDOVER, f"{LABELS[saved.manager]} reads its files again",
                    before=f"runs {saved.port}", after=f"runs {saved.nic}", ops=_ops(h.give))

    def record_to_json(self, part: SavedHandover) -> Any:
        return {"manager": part.manager, "nic": part.nic, "port": part.port, "lease": part.lease,
                "files": [[p, t] for p, t in part.files], "client_id": part.client_id}

    def record_from_json(self, raw: Any) -> SavedHandover:
        if not isinstance(raw, dict) or raw.get("manager") not in LABELS:
            raise ValueError("handover is not an object naming a known network manager")
        files = raw.get("files") or []
        if not isinstance(files, list) or not all(isinstance(f, list) and len(f) == 2 and isinstance(f[0], str) and (f[1] is None or isinstance(f[1], str)) for f in files):
            raise ValueError("handover files must be a list of [path, text or null]")
        return SavedHandover(str(raw["manager"]), str(raw["nic"]), str(raw["port"]), raw.get("lease"),
                             tuple((f[0], f[1]) for f in files), raw.get("client_id"))


def _ops(steps: tuple[Step, ...]) -> tuple[Any, ...]:
    return tuple(DhclientRun(s.iface, s.start) if isinstance(s, Dhclient) else RunProgram(s.argv) for s in steps)


def summary(text: str | None) -> str:
    """A file's text on one line for a plan: its lines that are not comments."""
    if text is None:
        return "absent"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    body = "; ".join(lines)
    return f"{len(text)} bytes: " + (body if len(body) <= 160 else body[:157] + "...")
