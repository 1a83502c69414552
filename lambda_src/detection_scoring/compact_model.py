"""Score (principal, IP) pairs with an exported IP Insights model, in pure Python (stdlib only).

The artifact (written by secml/ipinsights/export.py) is a zip:

- ``model.json``: ``vector_dim``, ``encoder`` (``kind`` prefix|hashed|octet, ``rows``, and
  ``vocab_sizes`` or ``buckets``), ``layers``, ``threshold``, ``ipv4_only`` and
  ``principal_networks`` (principal -> networks it used in training);
- little-endian arrays: ``entity_hashes.u64`` (sorted 64-bit blake2b of each training
  principal), ``entity_vectors.f32`` (one row per hash), ``population.f32`` (the vector for
  principals never seen), ``ip_table.f32`` (``rows`` x ``vector_dim``), ``vocab_<level>.u64``
  (sorted prefix keys, prefix encoder), ``layer_<i>_weight.f32`` / ``layer_<i>_bias.f32``.

score = entity_vector . encoder(sum of the address's IP table rows), as the local engine
computes it (secml/ipinsights/model.py); a test checks both give the same numbers.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import sys
import zipfile
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from operator import mul

FORMAT = "secml-ipinsights-compact"
FORMAT_VERSION = 1
MASK64 = 0xFFFFFFFFFFFFFFFF
# Prefix levels, as secml/ipinsights/addresses.py numbers them: IPv4 family key, /8, /16, /24,
# /32; IPv6 family key, /16, /32, /48, /64, /128.
IPV4_PREFIXES = (8, 16, 24, 32)
IPV6_PREFIXES = (16, 32, 48, 64, 128)
V6_BASE = 1 + len(IPV4_PREFIXES)
OCTET_FAMILY_ROW = 16 * 256


class ModelError(ValueError):
    """The artifact cannot be read as a model of this format."""


@dataclass(frozen=True)
class PairScore:
    principal: str
    ip: str
    score: float
    known_principal: bool


def _array(kind: str, data: bytes) -> array:
    values = array(kind)
    values.frombytes(data)
    if sys.byteorder == "big":  # the artifact is little-endian
        values.byteswap()
    return values


def mix64(x: int) -> int:
    """splitmix64 finaliser, as secml/ipinsights/addresses.py."""
    x &= MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def entity_hash(principal: str) -> int:
    """64-bit blake2b of the UTF-8 bytes, as secml/ipinsights/data.py hashes entities."""
    return int.from_bytes(hashlib.blake2b(principal.encode("utf-8"), digest_size=8).digest(), "big")


def parse_ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address; IPv4-mapped IPv6 counts as the IPv4 address it carries (as the engine)."""
    addr = ipaddress.ip_address(ip.strip())
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def network_of(ip: str) -> str:
    """The network explanations talk about: IPv4 /16, IPv6 /32."""
    addr = parse_ip(ip)
    prefix = 16 if addr.version == 4 else 32
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def prefix_keys(addr) -> list[tuple[int, int]]:
    """(level, key) of the address's family and prefixes (secml/ipinsights/addresses.py)."""
    value = int(addr)
    if addr.version == 4:
        return [(0, 0)] + [(s, value >> (32 - bits)) for s, bits in enumerate(IPV4_PREFIXES, 1)]
    hi, lo = value >> 64, value & MASK64
    keys = [(V6_BASE, 0)]
    for s, bits in enumerate(IPV6_PREFIXES, 1):
        key = hi >> (64 - bits) if bits <= 64 else mix64(hi) ^ lo
        keys.append((V6_BASE + s, key))
    return keys


