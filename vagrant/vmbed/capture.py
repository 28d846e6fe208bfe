"""Reading a capture of a cable (QEMU filter-dump, pcap) with `tcpdump -e`: its
frames per 802.1Q tag."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_IPV4 = re.compile(r"ethertype IPv4 \(0x0800\),(?: length \d+:)? (\d+\.\d+\.\d+\.\d+)(?:\.\d+)? > (\d+\.\d+\.\d+\.\d+)(?:\.\d+)?: (.*)")
_ARP_REQ = re.compile(r"Request who-has (\S+) tell (\S+?),")
_ARP_REP = re.compile(r"Reply (\S+) is-at")
_TAG = re.compile(r"vlan (\d+), p \d+")


@dataclass
class TagFrames:
    """The frames of one tag (or untagged): IPv4 (source, destination, the rest of
    tcpdump's line) and ARP senders (the address a frame speaks for on its segment)."""

    frames: int = 0
    ipv4: list[tuple[str, str, str]] = field(default_factory=list)
    arp_senders: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Capture:
    tags: dict[int | None, TagFrames]  # None: untagged
    rc: int
    stderr: str


def parse_capture(pcap: Path) -> Capture:
    p = subprocess.run(["tcpdump", "-e", "-nn", "-r", str(pcap)], capture_output=True, text=True)
    tags: dict[int | None, TagFrames] = {}
    for line in p.stdout.splitlines():
        m = _TAG.search(line)
        t = tags.setdefault(int(m.group(1)) if m else None, TagFrames())
        t.frames += 1
        if (m := _IPV4.search(line)):
            t.ipv4.append((m.group(1), m.group(2), m.group(3)))
        elif (m := _ARP_REQ.search(line)):
            t.arp_senders.append(m.group(2))
        elif (m := _ARP_REP.search(line)):
            t.arp_senders.append(m.group(1))
    return Capture(tags, p.returncode, p.stderr)
