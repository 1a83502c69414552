"""Which rows of the IP embedding table an address sums: the IP encoder's lookup half.

Three designs, compared in ``benchmarks/ipinsights.py`` (docs/ipinsights-engine.md):

``prefix`` (default)
    One row per network prefix *seen in training*, at /8, /16, /24, /32 (IPv6: /16, /32, /48,
    /64, /128), plus a family row. An address sums the rows of the prefixes it has that training
    saw; an unseen prefix adds nothing (a zero row), so a new address in a known /16 is "the
    /16, without the detail", and an address in a network nobody used is little more than its
    family and /8. No hash collisions. (A variant with one trained "unseen" row per level did
    worse: random negatives taught those rows "unfamiliar", which then also hit new addresses
    inside known networks.)

    Because a new address in a known network has only its coarse rows, training makes those
    rows carry the network on their own (``trainer.py``): half the training pairs lose their /32
    row (prefix dropout) and the /24 and /32 rows learn at a quarter of the learning rate, so
    the detail rows refine what the /16 row says instead of absorbing it. Both are engine
    settings (``prefix_dropout``, ``prefix_lr_scale``); they apply to ``hashed`` alike, and
    :meth:`AddressIndexer.row_depths` tells which rows belong to which level.
``hashed``
    The same prefixes hashed into a fixed number of buckets per level (sized from the training
    data), SageMaker-style hashing applied to the address side.
``octet``
    One row per (byte position, byte value): the address as a bag of its bytes. Additive over
    bytes, so it needs hidden layers to express "this /16 but not that one".

All return an (n, NUM_SLOTS) int64 array of row indices, ``padding_row`` for unused slots.
"""

from __future__ import annotations

import numpy as np

from secml.ipinsights.addresses import (
    NUM_LEVELS,
    NUM_SLOTS,
    V6_BASE,
    Addresses,
    mix64,
    octets,
    prefix_keys,
)

ENCODERS = ("prefix", "hashed", "octet")
OCTET_SLOTS = 17  # up to 16 bytes + a family row


