"""Vectorised IP address parsing and the prefix keys the IP encoder looks up.

An address is held as three parallel numpy arrays: ``is_v6`` (bool), ``hi`` and ``lo`` (uint64).
IPv4 keeps its 32-bit value in ``lo`` (``hi`` = 0). IPv4-mapped IPv6 (``::ffff:a.b.c.d``) is
treated as the IPv4 address it carries, so one client seen both ways is one address.

IPv4 is parsed with numpy, one column of characters at a time across all rows (dotted decimal,
four octets 0-255, no leading zeros: the same strictness as Python's ``ipaddress``). IPv6 strings
are rare in these logs and go through ``ipaddress`` once per *distinct* string.

A string longer than any address (``MAX_ADDRESS_LENGTH``) is invalid before it is parsed: the
character matrix is as wide as its longest string, so one 20 KB junk value would otherwise cost
20 KB for every distinct string beside it. A NUL character is refused (numpy's fixed-width
strings drop trailing NULs, which once made ``1.2.3.4\\x00`` an address).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

U64 = np.uint64
# the longest text form of an address: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
MAX_ADDRESS_LENGTH = 45
QUOTE_PREFIX = 40  # characters of a bad value an error line quotes
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


def _parse_ipv4_column(chars: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """chars: (n, w) uint32 code points (0 beyond the end). Returns (ok, value as uint64)."""
    n, width = chars.shape
    ok = (length >= 7) & (length <= 15)
    value = np.zeros(n, dtype=np.int64)
    octet = np.zeros(n, dtype=np.int64)
    digits = np.zeros(n, dtype=np.int64)
    dots = np.zeros(n, dtype=np.int64)
    leading_zero = np.zeros(n, dtype=bool)
    for j in range(min(width, 15)):
        c = chars[:, j].astype(np.int64)
        inside = j < length
        is_digit = inside & (c >= 48) & (c <= 57)
        is_dot = inside & (c == 46)
        ok &= ~inside | is_digit | is_dot
        # a digit after a lone leading "0" in the same octet: "01" is ambiguous (octal), refused
        leading_zero |= is_digit & (digits == 1) & (octet == 0)
        octet = np.where(is_digit, octet * 10 + (c - 48), octet)
        digits = np.where(is_digit, digits + 1, digits)
        closes = is_dot | (inside & (j == length - 1))
        ok &= ~closes | ((digits >= 1) & (digits <= 3) & (octet <= 255))
        value = np.where(closes, (value << 8) | octet, value)
        octet = np.where(is_dot, 0, octet)
        digits = np.where(is_dot, 0, digits)
        dots += is_dot
    ok &= (dots == 3) & ~leading_zero
    # the last character must be a digit (closes the fourth octet); "1.2.3." fails dots/digits
    last = chars[np.arange(n), np.clip(length - 1, 0, width - 1)].astype(np.int64)
    ok &= (last >= 48) & (last <= 57)
    return ok, value.astype(np.uint64)


def quote_value(text: object) -> str:
    """A bad value for an error line: its repr, cut to a short prefix when it is long."""
    if not isinstance(text, str):
        return repr(text)
    if len(text) <= QUOTE_PREFIX:
        return repr(text)
    return f"{text[:QUOTE_PREFIX]!r}... ({len(text):,} characters)"


def text_matrix(strings: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chars, length, candidate) for a list of distinct values.

    chars: (m, w) uint32 code points, 0 beyond each string's end, w <= MAX_ADDRESS_LENGTH;
    candidate: False for values that cannot be an address whatever they hold (not a str,
    empty, longer than MAX_ADDRESS_LENGTH, or holding a NUL); their rows are all zeros.
    """
    m = len(strings)
    py_len = np.fromiter(
        (len(s) if isinstance(s, str) else -1 for s in strings), dtype=np.int64, count=m
    )
    candidate = (py_len > 0) & (py_len <= MAX_ADDRESS_LENGTH)
    short = [s if ok else "" for s, ok in zip(strings, candidate.tolist(), strict=True)]
    as_str = np.array(short, dtype=f"U{MAX_ADDRESS_LENGTH}") if m else np.zeros(0, "U1")
    width = max(1, int(np.strings.str_len(as_str).max(initial=0)))
    as_str = as_str.astype(f"U{width}")
    length = np.strings.str_len(as_str).astype(np.int64)
    chars = as_str.view(np.uint32).reshape(m, width)
    # numpy drops trailing NULs ("1.2.3.4\x00" -> "1.2.3.4"); an inner NUL stays and is a code
    # point 0, which no address has
    candidate &= (length == py_len) & ~(
        (chars == 0) & (np.arange(width)[None, :] < length[:, None])
    ).any(axis=1)
    chars[~candidate] = 0
    length[~candidate] = 0
    return chars, length, candidate


def parse_addresses(texts: np.ndarray | list[str]) -> tuple[Addresses, np.ndarray]:
    """Parse address strings. Returns (addresses, ok mask); rows with ok=False are zeros.

    Work is done once per distinct string (logs repeat addresses a lot).
    """
    texts = np.asarray(texts, dtype=object)
    n = len(texts)
    if n == 0:
        empty = np.zeros(0, dtype=np.uint64)
        return Addresses(np.zeros(0, dtype=bool), empty, empty.copy()), np.zeros(0, dtype=bool)
    import pandas as pd

    codes, uniques = pd.factorize(texts, use_na_sentinel=True)
    uniq = list(uniques)
    m = len(uniq)
    u_ok = np.zeros(m, dtype=bool)
    u_v6 = np.zeros(m, dtype=bool)
    u_hi = np.zeros(m, dtype=np.uint64)
    u_lo = np.zeros(m, dtype=np.uint64)
    if m:
        chars, length, candidate = text_matrix(uniq)
        has_colon = (chars == 58).any(axis=1)
        v4_rows = np.flatnonzero(~has_colon & candidate)
        if len(v4_rows):
            ok4, val4 = _parse_ipv4_column(chars[v4_rows], length[v4_rows])
            u_ok[v4_rows] = ok4
            u_lo[v4_rows] = np.where(ok4, val4, 0)
        for i in np.flatnonzero(has_colon & candidate):
            try:
                addr = ipaddress.IPv6Address(uniq[i])
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
    valid = codes >= 0
    safe = np.where(valid, codes, 0)
    ok = valid & (u_ok[safe] if m else False)
    addresses = Addresses(
        np.where(ok, u_v6[safe], False) if m else np.zeros(n, dtype=bool),
        np.where(ok, u_hi[safe], 0).astype(np.uint64) if m else np.zeros(n, np.uint64),
        np.where(ok, u_lo[safe], 0).astype(np.uint64) if m else np.zeros(n, np.uint64),
    )
    return addresses, ok


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