class CompactModel:
    """An exported model: ``score(principal, ip)``, ``threshold``, ``explain(...)``."""

    def __init__(self, meta: dict, arrays: dict[str, array]):
        self.meta = meta
        self.dim = int(meta["vector_dim"])
        self.threshold = float(meta["threshold"])
        self.ipv4_only = bool(meta.get("ipv4_only", False))
        self.principal_networks = {
            p: frozenset(nets) for p, nets in meta.get("principal_networks", {}).items()
        }
        self.all_networks = frozenset().union(*self.principal_networks.values())
        self._hashes = arrays["entity_hashes.u64"]
        self._entities = arrays["entity_vectors.f32"]
        self._population = list(arrays["population.f32"])
        self._table = arrays["ip_table.f32"]
        encoder = meta["encoder"]
        self.kind = encoder["kind"]
        self._rows = int(encoder["rows"])
        if self.kind == "prefix":
            sizes = encoder["vocab_sizes"]
            self._vocab = [arrays[f"vocab_{lvl}.u64"] for lvl in range(len(sizes))]
            self._offsets = [sum(sizes[:lvl]) for lvl in range(len(sizes))]
        elif self.kind == "hashed":
            self._buckets = [int(b) for b in encoder["buckets"]]
            self._offsets = [sum(self._buckets[:lvl]) for lvl in range(len(self._buckets))]
        elif self.kind != "octet":
            raise ModelError(f"unknown IP encoder {self.kind!r}")
        self._layers = [
            (
                [
                    arrays[f"layer_{i}_weight.f32"][r * self.dim : (r + 1) * self.dim]
                    for r in range(self.dim)
                ],
                list(arrays[f"layer_{i}_bias.f32"]),
            )
            for i in range(int(meta["layers"]))
        ]
        if len(self._entities) != len(self._hashes) * self.dim:
            raise ModelError("entity_vectors.f32 does not match entity_hashes.u64")
        if len(self._table) != self._rows * self.dim:
            raise ModelError("ip_table.f32 does not match the encoder's row count")

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactModel:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                meta = json.loads(archive.read("model.json"))
                if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
                    raise ModelError(
                        f"not a {FORMAT} v{FORMAT_VERSION} artifact "
                        f"(format {meta.get('format')!r}, version {meta.get('version')!r})"
                    )
                arrays = {
                    name: _array("Q" if name.endswith(".u64") else "f", archive.read(name))
                    for name in archive.namelist()
                    if name.endswith((".u64", ".f32"))
                }
            return cls(meta, arrays)
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"cannot read the model artifact: {exc}") from None

    # ------------------------------------------------------------------------------ scoring
    def _entity_vector(self, principal: str) -> tuple[list[float] | array, bool]:
        h = entity_hash(principal)
        pos = bisect_left(self._hashes, h)
        if pos < len(self._hashes) and self._hashes[pos] == h:
            return self._entities[pos * self.dim : (pos + 1) * self.dim], True
        return self._population, False

    def _ip_rows(self, addr) -> list[int]:
        if self.kind == "octet":
            data = addr.packed
            rows = [i * 256 + b for i, b in enumerate(data)]
            return rows + [OCTET_FAMILY_ROW + (addr.version == 6)]
        rows = []
        for level, key in prefix_keys(addr):
            if self.kind == "prefix":
                vocab = self._vocab[level]
                pos = bisect_left(vocab, key)
                if pos < len(vocab) and vocab[pos] == key:
                    rows.append(self._offsets[level] + pos)
            else:
                rows.append(self._offsets[level] + mix64(key ^ level) % self._buckets[level])
        return rows

    def ip_vector(self, ip: str) -> list[float]:
        dim, table = self.dim, self._table
        h = [0.0] * dim
        for row in self._ip_rows(parse_ip(ip)):
            h = list(map(float.__add__, h, table[row * dim : (row + 1) * dim]))
        for i, (weight, bias) in enumerate(self._layers):
            h = [sum(map(mul, w, h)) + b for w, b in zip(weight, bias, strict=True)]
            if i < len(self._layers) - 1:
                h = [v if v > 0.0 else 0.0 for v in h]
        return h

    def score(self, principal: str, ip: str) -> PairScore:
        entity, known = self._entity_vector(principal)
        value = sum(map(mul, entity, self.ip_vector(ip)))
        return PairScore(principal, ip, float(value), known)

    # ----------------------------------------------------------------------------- the why
    def explain(self, pair: PairScore) -> str:
        """Why the pair scores as it does, in terms of what the model saw in training."""
        network = network_of(pair.ip)
        if not pair.known_principal:
            return (
                "principal never seen in training: scored against the average principal, "
                f"and {'some principal' if network in self.all_networks else 'no principal'} "
                f"used {network} in training"
            )
        used = self.principal_networks.get(pair.principal, frozenset())
        if network not in used:
            others = "other principals did" if network in self.all_networks else "nor did anyone"
            return f"principal never used {network} in training ({others})"
        return f"principal used {network} in training, but this address is unlike its usual ones"
