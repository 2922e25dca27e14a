"""Interception: alerts → decisions (block an address for a TTL) → an enforcer.

The decision engine never blocks an allowlisted address (management zones and ops networks from the
topology, plus configured ranges), escalates the TTL for repeat offenders, records every decision
(who, what, why, until) and, unless it runs dry, hands blocks to an `Enforcer`. `NftablesEnforcer`
fills an nftables set with per-element timeouts (the kernel expires them) inside a network namespace;
a cloud security-group or WAF adapter implements the same three methods.

Every address is read through secops.address (one canonical form, special addresses never blocked).
A decision with an enforcer is recorded once the enforcer took it: `enforced` means nft accepted the
element; an element nft refuses is set aside with its reason and counted, and never holds up the others.
"""
from __future__ import annotations

import collections
import ipaddress
import json
import math
import os
import subprocess
import threading
import time
from typing import Iterable, Protocol

from crypto.audit import record as audit_record

from infra.lab.plan import RANGE_SET_SUFFIX

from .address import (AddressError, blockable, blockable_network, blockable_target, canonical, is_range, network,
                      parse, parse_network, refused)
from .limits import BAN_TTL
from .model import Decision, Store

DEFAULT_TTL = 600.0
DEFAULT_ESCALATION = 4.0  # each repeat offence multiplies the TTL
DEFAULT_MAX_TTL = 7 * 86400.0
DEFAULT_ACTOR = "govctl-secops"  # who the daemon's decisions name
DEFAULT_QUIET_PERIOD = 0.0  # seconds after a block ends that forget one offence; 0: never forget


class RangePolicy:
    """When to block a whole range by itself: `addresses` distinct addresses of one /prefix_v4 (IPv6:
    /prefix_v6) blocked by rules within `window` seconds → the range is blocked for `ttl` (escalated like
    an address on a repeat offence)."""

    def __init__(self, addresses: int = 5, window: float = 600.0, prefix_v4: int = 24, prefix_v6: int = 64,
                 ttl: float = 3600.0):
        self.addresses, self.window, self.ttl = addresses, window, ttl
        self.prefix = {4: prefix_v4, 6: prefix_v6}


class Enforcer(Protocol):
    """Where blocks take effect. Implementations: nftables (lab), cloud security group / WAF (later)."""

    def block(self, items: list[tuple[str, float]]) -> list[tuple[str, str]]:
        """Block each (address, ttl seconds); the block must lapse by itself after ttl. Returns the
        (address, reason) of elements refused one by one (the others took effect); raises if the
        enforcement point itself failed (nothing can be said about the elements then)."""

    def unblock(self, addresses: list[str]) -> None:
        """Lift blocks now."""

    def blocked(self) -> dict[str, float | None]:
        """Addresses blocked now → seconds left (None if unknown)."""


class Allowlist:
    """Networks that are never blocked."""

    def __init__(self, networks: Iterable[str | ipaddress._BaseNetwork] = ()):
        self.networks = [network(str(n)) for n in networks]  # canonical: IPv4-mapped ranges as IPv4
        self._seen: dict[str, bool] = {}

    @classmethod
    def from_topology(cls, topology, extra: Iterable[str] = ()) -> "Allowlist":
        """Management (security_management) zones of every center, plus configured ranges."""
        nets: list = []
        for center in topology.centers:
            for zone in center.zones_of_kind("security_management"):
                for subnet in zone.subnets:
                    nets.append(subnet.ipv4)
                    if subnet.ipv6 is not None:
                        nets.append(subnet.ipv6)
        return cls([*nets, *extra])

    def __contains__(self, address: str) -> bool:
        hit = self._seen.get(address)
        if hit is None:
            try:
                addr = parse(address)  # ::ffff:10.11.4.10 is 10.11.4.10
                hit = any(addr.version == n.version and addr in n for n in self.networks)
            except AddressError:
                hit = False
            if len(self._seen) > 65536:
                self._seen.clear()
            self._seen[address] = hit
        return hit

    def to_list(self) -> list[str]:
        return [str(n) for n in self.networks]

    def holes(self, net) -> list:
        """The allowlisted networks inside range `net` (carved out of its block); AddressError if an
        allowlisted network holds the whole range."""
        holes = []
        for allowed in self.networks:
            if allowed.version != net.version or not allowed.overlaps(net):
                continue
            if net.subnet_of(allowed):
                raise AddressError(f"{str(net)!r} lies inside the allowlisted {allowed}; it is never blocked")
            holes.append(allowed)
        return holes