class AddressIndexer:
    """Maps addresses to embedding rows. Its state is a few numpy arrays (saved with the model)."""

    def __init__(self, kind: str, arrays: dict[str, np.ndarray]):
        if kind not in ENCODERS:
            raise ValueError(f"unknown IP encoder {kind!r}; expected one of {ENCODERS}")
        self.kind = kind
        self.arrays = arrays
        if kind == "prefix":
            self._vocab = [arrays[f"vocab_{lvl}"] for lvl in range(NUM_LEVELS)]
            self._index: list = [None] * NUM_LEVELS
            sizes = np.array([len(v) for v in self._vocab], dtype=np.int64)
            self._offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            self.num_rows = int(sizes.sum()) + 1
        elif kind == "hashed":
            self._buckets = arrays["buckets"].astype(np.uint64)
            self._offsets = np.concatenate([[0], np.cumsum(arrays["buckets"])[:-1]]).astype(
                np.int64
            )
            self.num_rows = int(arrays["buckets"].sum()) + 1
        else:
            self.num_rows = 16 * 256 + 2 + 1
        self.padding_row = self.num_rows - 1
        self._lut: list[np.ndarray] | None = None
        self.slots = OCTET_SLOTS if kind == "octet" else NUM_SLOTS

    @classmethod
    def fit(cls, kind: str, addresses: Addresses) -> AddressIndexer:
        """Build the vocabulary / bucket sizes from the training addresses."""
        if kind == "octet":
            return cls(kind, {})
        levels, keys = prefix_keys(addresses)
        arrays: dict[str, np.ndarray] = {}
        buckets = np.ones(NUM_LEVELS, dtype=np.int64)
        for lvl in range(NUM_LEVELS):
            seen = np.unique(keys[levels == lvl])
            arrays[f"vocab_{lvl}"] = seen
            if lvl in (0, V6_BASE):
                buckets[lvl] = 1
            else:
                # ~2 buckets per distinct prefix (the num_entity_vectors advice), power of two
                want = max(1024, 2 * len(seen))
                buckets[lvl] = min(1 << 22, 1 << int(np.ceil(np.log2(want))))
        if kind == "hashed":
            return cls(kind, {"buckets": buckets})
        return cls(kind, arrays)

    def row_depths(self) -> np.ndarray:
        """(num_rows,) int64: 0 for a finest-level row (/32, /128), 1 for the next (/24, /64), ...;
        -1 for family rows, the padding row and every ``octet`` row (no prefix levels)."""
        depth = np.full(self.num_rows, -1, dtype=np.int64)
        if self.kind == "octet":
            return depth
        sizes = (
            [len(v) for v in self._vocab] if self.kind == "prefix" else list(self.arrays["buckets"])
        )
        for lvl in range(NUM_LEVELS):
            if lvl in (0, V6_BASE):
                continue
            last = V6_BASE - 1 if lvl < V6_BASE else NUM_LEVELS - 1
            start = int(self._offsets[lvl])
            depth[start : start + int(sizes[lvl])] = last - lvl
        return depth

    def rows(self, addresses: Addresses) -> np.ndarray:
        if self.kind == "octet":
            return self._octet_rows(addresses)
        levels, keys = prefix_keys(addresses)
        out = np.full(levels.shape, self.padding_row, dtype=np.int64)
        for lvl in np.unique(levels):
            if lvl < 0:
                continue
            where = levels == lvl
            k = keys[where]
            if self.kind == "prefix":
                out[where] = self._lookup(lvl, k)
            else:
                bucket = (mix64(k ^ np.uint64(lvl)) % self._buckets[lvl]).astype(np.int64)
                out[where] = self._offsets[lvl] + bucket
        return out

    def random_ipv4_rows(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Rows of n uniformly random IPv4 addresses (the training hot path: no parsing)."""
        from secml.ipinsights.addresses import random_addresses

        if self.kind != "prefix":
            return self.rows(random_addresses(rng, np.zeros(n, dtype=bool)))
        lo = rng.integers(0, 2**32, size=n, dtype=np.uint64)
        if self._lut is None:
            # direct lookup tables for /8 and /16 (256 and 65536 entries): no searchsorted
            self._lut = [self._level_lookup(lvl, bits) for lvl, bits in ((1, 8), (2, 16))]
        out = np.empty((n, NUM_SLOTS), dtype=np.int64)
        out[:, 0] = self._offsets[0] if len(self._vocab[0]) else self.padding_row
        out[:, 1] = self._lut[0][lo >> np.uint64(24)]
        out[:, 2] = self._lut[1][lo >> np.uint64(16)]
        # a /24 (/32) can only be known inside a known /16: look up just those few
        inside = np.flatnonzero(out[:, 2] != self.padding_row)
        for slot, bits in ((3, 24), (4, 32)):
            out[:, slot] = self.padding_row
            vocab = self._vocab[slot]
            if len(vocab) == 0 or len(inside) == 0:
                continue
            out[inside, slot] = self._lookup(slot, lo[inside] >> np.uint64(32 - bits))
        out[:, 5:] = self.padding_row
        return out

    def _lookup(self, lvl: int, keys: np.ndarray) -> np.ndarray:
        """Rows of the prefixes ``keys`` of level ``lvl`` (the padding row where unseen): a hash
        lookup (pandas' hash table over the level's vocabulary, built once per model), about
        15x the speed of a binary search over a vocabulary of 250,000 /32s."""
        if len(self._vocab[lvl]) == 0:
            return np.full(len(keys), self.padding_row, dtype=np.int64)
        if self._index[lvl] is None:
            import pandas as pd

            self._index[lvl] = pd.Index(self._vocab[lvl])
        pos = self._index[lvl].get_indexer(keys)
        return np.where(pos >= 0, self._offsets[lvl] + pos, self.padding_row)

    def _level_lookup(self, lvl: int, bits: int) -> np.ndarray:
        lut = np.full(1 << bits, self.padding_row, dtype=np.int64)
        vocab = self._vocab[lvl]
        lut[vocab.astype(np.int64)] = self._offsets[lvl] + np.arange(len(vocab))
        return lut

    def _octet_rows(self, addresses: Addresses) -> np.ndarray:
        n = len(addresses)
        data = octets(addresses)
        out = np.full((n, OCTET_SLOTS), self.padding_row, dtype=np.int64)
        positions = np.arange(16, dtype=np.int64) * 256
        v6 = addresses.is_v6
        out[:, :16] = positions + data
        out[~v6, 4:16] = self.padding_row
        out[:, 16] = 16 * 256 + v6.astype(np.int64)
        return out
