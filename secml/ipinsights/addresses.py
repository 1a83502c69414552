"""Vectorised IP address parsing and the prefix keys the IP encoder looks up.

An address is held as three parallel numpy arrays: ``is_v6`` (bool), ``hi`` and ``lo`` (uint64).
IPv4 keeps its 32-bit value in ``lo`` (``hi`` = 0). IPv4-mapped IPv6 (``::ffff:a.b.c.d``) is
treated as the IPv4 address it carries, so one client seen both ways is one address.

Parsing is done once per *distinct* string (logs repeat addresses a lot): IPv4 with
``inet_pton`` plus a check that the text is the canonical dotted quad (four decimal octets 0-255,
no leading zeros: the same strictness as Python's ``ipaddress``), IPv6 with ``ipaddress``.

A string longer than any address (``MAX_ADDRESS_LENGTH``) is invalid before any parser sees it.
(The numpy parser used before sized a character matrix by the longest string, so one 20 KB junk
value cost 20 KB for every distinct string beside it, and its fixed-width strings dropped
trailing NULs, which made ``1.2.3.4\\x00`` an address.)
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass

import numpy as np

U64 = np.uint64
# the longest text form of an address: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
MAX_ADDRESS_LENGTH = 45
MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass
class Addresses:
    is_v6: np.ndarray  # bool
    hi: np.ndarray  # uint64: IPv6 upper 64 bits, 0 for IPv4
    lo: np.ndarray  # uint64: IPv6 lower 64 bits, or the IPv4 value

    def __len__(self) -> int:
        return len(self.lo)

    def take(self, index: np.ndarray) -> Addresses:
        return Addresses(self.is_v6[index], self.hi[index], self.lo[index])


def parse_addresses(texts: np.ndarray | list[str]) -> tuple[Addresses, np.ndarray]:
    """Parse address strings. Returns (addresses, ok mask); rows with ok=False are zeros.

    Work is done once per distinct string (logs repeat addresses a lot).
    """
    texts = np.asarray(texts, dtype=object)
    n = len(texts)
    if n == 0:
        return parse_distinct_addresses([])
    import pandas as pd

    codes, uniques = pd.factorize(texts, use_na_sentinel=True)
    u_addr, u_ok = parse_distinct_addresses(list(uniques))
    valid = codes >= 0
    safe = np.where(valid, codes, 0)
    ok = valid & (u_ok[safe] if len(u_ok) else False)
    if not len(u_ok):
        zeros = np.zeros(n, np.uint64)
        return Addresses(np.zeros(n, dtype=bool), zeros, zeros.copy()), ok
    addresses = Addresses(
        np.where(ok, u_addr.is_v6[safe], False),
        np.where(ok, u_addr.hi[safe], 0).astype(np.uint64),
        np.where(ok, u_addr.lo[safe], 0).astype(np.uint64),
    )
    return addresses, ok


def parse_distinct_addresses(uniq: list) -> tuple[Addresses, np.ndarray]:
    """``parse_addresses`` for values already made distinct (the scoring path factorizes once
    and keeps the codes). Returns (addresses, ok) per value; rows with ok=False are zeros.

    Only strings of an address's length reach a parser: IPv4 candidates (7-15 characters) go
    through ``inet_pton``, and what it refuses but holds a ``:`` through ``ipaddress``.
    """
    m = len(uniq)
    u_ok = np.zeros(m, dtype=bool)
    u_v6 = np.zeros(m, dtype=bool)
    u_hi = np.zeros(m, dtype=np.uint64)
    u_lo = np.zeros(m, dtype=np.uint64)
    try:
        length = np.fromiter(map(len, uniq), dtype=np.int64, count=m)
        if not all(map(str.__instancecheck__, uniq)):
            raise TypeError
    except TypeError:
        length = np.fromiter(
            (len(s) if isinstance(s, str) else -1 for s in uniq), dtype=np.int64, count=m
        )
    v4 = np.flatnonzero((length >= 7) & (length <= 15))
    if len(v4):
        ok4, val4 = _parse_ipv4([uniq[i] for i in v4.tolist()], length[v4])
        u_ok[v4] = ok4
        u_lo[v4] = val4
    # "::" is the shortest IPv6 text; NULs are refused by both parsers
    for i in np.flatnonzero((length >= 2) & (length <= MAX_ADDRESS_LENGTH) & ~u_ok).tolist():
        text = uniq[i]
        if ":" not in text:
            continue
        try:
            addr = ipaddress.IPv6Address(text)
        except ValueError:
            continue
        u_ok[i] = True
        if addr.ipv4_mapped is not None:
            u_lo[i] = int(addr.ipv4_mapped)
        else:
            value = int(addr)
            u_v6[i] = True
            u_hi[i] = value >> 64
            u_lo[i] = value & 0xFFFFFFFFFFFFFFFF
    return Addresses(u_v6, u_hi, u_lo), u_ok


_PTON4 = functools.partial(socket.inet_pton, socket.AF_INET)


def _parse_ipv4(texts: list[str], length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ok, value as uint64) of IPv4 candidates: ``inet_pton`` (about 5x the speed of the
    column-wise numpy parser this replaces), then a check that the text is exactly the
    canonical dotted quad of its value (the same strictness as ``ipaddress``: no leading zeros,
    four decimal octets), whatever the platform's ``inet_pton`` tolerates."""
    k = len(texts)
    ok = np.ones(k, dtype=bool)
    try:
        packed = b"".join(map(_PTON4, texts))
    except (OSError, ValueError):
        parts = []
        for j, text in enumerate(texts):
            try:
                parts.append(_PTON4(text))
            except (OSError, ValueError):
                parts.append(b"\0\0\0\0")
                ok[j] = False
        packed = b"".join(parts)
    value = np.frombuffer(packed, dtype=">u4").astype(np.int64)
    digits = np.zeros(k, dtype=np.int64)
    for shift in (24, 16, 8, 0):
        octet = (value >> shift) & 0xFF
        digits += 1 + (octet >= 10) + (octet >= 100)
    ok &= digits + 3 == length
    return ok, np.where(ok, value, 0).astype(np.uint64)