def carve(net, holes: list) -> list[str]:
    """Range `net` minus the `holes` (networks inside it), as the fewest CIDR blocks (nft elements)."""
    parts = [net]
    for hole in holes:
        parts = [piece for part in parts
                 for piece in (part.address_exclude(hole) if hole.subnet_of(part) else
                               [] if part.subnet_of(hole) else [part])]
    return [str(p.network_address) if p.prefixlen == p.max_prefixlen else str(p)
            for p in ipaddress.collapse_addresses(parts)]


class DecisionEngine:
    def __init__(self, allowlist: Allowlist, store: Store | None = None, enforcer: Enforcer | None = None,
                 ttl: float = DEFAULT_TTL, escalation: float = DEFAULT_ESCALATION, max_ttl: float = DEFAULT_MAX_TTL,
                 dry_run: bool = False, actor: str = DEFAULT_ACTOR, quiet_period: float = DEFAULT_QUIET_PERIOD,
                 min_prefix: dict[int, int] | None = None, range_policy: RangePolicy | None = None):
        self.allowlist, self.store, self.enforcer = allowlist, store, enforcer
        self.ttl, self.escalation, self.max_ttl = ttl, escalation, max_ttl
        # range bans: the broadest range allowed, the automatic policy (None: off), the ranges in force
        # (text → network; their ends are in `active`), and per /24 (/64) the addresses blocked lately
        self.quiet_period, self.min_prefix, self.range_policy = quiet_period, min_prefix, range_policy
        self.ranges: dict[str, ipaddress._BaseNetwork] = {}
        self._watch: dict[str, dict[str, float]] = {}
        self.watch_limit = 65536  # /24s (/64s) watched at most before the stale ones are dropped
        self.last_until: dict[str, float] = {}  # address or range → end of its latest block (for forgetting)
        self.dry_run, self.actor = dry_run, actor
        self.active: dict[str, float] = {}  # address → until
        self.offences: dict[str, int] = {}
        self.skipped: set[tuple[str, str]] = set()
        self.decisions: list[Decision] = []
        self._pending: list[Decision] = []  # decided, not yet taken by the enforcer
        self.set_aside: dict[str, str] = {}  # address → why the enforcer refused its element
        # refused_elements: elements the enforcer refused; unblockable_sources: (address, rule) pairs whose
        # alert named an address that is never blocked (loopback, multicast, …)
        self.counts: collections.Counter = collections.Counter()
        # True: rules' decisions ready to record (enforced or refused by the enforcer, or made without one)
        # wait in `unrecorded` for the caller to store with the batch that caused them (secops.daemon.Engine),
        # so a crash can neither lose nor double one; a person's block or lift is recorded at once.
        self.deferred = False
        self.unrecorded: list[Decision] = []
        if store is not None:
            self._load()

    def _load(self) -> None:
        """Earlier offences and the blocks still in force, from the store (either kind)."""
        for address, count in self.store.block_counts().items():  # rows from before the chokepoint: canonical now
            key = canonical(address) or address
            self.offences[key] = self.offences.get(key, 0) + count
        for address, (offence, until) in self.store.latest_blocks().items():
            key = canonical(address) or address
            if offence and key == address:  # the count the latest block escalated from (after any forgetting)
                self.offences[key] = offence
            self.last_until[key] = max(until, self.last_until.get(key, 0.0))
        self.skipped.update(self.store.allowlisted_alerts())
        self.sync_bans()

    def sync_bans(self) -> None:
        """The blocks in force, from the store again: another process (the console, `govctl bans`) may have
        lifted or added one. Without this a long-running daemon would take a lifted address for blocked
        until the old expiry and never block it again meanwhile. This engine's own blocks not stored yet
        (waiting for the enforcer, or for the caller's batch) stay in force."""
        active = {canonical(ban["address"]) or ban["address"]: _epoch(ban["until"]) if ban["until"] else math.inf
                  for ban in self.store.active_bans()}
        for decision in (*self._pending, *self.unrecorded):
            if decision.action == "block":
                active.setdefault(decision.address, decision.until)
        self.active = active
        self.ranges = {text: parse_network(text) for text in active if is_range(text)}

    def on_alert(self, alert, now: float | None = None) -> Decision | None:
        """Decide on an alert whose rule asks for a block; returns the decision, if any was made."""
        address = alert.group.get("source.ip")
        now = time.time() if now is None else now
        if self.active.get(address, 0) > now:  # the common case while an attack goes on: already blocked
            return None
        if alert.rule.response != "block" or not address:
            return None
        text = canonical(address)
        if not text or refused(text) is not None:
            if (address, alert.rule.name) not in self.skipped:
                self.skipped.add((address, alert.rule.name))
                self.counts["unblockable_sources"] += 1
            return None
        address = text
        if address in self.set_aside:  # the enforcer refused its element: deciding again would not help
            return None
        if address in self.allowlist:
            if (address, alert.rule.name) in self.skipped:
                return None
            self.skipped.add((address, alert.rule.name))
            return self._record(Decision(address, "allowlisted", f"{alert.rule.name}: address is allowlisted",
                                        self.actor, now, rule=alert.rule.name, alert_id=alert.id))
        if self.ranges and self._covered(address, now):  # a range in force drops it already
            return None
        decision = self.block(address, f"{alert.rule.name}: {alert.rule.title} ({alert.count} events)",
                              now=now, rule=alert.rule.name, alert_id=alert.id)
        if self.range_policy is not None:
            self._watch_range(address, now, alert)
        return decision

    def _covered(self, address: str, now: float) -> bool:
        """A range in force holds `address`: it counts as blocked until the range ends."""
        addr = parse(address)
        for text, net in self.ranges.items():
            if addr.version == net.version and addr in net and self.active.get(text, 0) > now:
                self.active[address] = self.active[text]
                return True
        return False

    def _watch_range(self, address: str, now: float, alert) -> Decision | None:
        """Count `address` for its /24 (/64); at `addresses` distinct ones within the window, block the range."""
        policy = self.range_policy
        addr = parse(address)
        key = str(ipaddress.ip_network(f"{addr}/{policy.prefix[addr.version]}", strict=False))
        if len(self._watch) > self.watch_limit:  # bounded memory under a scan from everywhere: keep what is recent
            self._watch = {k: seen for k, seen in self._watch.items()
                           if seen and max(seen.values()) > now - policy.window}
        seen = self._watch.setdefault(key, {})
        seen[address] = now
        for other, when in list(seen.items()):
            if when < now - policy.window:
                del seen[other]
        if len(seen) < policy.addresses or self.active.get(key, 0) > now:
            return None
        count = len(seen)
        seen.clear()
        try:
            return self.block(key, f"range: {count} addresses of {key} blocked within {policy.window:g} s "
                                   f"(last: {alert.rule.name})", now=now, rule=alert.rule.name,
                              alert_id=alert.id, base_ttl=policy.ttl)
        except AddressError:  # a range never blocked (allowlisted, special, broader than allowed)
            self.counts["refused_ranges"] += 1
            return None

    def _offence(self, target: str, now: float) -> int:
        """Earlier offences of `target` that still count: each full quiet period since its last block ended
        forgets one (so the multiplier decays rather than ratchets up for ever)."""
        count = self.offences.get(target, 0)
        last = self.last_until.get(target)
        if count and self.quiet_period > 0 and last is not None and now > last:
            count = max(0, count - int((now - last) // self.quiet_period))
        return count

    def elements(self, target: str) -> list[str]:
        """What the enforcer holds for a ban target: the address, or the range carved around the allowlist."""
        if not is_range(target):
            return [target]
        net = parse_network(target)
        try:
            holes = self.allowlist.holes(net)
        except AddressError:
            return []
        return carve(net, holes)

    def block(self, address: str, reason: str, now: float | None = None, ttl: float | None = None,
              actor: str | None = None, rule: str | None = None, alert_id: int | None = None,
              base_ttl: float | None = None) -> Decision:
        """Block an address or a CIDR range by hand or by rule. Escalates the TTL (from `base_ttl`, default
        the configured ttl) with each earlier offence that still counts, unless ttl is given. A range is
        carved: the allowlisted addresses inside it stay reachable (the reason says which)."""
        now = time.time() if now is None else now
        given, address = address, blockable_target(address, self.min_prefix)  # AddressError says why not
        if is_range(address):
            holes = self.allowlist.holes(parse_network(address))
            if holes:
                reason = f"{reason} [carved: {', '.join(map(str, holes))} allowlisted, never blocked]"
        elif address in self.allowlist:
            spelled = repr(given) if given == address else f"{given!r} ({address})"
            raise AddressError(f"{spelled} is in the allowlist ({', '.join(self.allowlist.to_list())}); "
                               "it is never blocked")
        offence = self._offence(address, now)
        if ttl is None:
            ttl = min((self.ttl if base_ttl is None else base_ttl) * self.escalation ** offence, self.max_ttl)
        BAN_TTL.check_number(ttl, "ttl")  # an endless or NaN ban would poison the trail and the kernel's timeout
        self.offences[address] = offence + 1
        self.active[address] = now + ttl
        self.last_until[address] = now + ttl
        if is_range(address):
            self.ranges[address] = parse_network(address)
        decision = Decision(address, "block", reason, actor or self.actor, now, ttl=ttl, until=now + ttl,
                            rule=rule, alert_id=alert_id, offence=offence + 1)
        if not self.dry_run and self.enforcer is not None:
            self._pending.append(decision)  # recorded by flush(), once the enforcer has answered
            return decision
        return self._record(decision)

    def unblock(self, address: str, reason: str, actor: str | None = None) -> Decision:
        # Canonical, zone ids refused; special addresses are accepted so that a block made before they
        # were refused can still be lifted.
        if isinstance(address, str) and "/" in address:
            net = parse_network(address)
            address = str(parse(str(net.network_address))) if net.prefixlen == net.max_prefixlen else str(net)
        else:
            address = str(parse(address))
        self.set_aside.pop(address, None)
        self.active.pop(address, None)
        if is_range(address):  # the addresses it covered are blocked again at their next attack
            net = self.ranges.pop(address, None) or parse_network(address)
            for other in [a for a in self.active if not is_range(a) and parse(a) in net]:
                del self.active[other]
        decision = Decision(address, "unblock", reason, actor or self.actor, time.time(),
                            enforced=not self.dry_run and self.enforcer is not None)
        if decision.enforced:
            self.enforcer.unblock(self.elements(address) if is_range(address) else [address])
        return self._record(decision)

    def flush(self) -> int:
        """Apply pending blocks in one batch and record them; returns how many the enforcer took.
        An element the enforcer refuses is recorded as not enforced, with the reason, and set aside."""
        if not self._pending or self.enforcer is None:
            return 0
        batch, self._pending = self._pending, []
        items = [(element, d.ttl) for d in batch for element in self.elements(d.address)]
        try:
            refused = dict(self.enforcer.block(items) or ())
        except Exception:
            self._pending = batch + self._pending  # kept for the next flush: a decided block is never lost
            raise
        took = getattr(self.enforcer, "took", None)  # an EnforcerGroup: the centers each element went to
        center = getattr(self.enforcer, "center", None)
        for decision in batch:
            elements = self.elements(decision.address)
            if is_range(decision.address):  # refused if any piece of the carved range was
                whys = [f"{e}: {refused[e]}" for e in elements if e in refused]
                why = "; ".join(whys) or None
            else:
                why = refused.get(decision.address)
            if took is not None:  # the centers that took every piece (a carved range is several elements)
                decision.centers = sorted(set().union(*(took.get(e, ()) for e in elements)))
            elif center and why is None:
                decision.centers = [center]
            if why is None:
                decision.enforced = True
            else:
                decision.reason = f"{decision.reason} [not enforced: {why}]"
                self.set_aside[decision.address] = why
                self.active.pop(decision.address, None)
                self.ranges.pop(decision.address, None)
                self.counts["refused_elements"] += 1
            self._record(decision)
        return len(batch) - len(refused)

    def _record(self, decision: Decision) -> Decision:
        self.decisions.append(decision)
        if len(self.decisions) > 10000:
            del self.decisions[:5000]
        if self.deferred and decision.rule is not None:  # a rule's decision on an alert; a person's is stored now
            self.unrecorded.append(decision)
        elif self.store is not None:
            decision.id = self.store.record_decision(decision)
            trail([decision], self.dry_run)
        return decision

    def take_unrecorded(self) -> list[Decision]:
        """With `deferred`: the decisions ready to be stored since the last call (the caller stores them)."""
        taken, self.unrecorded = self.unrecorded, []
        trail(taken, self.dry_run)
        return taken

    def blocked_addresses(self) -> list[str]:
        """Addresses and ranges blocked now, IPv4 first."""
        def order(text):
            net = parse_network(text) if is_range(text) else ipaddress.ip_network(text)
            return (net.version, net.network_address, net.prefixlen)
        return sorted(self.active, key=order)


def trail(decisions: list[Decision], dry_run: bool) -> None:
    """The audit trail of blocks and lifts (crypto.audit): a person's one at a time, a rule's
    automatic blocks as one entry per engine batch (an attack can cause thousands; one append
    per batch keeps the daemon's cost flat). Dry runs and allowlisted skips change nothing."""
    changes = [d for d in decisions if d.action in ("block", "unblock") and not dry_run]
    if not changes:
        return
    if len(changes) == 1 and changes[0].rule is None:
        d = changes[0]
        audit_record(d.actor, "ban.add" if d.action == "block" else "ban.lift", d.address,
                     {"reason": d.reason, "ttl": d.ttl, "enforced": d.enforced})
        return
    by_actor: dict[str, list[Decision]] = {}
    for d in changes:
        by_actor.setdefault(d.actor, []).append(d)
    for actor, batch in by_actor.items():
        audit_record(actor, "ban.auto", ",".join(d.address for d in batch[:20]) + (" …" if len(batch) > 20 else ""),
                     {"count": len(batch), "blocks": [{"address": d.address, "rule": d.rule, "ttl": d.ttl,
                                                       "enforced": d.enforced} for d in batch[:200]]})


def _epoch(stamp: str) -> float:
    import datetime as dt
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class NftablesEnforcer:
    """An nftables set with per-element timeouts, optionally inside a network namespace.

    `ensure()` creates the table, the address sets (hash, timeout), the range sets (interval, timeout;
    named `<set>_ranges`) and input/forward drop rules if they are missing; when a lab stack owns them,
    pass its names and skip `ensure`. Addresses and ranges live in separate sets because an interval set
    holding 100,000 addresses takes seconds per added element in nftables 1.0.6, a hash set under a
    millisecond (docs/benchmarks.md).

    Interval sets refuse an element that overlaps one they hold (no auto-merge: merged elements would lose
    their own timeouts). So a range inside a held range is taken as blocked already, and a range replaces
    the smaller ranges it holds (deleted first, only when nft refuses, so the common path stays one call
    per batch). A range also takes over the addresses of the address set it covers (they are deleted),
    so lifting the range lets them through, as its decision said.
    """

    def __init__(self, table: str = "govctl", set_name: str = "blocklist", family: str = "inet",
                 netns: str | None = None, nft: str = "nft", set6: str | None = None, center: str | None = None):
        self.table, self.set_name, self.family, self.netns, self.nft = table, set_name, family, netns, nft
        self.set6 = set6 or f"{set_name}6"
        self.range_sets = {4: f"{set_name}{RANGE_SET_SUFFIX}", 6: f"{self.set6}{RANGE_SET_SUFFIX}"}
        self.center = center  # the center whose firewall this is (a stack's), recorded on the blocks it takes

    def _run(self, script: str | None = None, args: list[str] | None = None) -> str:
        if args is None and self.nft == "nft" and (lib := _libnftables(self.netns)) is not None:
            return lib.run(script)  # in-process: no fork per batch (interception latency, issue 20)
        cmd = (["ip", "netns", "exec", self.netns] if self.netns else []) + [self.nft]
        cmd += args if args is not None else ["-f", "-"]
        proc = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"nft failed ({' '.join(cmd)}): {proc.stderr.strip()}")
        return proc.stdout

    def ensure(self) -> None:
        t = f"{self.family} {self.table}"
        self._run(f"add table {t}\n"
                  f"add chain {t} input {{ type filter hook input priority -10; policy accept; }}\n"
                  f"add chain {t} forward {{ type filter hook forward priority -10; policy accept; }}\n"
                  f"flush chain {t} input\nflush chain {t} forward\n"
                  f"add set {t} {self.set_name} {{ type ipv4_addr; flags timeout; }}\n"
                  f"add set {t} {self.set6} {{ type ipv6_addr; flags timeout; }}\n"
                  f"add set {t} {self.range_sets[4]} {{ type ipv4_addr; flags interval, timeout; }}\n"
                  f"add set {t} {self.range_sets[6]} {{ type ipv6_addr; flags interval, timeout; }}\n"
                  + "".join(f"add rule {t} {chain} {family} saddr @{name} drop\n"
                            for chain in ("input", "forward")
                            for family, name in (("ip", self.set_name), ("ip6", self.set6), ("ip", self.range_sets[4]),
                                                 ("ip6", self.range_sets[6]))))

    def _set_of(self, addr) -> str:
        """An address's set, or a range's (a network narrower than one address: ipaddress networks)."""
        if isinstance(addr, (ipaddress.IPv4Network, ipaddress.IPv6Network)) and addr.prefixlen < addr.max_prefixlen:
            return self.range_sets[addr.version]
        return self.set6 if addr.version == 6 else self.set_name

    def block(self, items: list[tuple[str, float]]) -> list[tuple[str, str]]:
        """Add the elements; returns the (address, reason) of those refused. Each element is rendered
        from the canonical address object, and one nft refuses is found by halving the batch, so it
        cannot hold up the others. Raises RuntimeError when the set itself cannot be reached."""
        t = f"{self.family} {self.table}"
        refused: list[tuple[str, str]] = []
        elements: list[tuple[str, str, str]] = []  # (address as decided, set, nft line)
        for address, ttl in items:
            try:  # a range here is a piece of a decided range (carved, narrower): the special blocks still apply
                addr = blockable_network(address, _ANY_PREFIX) if "/" in address else blockable(address)
            except AddressError as exc:
                refused.append((address, str(exc)))
                continue
            if not (isinstance(ttl, (int, float)) and math.isfinite(ttl) and ttl > 0):
                # the upper bound is the kernel's (nft says "value too large"): left to nft and the halving below
                refused.append((address, f"timeout {ttl!r} is not a positive number of seconds"))
                continue
            name = self._set_of(addr)
            elements.append((address, name, f"add element {t} {name} {{ {addr} timeout {max(1, int(ttl))}s }}"))
        if elements:
            try:
                self._run("\n".join(e[2] for e in elements) + "\n")
            except RuntimeError as exc:
                self._reachable({e[1] for e in elements}, exc)
                refused += self._bisect(elements)
            taken = {a for a, _ in refused}
            ranges = [e[0] for e in elements if e[1] in self.range_sets.values() and e[0] not in taken]
            if ranges:
                self._drop_covered(ranges)
        return refused

    def _drop_covered(self, ranges: list[str]) -> None:
        """Delete the addresses of the address sets that `ranges` cover: a range added takes them over, a
        range lifted lets them through (range bans are rare; listing the address set is their price)."""
        t = f"{self.family} {self.table}"
        nets = [ipaddress.ip_network(r) for r in ranges]
        script = ""
        for name in (self.set_name, self.set6):
            for key, _left in self._listed(name):
                addr = ipaddress.ip_address(key)
                if any(addr.version == net.version and addr in net for net in nets):
                    script += f"delete element {t} {name} {{ {key} }}\n"
        if script:
            self._run(script)

    def _reachable(self, sets: set[str], failure: Exception) -> None:
        """Raise `failure` unless every set is there: then the batch, not the set, was at fault."""
        for name in sorted(sets):
            try:
                self._run(args=["-t", "list", "set", self.family, self.table, name])
            except RuntimeError:
                raise failure from None

    def _bisect(self, elements: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
        """The elements of a refused batch that nft refuses on their own; the others are added."""
        if len(elements) == 1:
            try:
                self._run(elements[0][2] + "\n")
                return []
            except RuntimeError as exc:
                if "overlaps" in str(exc):
                    why = self._overlap(*elements[0])
                    return [] if why is None else [(elements[0][0], why)]
                return [(elements[0][0], _nft_reason(exc))]
        half = len(elements) // 2
        out: list[tuple[str, str]] = []
        for part in (elements[:half], elements[half:]):
            try:
                self._run("\n".join(e[2] for e in part) + "\n")
            except RuntimeError:
                out += self._bisect(part)
        return out

    def _overlap(self, address: str, name: str, line: str) -> str | None:
        """nft refused `line` as overlapping: None once it is settled (covered by a range held, or the
        elements it covers replaced by it), else why not (a partial overlap)."""
        target = ipaddress.ip_network(address)
        inside = []
        for key, net in self._elements(name):
            if target.subnet_of(net):
                return None  # a range in the set drops it already
            if net.subnet_of(target):
                inside.append(key)
            elif net.overlaps(target):
                return f"overlaps {key} in the set partly; lift that first"
        t = f"{self.family} {self.table}"
        try:
            self._run("".join(f"delete element {t} {name} {{ {key} }}\n" for key in inside) + line + "\n")
        except RuntimeError as exc:
            return _nft_reason(exc)
        return None

    def _elements(self, name: str) -> list[tuple[str, ipaddress._BaseNetwork]]:
        """(element as nft spells it: address, a.b.c.d/len or a-b; a network it covers) of set `name`."""
        out = []
        for key, _left in self._listed(name):
            if "-" in key:
                first, last = key.split("-")
                out += [(key, net) for net in ipaddress.summarize_address_range(ipaddress.ip_address(first),
                                                                              ipaddress.ip_address(last))]
            else:
                out.append((key, ipaddress.ip_network(key)))
        return out

    def _listed(self, name: str) -> list[tuple[str, float | None]]:
        try:
            doc = json.loads(self._run(args=["-j", "list", "set", self.family, self.table, name]))
        except RuntimeError:
            return []
        out = []
        for item in doc.get("nftables", []):
            for elem in item.get("set", {}).get("elem", []) or []:
                if isinstance(elem, dict) and "elem" in elem:
                    out.append((_element_text(elem["elem"]["val"]), elem["elem"].get("expires")))
                else:
                    out.append((_element_text(elem), None))
        return out

    def unblock(self, addresses: list[str]) -> None:
        """Delete the elements named (addresses, or ranges as they were added)."""
        t = f"{self.family} {self.table}"
        present = self.blocked()
        script = ""
        lifted = []  # ranges: the addresses they cover go too
        for address in addresses:
            try:
                addr = ipaddress.ip_network(address) if "/" in address else parse(address)
            except ValueError:
                continue  # never an element of the set
            if "/" in address:
                lifted.append(str(addr))
            if str(addr) in present:
                script += f"delete element {t} {self._set_of(addr)} {{ {addr} }}\n"
        if script:
            self._run(script)
        if lifted:
            self._drop_covered(lifted)

    def blocked(self) -> dict[str, float | None]:
        """Elements in the sets → seconds left: addresses, ranges as a.b.c.d/len (a-b for an odd interval)."""
        out: dict[str, float | None] = {}
        for name in (self.set_name, self.set6, *self.range_sets.values()):
            out.update(self._listed(name))
        return out


class EnforcerGroup:
    """Several enforcement points acting as one, e.g. the boundary firewall of every center: a block
    goes to all of them at once (in parallel, so interception latency does not grow with the number of
    centers). If any fails, the batch raises after the others are done, and the decision engine keeps
    it for the next batch; adding an element a set already holds is harmless in nftables."""

    def __init__(self, members: list[Enforcer]):
        from concurrent.futures import ThreadPoolExecutor
        self.members = list(members)
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.members)), thread_name_prefix="enforce")

    def _each(self, call) -> list:
        futures = [self._pool.submit(call, member) for member in self.members]
        results, failures = [], []
        for member, future in zip(self.members, futures):
            try:
                results.append(future.result())
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                failures.append(f"{getattr(member, 'netns', None) or member}: {exc}")
        if failures:
            raise RuntimeError("; ".join(failures))
        return results

    def block(self, items: list[tuple[str, float]]) -> list[tuple[str, str]]:
        """Refused by any member → refused (with every member's reason)."""
        if not items:
            return []
        reasons: dict[str, list[str]] = {}
        refused_by: dict[str, set[str]] = {}
        for member, member_refused in zip(self.members, self._each(lambda member: member.block(items))):
            for address, why in member_refused or ():
                reasons.setdefault(address, []).append(f"{getattr(member, 'netns', None) or member}: {why}")
                refused_by.setdefault(address, set()).add(getattr(member, "center", None))
        centers = [c for c in (getattr(m, "center", None) for m in self.members) if c]
        self.took = {address: [c for c in centers if c not in refused_by.get(address, ())] for address, _ in items}
        return [(address, "; ".join(whys)) for address, whys in reasons.items()]

    def unblock(self, addresses: list[str]) -> None:
        self._each(lambda member: member.unblock(addresses))

    def blocked(self) -> dict[str, float | None]:
        """Blocked in any member → the most seconds left there (None if unknown)."""
        out: dict[str, float | None] = {}
        for member_blocked in self._each(lambda member: member.blocked()):
            for address, left in member_blocked.items():
                known = out.get(address)
                out[address] = left if known is None or (left is not None and left > known) else known
        return out


