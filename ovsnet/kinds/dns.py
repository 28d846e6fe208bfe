"""The host's DNS servers: the nameserver lines of its resolv.conf (search and options stay)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ovsnet.kinds.base import Context, Kind, Settings
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.model import Host, Topology


@dataclass(frozen=True)
class DnsSetServers:
    """Replace the nameserver lines of the host's resolv.conf, keep the rest."""

    servers: tuple[str, ...]
    backend: ClassVar[str] = "files"

    def run(self, files: Any) -> None:
        files.write_nameservers(self.servers)

    def describe(self) -> str:
        return f"set nameservers {', '.join(self.servers) or 'none'}"


@dataclass(frozen=True)
class DnsWant:
    servers: tuple[str, ...]


@dataclass(frozen=True)
class SavedDns:
    """The nameservers before ovsnet first changed them."""

    servers: tuple[str, ...]


class Dns(Kind):
    name: ClassVar[str] = "dns"

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[DnsWant, ...]:
        m = host.management
        if m is None or host.uplink_nic is None or not m.dns:
            return ()
        return (DnsWant(tuple(str(d) for d in m.dns)),)

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        now = ctx.current.dns
        for w in want:
            if now is not None and tuple(now) != w.servers:
                ctx.add(Action.MODIFY, "dns:nameservers", Phase.DNS, "the host's DNS servers", before=", ".join(now) or "none", after=", ".join(w.servers),
                        ops=(DnsSetServers(w.servers),), undo=(DnsSetServers(tuple(now)),))
                ctx.keep[self.name] = SavedDns(tuple(now))

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        saved: SavedDns | None = ctx.saved(self.name)
        now = ctx.current.dns
        if saved is not None and now is not None and tuple(now) != saved.servers:
            ctx.add(Action.RESTORE, "dns:nameservers", Phase.DNS, "as it was before the first up", before=", ".join(now), after=", ".join(saved.servers) or "none",
                    ops=(DnsSetServers(saved.servers),), undo=(DnsSetServers(tuple(now)),))

    def record_to_json(self, part: SavedDns) -> Any:
        return list(part.servers)

    def record_from_json(self, raw: Any) -> SavedDns:
        if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
            raise ValueError("dns is not a list of nameservers")
        return SavedDns(tuple(raw))