def format_address(is_v6: bool, hi: int, lo: int) -> str:
    if is_v6:
        return str(ipaddress.IPv6Address((int(hi) << 64) | int(lo)))
    return str(ipaddress.IPv4Address(int(lo)))


def random_addresses(rng: np.random.Generator, is_v6: np.ndarray) -> Addresses:
    """Uniformly random addresses, each of the same family as the row it stands beside."""
    n = len(is_v6)
    lo = rng.integers(0, 2**32, size=n, dtype=np.uint64)
    hi = np.zeros(n, dtype=np.uint64)
    if is_v6.any():
        k = int(is_v6.sum())
        lo[is_v6] = rng.integers(0, 2**64, size=k, dtype=np.uint64, endpoint=False)
        hi[is_v6] = rng.integers(0, 2**64, size=k, dtype=np.uint64, endpoint=False)
    return Addresses(is_v6.copy(), hi, lo)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fast, well-spread, platform-independent 64-bit mix."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = x ^ (x >> U64(30))
        x = x * U64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> U64(27))
        x = x * U64(0x94D049BB133111EB)
        x = x ^ (x >> U64(31))
    return x


# The prefix levels the encoder embeds. Each address yields a family key (slot 0) and one key
# per prefix length of its family; a family with fewer levels leaves its last slots unused
# (level -1).
IPV4_PREFIXES = (8, 16, 24, 32)
IPV6_PREFIXES = (16, 32, 48, 64, 128)
V6_BASE = 1 + len(IPV4_PREFIXES)  # level of the IPv6 family key
NUM_LEVELS = V6_BASE + 1 + len(IPV6_PREFIXES)
NUM_SLOTS = 1 + max(len(IPV4_PREFIXES), len(IPV6_PREFIXES))


def prefix_keys(addresses: Addresses) -> tuple[np.ndarray, np.ndarray]:
    """(levels, keys): two (n, NUM_SLOTS) arrays; level ids (int64, -1 unused), uint64 keys."""
    n = len(addresses)
    levels = np.full((n, NUM_SLOTS), -1, dtype=np.int64)
    keys = np.zeros((n, NUM_SLOTS), dtype=np.uint64)
    v4 = ~addresses.is_v6
    lo, hi = addresses.lo, addresses.hi
    levels[:, 0] = np.where(v4, 0, V6_BASE)
    for s, bits in enumerate(IPV4_PREFIXES, start=1):
        levels[v4, s] = s
        keys[v4, s] = lo[v4] >> U64(32 - bits)
    v6 = addresses.is_v6
    if v6.any():
        for s, bits in enumerate(IPV6_PREFIXES, start=1):
            levels[v6, s] = V6_BASE + s
            if bits <= 64:
                keys[v6, s] = hi[v6] >> U64(64 - bits)
            else:
                keys[v6, s] = mix64(hi[v6]) ^ lo[v6]
    return levels, keys


def octets(addresses: Addresses) -> np.ndarray:
    """(n, 16) uint8: the address bytes; IPv4 fills the first four, the rest are zero."""
    n = len(addresses)
    out = np.zeros((n, 16), dtype=np.int64)
    v4 = ~addresses.is_v6
    for i in range(4):
        out[v4, i] = (addresses.lo[v4] >> U64(24 - 8 * i)) & U64(0xFF)
    v6 = addresses.is_v6
    if v6.any():
        for i in range(8):
            out[v6, i] = (addresses.hi[v6] >> U64(56 - 8 * i)) & U64(0xFF)
            out[v6, 8 + i] = (addresses.lo[v6] >> U64(56 - 8 * i)) & U64(0xFF)
    return out