_ANY_PREFIX = {4: 0, 6: 0}  # the enforcer's own check of a piece: special blocks only, any width


def _element_text(value) -> str:
    """An element's value in nft's JSON: an address, {"prefix": {addr, len}} or {"range": [first, last]}."""
    if isinstance(value, dict) and "prefix" in value:
        return f"{value['prefix']['addr']}/{value['prefix']['len']}"
    if isinstance(value, dict) and "range" in value:
        return f"{value['range'][0]}-{value['range'][1]}"
    return str(value)


def _nft_reason(exc: Exception) -> str:
    """nft's own complaint (its `Error:` line), short enough for a decision's reason."""
    text = str(exc)
    for line in text.splitlines():
        if "Error:" in line:
            return line[line.index("Error:"):][:200]
    return text[:200]


# --- interception at city size (issue 20, h-intercept): nft scripts in-process through libnftables ---

_LIBNFTABLES_LOCK = threading.Lock()
_LIBNFTABLES: dict[str | None, "_InProcessNft | None"] = {}
_CLONE_NEWNET = 0x40000000


def _libnftables(netns: str | None) -> "_InProcessNft | None":
    """The in-process runner of nft scripts for `netns` (one per namespace, shared), or None where
    libnftables cannot be loaded (then NftablesEnforcer runs the nft command, as before)."""
    with _LIBNFTABLES_LOCK:
        if netns not in _LIBNFTABLES:
            try:
                _LIBNFTABLES[netns] = _InProcessNft(netns)
            except OSError:
                _LIBNFTABLES[netns] = None
        lib = _LIBNFTABLES[netns]
        return lib if lib is not None and lib.broken is None else None


