"""The one place an IP address is parsed for the SecOps engine: sources, allowlists, bans, nft elements, the API.

Every address that can reach a decision goes through `parse` (or its memoised form `canonical`, or
`blockable`), which gives the canonical object:
- IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`) IPv6 spellings become the IPv4
  address, so an allowlisted address cannot slip past the allowlist in another spelling;
- zone ids (`fe80::1%eth0`) are refused: nft cannot hold them (one such element made it refuse whole
  batches) and a block is not meant per interface;
- only text is accepted (the stdlib also takes integers: `ip_address(1)` is 0.0.0.1).
`refusal` says why an address must never be blocked (unspecified, "this network", loopback,
link-local, multicast, reserved, broadcast); such an address is never a source to block.

The stdlib `ipaddress` does the parsing: it is strict (no leading zeros, no shorthand IPv4), knows the
special ranges and is what the rest of the engine (allowlists, Sigma `cidr`) already uses. A third-party
library (netaddr) would add a dependency to read the same syntax more leniently, which is not wanted here.
"""
from __future__ import annotations

import ipaddress
import re

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_TEXT = 64  # longer than any spelling of an address (an IPv6 with an IPv4 tail is 45)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host on this network": never a real source
_CACHE_LIMIT = 65536


class AddressError(ValueError):
    """An address that cannot be used as given; the message names it and says why."""


def parse(text: str) -> Address:
    """Text → canonical address object, or AddressError (syntax, zone id)."""
    if not isinstance(text, str):
        raise AddressError(f"{text!r} is not an IP address (expected text like 203.0.113.9 or 2001:db8::9)")
    if len(text) > MAX_TEXT:
        raise AddressError(f"{text[:MAX_TEXT]!r}… is not an IP address (longer than {MAX_TEXT} characters)")
    if "%" in text:
        raise AddressError(f"{text!r}: zone ids (the %… part) are refused; give the address without it "
                           "(a block applies on every interface)")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise AddressError(f"{text!r} is not an IP address (expected e.g. 203.0.113.9 or 2001:db8::9)") from None
    if addr.version == 6:
        mapped = addr.ipv4_mapped
        if mapped is not None:
            return mapped
        if addr.packed[:12] == bytes(12) and int(addr) > 1:  # IPv4-compatible ::a.b.c.d (not :: or ::1)
            return ipaddress.IPv4Address(addr.packed[12:])
    return addr


def refusal(addr: Address) -> str | None:
    """Why this (canonical) address must never be blocked, or None if it may be."""
    if addr.is_unspecified:
        return "the unspecified address is never blocked"
    if addr.version == 4 and addr in _THIS_NETWORK:
        return "0.0.0.0/8 (\"this network\") is never a real source"
    if addr.is_loopback:
        return "a loopback address is never blocked"
    if addr.is_link_local:
        return "a link-local address is never blocked"
    if addr.is_multicast:
        return "a multicast address is never a source to block"
    if addr.version == 4 and int(addr) == 0xFFFFFFFF:
        return "the broadcast address is never a source to block"
    if addr.is_reserved:
        return "a reserved address is never blocked"
    return None


def blockable(text: str) -> Address:
    """Text → canonical address that may be blocked, or AddressError with the reason."""
    addr = parse(text)
    why = refusal(addr)
    if why is not None:
        raise AddressError(f"{text!r}: {why}" if str(addr) == text else f"{text!r} ({addr}): {why}")
    return addr


# text → canonical text, or "" if it is not a usable address; hot paths may read it directly (a dict hit
# costs less than the call).
CANONICAL: dict[str, str] = {}
# An IPv4 address spelt as `str(ipaddress.IPv4Address(...))` spells it: four decimal octets, no leading zeros.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
DOTTED_QUAD = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_REFUSALS: dict[str, str | None] = {}


def canonical(text: str) -> str:
    """Memoised for the per-line path (sources repeat): the canonical text of an address, or "" if `parse`
    refuses it (`unusable` says why). Says nothing about blocking: see `refused`."""
    if text.__class__ is not str:
        return ""
    hit = CANONICAL.get(text)
    if hit is None:
        if DOTTED_QUAD.fullmatch(text) is not None:  # city day (bench/city_day.py): a city's sources outnumber
            hit = text  # the cache; an IPv4 in canonical form is its own canonical text (≈ 10× cheaper than parse)
        else:
            try:
                hit = str(parse(text))
            except AddressError:
                hit = ""
        if len(CANONICAL) >= _CACHE_LIMIT:
            CANONICAL.clear()
        CANONICAL[text] = hit
    return hit


def unusable(text: str) -> str:
    """Why `parse` refuses `text` (for a quarantine reason), or "" if it does not."""
    try:
        parse(text)
    except AddressError as exc:
        return str(exc)
    return ""


def refused(canonical: str) -> str | None:
    """Memoised `refusal` of an address already in canonical text form (what `canonical` returns)."""
    why = _REFUSALS.get(canonical, _UNKNOWN)
    if why is _UNKNOWN:
        why = refusal(parse(canonical))
        if len(_REFUSALS) >= _CACHE_LIMIT:
            _REFUSALS.clear()
        _REFUSALS[canonical] = why
    return why


