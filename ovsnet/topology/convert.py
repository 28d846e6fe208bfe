"""Converters: one raw TOML value to a typed value, or Invalid with the fix.

The reader (reader.py) calls them and turns Invalid into a Finding at the
value's key path; they know nothing of paths or positions.
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import re
from typing import Any, Callable, TypeVar

T = TypeVar("T")
# Names of VLANs, hosts and endpoints end up in Docker network names, lab
# namespace names and OVSDB external_ids: keep them to a safe alphabet.
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
_NAME_HINT = "use letters, digits, '-', '_' or '.', starting with a letter, at most 63 characters"


class Invalid(Exception):
    """Raised by a converter; the reader turns it into a Finding."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


def quoted(text: str, limit: int = 60) -> str:
    """A value for an error message: quoted, and cut short when huge."""
    if len(text) <= limit:
        return f"'{text}'"
    return f"'{text[:limit]}...' ({len(text)} characters)"


def type_name(value: Any) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "known keys: " + ", ".join(sorted(choices)) if choices else ""


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {type_name(value)}", 'quote it: key = "value"')
    return value


def as_name(value: Any) -> str:
    text = as_str(value)
    if not NAME_RE.match(text):
        raise Invalid(f"{quoted(text)} is not a usable name", _NAME_HINT)
    return text


def as_ifname(value: Any) -> str:
    # The kernel's rules (15 bytes, no '/', ':', whitespace) are checked by
    # validation so they are reported with the object that owns the name.
    text = as_str(value)
    if not text:
        raise Invalid("interface name is empty", "give the interface's name, e.g. \"eth1\"")
    return text


def as_int(lo: int, hi: int) -> Callable[[Any], int]:
    def conv(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected an integer from {lo} to {hi}, got {type_name(value)}")
        if not lo <= value <= hi:
            raise Invalid(f"{value} is out of range", f"use an integer from {lo} to {hi}")
        return value

    return conv


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {type_name(value)}")
    return value


def as_enum(enum_cls: type[enum.Enum]) -> Callable[[Any], Any]:
    choices = [m.value for m in enum_cls]

    def conv(value: Any):
        text = as_str(value)
        try:
            return enum_cls(text)
        except ValueError:
            raise Invalid(f"{quoted(text)} is not one of {', '.join(choices)}", suggest(text, choices)) from None

    return conv


def as_ip(value: Any):
    text = as_str(value)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise Invalid(f"{quoted(text)} is not an IP address", 'write it like "192.0.2.1" or "2001:db8::1"') from None


def as_iface_addr(value: Any):
    text = as_str(value)
    if "/" not in text:
        raise Invalid(f"{quoted(text)} has no prefix length", f'write it with its prefix, e.g. "{text[:40]}/24"')
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        raise Invalid(f"{quoted(text)} is not an address with prefix", 'write it like "192.0.2.10/24"') from None


def as_network(value: Any):
    text = as_str(value)
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        try:
            iface = ipaddress.ip_interface(text)
        except ValueError:
            raise Invalid(f"{quoted(text)} is not a subnet", 'write it like "10.100.0.0/24"') from None
        raise Invalid(f"{quoted(text)} has host bits set", f'did you mean "{iface.network}"?') from None



# The keys that end in 6 (subnet6, router6, address6, gateway6, ip_range6)
# take IPv6 only: an IPv4 value there is a mistake worth its own words.


def as_ip6(value: Any):
    ip = as_ip(value)
    if ip.version != 6:
        raise Invalid(f"{quoted(str(ip))} is an IPv4 address, not IPv6", 'this key takes an IPv6 address, e.g. "fd00:100::1"; IPv4 goes in the key without 6')
    return ip


def as_iface_addr6(value: Any):
    iface = as_iface_addr(value)
    if iface.version != 6:
        raise Invalid(f"{quoted(str(iface))} is an IPv4 address, not IPv6", 'this key takes an IPv6 address with its prefix, e.g. "fd00:100::11/64"; IPv4 goes in the key without 6')
    return iface


def as_network6(value: Any):
    net = as_network(value)
    if net.version != 6:
        raise Invalid(f"{quoted(str(net))} is an IPv4 subnet, not IPv6", 'this key takes an IPv6 subnet, e.g. "fd00:100::/64"; IPv4 goes in the key without 6')
    return net

# Docker's reference grammar (distribution/reference): an optional registry
# (it has a '.' or ':', or is "localhost"), lowercase path components, an
# optional tag and digest. Checked here so a typo is a finding with its key
# path, not an Engine API error in the middle of `verify`.
_IMAGE_DOMAIN = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$")
_IMAGE_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_IMAGE_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_IMAGE_HINT = 'write a local image reference such as "local/busybox:1" (lowercase repository, optional :tag)'


def as_image_ref(value: Any) -> str:
    text = as_str(value)
    if not text:
        raise Invalid("image reference is empty", _IMAGE_HINT)
    if len(text) > 255 or any(c.isspace() or not c.isprintable() for c in text):
        raise Invalid(f"{quoted(text)} is not an image reference", _IMAGE_HINT)
    name, at, digest = text.partition("@")
    if at and not _IMAGE_DIGEST.match(digest):
        raise Invalid(f"{quoted(text)} has a malformed digest", 'write it as "NAME@sha256:<64 hex digits>", or drop the digest')
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _IMAGE_TAG.match(tag):
            raise Invalid(f"{quoted(text)} has a malformed tag {quoted(tag)}", "a tag is letters, digits, '_', '.' and '-', at most 128")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not _IMAGE_DOMAIN.match(parts[0]):
            raise Invalid(f"{quoted(text)} has a malformed registry {quoted(parts[0])}", _IMAGE_HINT)
        parts = parts[1:]
    bad = next((p for p in parts if not _IMAGE_PATH.match(p)), None)
    if bad is not None:
        hint = f'repository names are lowercase: "{text.lower()}"?' if _IMAGE_PATH.match(bad.lower()) else _IMAGE_HINT
        raise Invalid(f"{quoted(text)} is not an image reference ({quoted(bad)} is not a repository name component)", hint)
    return text


def as_list(item: Callable[[Any], T]) -> Callable[[Any], list]:
    # Items are converted one by one by the reader so each gets its own path.
    def conv(value: Any) -> list:
        if not isinstance(value, list):
            raise Invalid(f"expected a list, got {type_name(value)}", 'write it as ["a", "b"]')
        return value

    conv.item = item  # type: ignore[attr-defined]
    return conv