class _InProcessNft:
    """Runs nft scripts (what `nft -f -` reads) through libnftables, the library the nft command is
    itself built on, in the calling thread, which joins the network namespace for the script.

    Forking `ip netns exec … nft -f -` took ≈ 11 ms per batch on a loaded 2-core machine, most of an
    interception's latency, and three centers meant three forks at once; the same script in-process
    takes ≈ 0.1 ms. The script, the kernel's transaction and nft's error messages are the same, so a
    refused element still fails its batch with nft's own `Error:` line and is isolated by
    NftablesEnforcer's halving. PyPI has no kept-up libnftables binding and Debian's python3-nftables
    is for the system Python, so the few calls are bound here with ctypes.

    setns(2) moves only the calling thread, and only for the synchronous call: it joins /run/netns/<name>
    afresh for each script with a fresh libnftables context and goes home before returning (no other
    code runs on that thread meanwhile, so no socket of the process is ever made in the wrong namespace).
    Nothing keeps a namespace alive after `ip netns delete` (its interfaces go with it, as before), a
    namespace made again under the same name is the one written to, and a missing one is an error.
    An earlier version handed each script to a thread of its own per namespace: under heavy CPU
    contention every extra thread wake-up added to the tail (docs/benchmarks.md).
    """

    def __init__(self, netns: str | None):
        import ctypes
        import ctypes.util
        name = ctypes.util.find_library("nftables")
        if name is None:
            raise OSError("libnftables not found")
        lib = ctypes.CDLL(name)
        lib.nft_ctx_new.restype, lib.nft_ctx_new.argtypes = ctypes.c_void_p, [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        for getter in (lib.nft_ctx_get_output_buffer, lib.nft_ctx_get_error_buffer):
            getter.restype, getter.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self._lib, self._libc, self._ctypes = lib, ctypes.CDLL(None, use_errno=True), ctypes
        self.netns = netns
        # where a thread returns: the namespace the process started in (threads never stay elsewhere)
        self._home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.broken: str | None = None  # a thread could not go home: the nft command is used from then on

    def run(self, script: str) -> str:
        if self.netns is None:
            return self._script(script)
        return self._in_namespace(script)

    def _where(self) -> str:
        return f"nft in-process{f' in netns {self.netns}' if self.netns else ''}"

    def _setns(self, fd: int) -> None:
        if self._libc.setns(fd, _CLONE_NEWNET) != 0:
            raise OSError(self._ctypes.get_errno(), os.strerror(self._ctypes.get_errno()))

    def _in_namespace(self, script: str) -> str:
        try:
            fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            raise RuntimeError(f"nft failed ({self._where()}): network namespace {self.netns} does not exist") from None
        try:
            self._setns(fd)
        except OSError as exc:
            raise RuntimeError(f"nft failed ({self._where()}): cannot join the namespace: {exc.strerror}") from None
        finally:
            os.close(fd)
        try:
            return self._script(script)
        finally:
            try:
                self._setns(self._home)
            except OSError as exc:  # never seen; the thread must not go on in another namespace unnoticed
                self.broken = f"nft failed ({self._where()}): cannot leave the namespace: {exc.strerror}"
                raise RuntimeError(self.broken) from None

    def _script(self, script: str) -> str:
        ctx = self._lib.nft_ctx_new(0)
        if not ctx:
            raise RuntimeError(f"nft failed ({self._where()}): libnftables could not make a context")
        try:
            self._lib.nft_ctx_buffer_output(ctx)
            self._lib.nft_ctx_buffer_error(ctx)
            rc = self._lib.nft_run_cmd_from_buffer(ctx, script.encode())
            out = (self._lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
            err = (self._lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
        finally:
            self._lib.nft_ctx_free(ctx)
        if rc != 0:
            raise RuntimeError(f"nft failed ({self._where()}): {err.strip() or f'code {rc}'}")
        return out