_UNKNOWN = object()


def network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR range, canonical like addresses (an IPv4-mapped IPv6 range becomes the IPv4 range);
    ValueError if it is not one."""
    if "%" in text:
        raise AddressError(f"{text!r}: zone ids are refused in ranges")
    net = ipaddress.ip_network(text, strict=False)
    if net.version == 6 and net.prefixlen >= 96 and net.network_address.ipv4_mapped is not None:
        return ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")
    return net


# --- range bans (CIDR): parsed here like addresses, with the same refusals ---
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_RANGE_TEXT = MAX_TEXT + 4  # an address and "/128"
DEFAULT_MIN_PREFIX = {4: 16, 6: 48}  # a broader range is refused unless configured otherwise
# Blocks that a banned range must not overlap: "this network", loopback, link-local, multicast, reserved
# (240.0.0.0/4 holds the broadcast address). IPv6: the unassigned blocks RFC 4291 reserves (what
# `ipaddress` calls reserved: ::/8 holds ::, ::1 and the IPv4-compatible/-mapped spellings), link-local,
# multicast.
_SPECIAL_RANGES = {
    4: [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4",
                                          "240.0.0.0/4")],
    6: [ipaddress.ip_network(n) for n in ("::/8", "100::/8", "200::/7", "400::/6", "800::/5", "1000::/4",
                                          "4000::/3", "6000::/3", "8000::/3", "a000::/3", "c000::/3", "e000::/4",
                                          "f000::/5", "f800::/6", "fe00::/9", "fe80::/10", "ff00::/8")],
}


def parse_network(text: str) -> Network:
    """CIDR text → network, strictly: no host bits, no zone id, no IPv4-mapped spelling (give the IPv4
    range), no integer or other non-text. AddressError names the input and says what to give instead."""
    if not isinstance(text, str):
        raise AddressError(f"{text!r} is not a CIDR range (expected text like 203.0.113.0/24 or 2001:db8:1::/64)")
    if len(text) > MAX_RANGE_TEXT:
        raise AddressError(f"{text[:MAX_RANGE_TEXT]!r}… is not a CIDR range (longer than {MAX_RANGE_TEXT} characters)")
    if "%" in text:
        raise AddressError(f"{text!r}: zone ids (the %… part) are refused in ranges; give the range without it")
    base, _, length = text.partition("/")
    if not length.isdigit() or length != str(int(length)):
        raise AddressError(f"{text!r} is not a CIDR range: the prefix length after / must be a plain number "
                           "(e.g. 203.0.113.0/24)")
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            loose = ipaddress.ip_network(text, strict=False)
            raise AddressError(f"{text!r} has host bits set; the range is {loose}") from None
        raise AddressError(f"{text!r} is not a CIDR range (expected e.g. 203.0.113.0/24 or 2001:db8:1::/64)") from None
    if net.version == 6 and (net.network_address.ipv4_mapped is not None
                             or (net.network_address.packed[:12] == bytes(12) and net.prefixlen >= 96
                                 and int(net.network_address) > 1)):
        v4 = parse(str(net.network_address))
        raise AddressError(f"{text!r} is an IPv4 range in IPv6 spelling; give it as IPv4: "
                           f"{v4}/{max(0, net.prefixlen - 96)}")
    return net


def range_refusal(net: Network, min_prefix: dict[int, int] | None = None) -> str | None:
    """Why this range must never be blocked (too broad, or overlapping a special block), or None."""
    least = (min_prefix or DEFAULT_MIN_PREFIX)[net.version]
    if net.prefixlen < least:
        return (f"/{net.prefixlen} is broader than the smallest range allowed for IPv{net.version} (/{least}); "
                "ban narrower ranges")
    for special in _SPECIAL_RANGES[net.version]:
        if net.overlaps(special):
            return f"it overlaps {special} (loopback, link-local, multicast, unspecified or reserved), never blocked"
    return None


def blockable_network(text: str, min_prefix: dict[int, int] | None = None) -> Network:
    """Text → a range that may be blocked, or AddressError with the reason."""
    net = parse_network(text)
    why = range_refusal(net, min_prefix)
    if why is not None:
        raise AddressError(f"{text!r}: {why}")
    return net


def blockable_target(text: str, min_prefix: dict[int, int] | None = None) -> str:
    """What a ban names, as canonical text: an address, or a CIDR range (with "/"). A range of one address
    (/32, /128) is that address, so it is one ban, not two."""
    if isinstance(text, str) and "/" in text:
        net = blockable_network(text, min_prefix)
        if net.prefixlen == net.max_prefixlen:
            return str(blockable(str(net.network_address)))
        return str(net)
    return str(blockable(text))


def is_range(text: str) -> bool:
    """A canonical ban target names a range (what `blockable_target` returned with a "/")."""
    return "/" in text
