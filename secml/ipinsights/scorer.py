"""Scoring a saved model with numpy alone: what `secml score` runs, without importing torch.

Scoring is forward-only: an entity's row (or the population vector), the sum of an address's
rows of the IP table, the FC layers, one dot product. Once the weights are numpy arrays that is
a gather and a few matrix products, and ``import torch`` (about 2 s of a 1-row ``secml score``)
buys nothing. So a saved model keeps its weights in ``weights.npz`` (the network's state dict,
one array per name; written by ``IPInsights.save``), which both this scorer and
``IPInsights.load`` read. Models saved before that keep them in ``model.pt``: only the torch
path reads those (``secml score`` falls back to it, see ``load_for_scoring``).

The arithmetic is ``IPInsights.score_distinct``'s, in float32, in the same order of operations
(tests keep the two within 1e-5).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from secml.errors import SecmlError, short
from secml.ipinsights.addresses import (
    NUM_LEVELS,
    Addresses,
    parse_distinct_addresses,
)
from secml.ipinsights.encoder import ENCODERS, AddressIndexer
from secml.ipinsights.hyperparameters import validate_hyperparameters
from secml.ipinsights.scoring import as_objects, distinct_entity_hashes, factorize_texts

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.npz"
LEGACY_WEIGHTS_FILE = "model.pt"  # torch.save of the state dict, before WEIGHTS_FILE
ENTITY_ROWS = ("table", "hash")
SCORE_ROWS = 1 << 20  # rows of input per factorization in score_texts()
SCORE_CHUNK = 8192  # rows of embeddings at a time (4 MiB at vector_dim 128: cache-sized)


# ------------------------------------------------------------------- the model's files


def read_json_object(file: Path) -> dict:
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SecmlError(
            f"{file}: missing: not a trained model directory, or a partial one"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SecmlError(f"{file}: not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(value, dict):
        raise SecmlError(f"{file}: expected a JSON object, got {type(value).__name__}")
    return value


def read_npz(file: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise SecmlError(f"{file}: missing (a partial model directory?)") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise SecmlError(f"{file}: not a readable numpy archive ({str(exc)[:120]})") from None


def read_model_header(path: Path) -> tuple[dict, dict]:
    """(engine.json, hyperparameters.json) of a model folder, the format checked."""
    if not path.is_dir():
        what = "no such folder" if not path.exists() else "not a folder"
        raise SecmlError(f"{path}: {what}, not a trained model directory (train --model-dir)")
    engine = read_json_object(path / "engine.json")
    hyperparameters = read_json_object(path / "hyperparameters.json")
    if engine.get("format") != FORMAT_VERSION:
        raise SecmlError(
            f"{path / 'engine.json'}: model format {engine.get('format')!r} is not supported "
            f"(expected {FORMAT_VERSION})"
        )
    return engine, hyperparameters


def read_encoder(path: Path, ip_encoder: str) -> tuple[np.ndarray, AddressIndexer]:
    """(known entity hashes, address indexer) from encoder.npz."""
    arrays = read_npz(path / "encoder.npz")
    try:
        known_hashes = arrays.pop("known_hashes")
        if ip_encoder == "prefix":
            arrays = {f"vocab_{i}": arrays[f"vocab_{i}"] for i in range(NUM_LEVELS)}
        return known_hashes, AddressIndexer(ip_encoder, arrays)
    except (KeyError, ValueError, TypeError) as exc:
        raise SecmlError(f"{path / 'encoder.npz'}: missing or wrong array ({exc})") from None


def weight_shapes(hyperparameters: dict, ip_table_rows: int) -> dict[str, tuple[int, ...]]:
    """The state dict of ``network.IPInsightsNet``: name -> shape."""
    dim = hyperparameters["vector_dim"]
    shapes = {
        "entity": (hyperparameters["num_entity_vectors"], dim),
        "ip_table": (ip_table_rows, dim),
        "population": (dim,),
    }
    for i in range(hyperparameters["num_ip_encoder_layers"]):
        shapes[f"layers.{i}.weight"] = (dim, dim)
        shapes[f"layers.{i}.bias"] = (dim,)
    return shapes


def read_weights(file: Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """weights.npz, refused unless it holds exactly ``shapes`` as float32 arrays."""
    arrays = read_npz(file)
    got = {name: tuple(a.shape) for name, a in arrays.items()}
    if got != shapes or any(a.dtype != np.float32 for a in arrays.values()):
        wrong = sorted(set(got.items()) ^ set(shapes.items()))[:2]
        detail = ", ".join(f"{name} {list(shape)}" for name, shape in wrong) or "not float32"
        raise SecmlError(
            f"{file}: not the weights of this model (truncated, corrupt or from another "
            f"model: {detail})"
        )
    return arrays


# ----------------------------------------------------------------- entities -> table rows


def known_mask(known_hashes: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """True where the hash is one of the training entities' (``known_hashes`` sorted)."""
    if len(known_hashes) == 0:
        return np.zeros(len(hashes), dtype=bool)
    pos = np.searchsorted(known_hashes, hashes)
    return known_hashes[np.minimum(pos, len(known_hashes) - 1)] == hashes


def uses_table(entity_rows: str, known_hashes: np.ndarray, num_entity_vectors: int) -> bool:
    return entity_rows == "table" and 0 < len(known_hashes) <= num_entity_vectors


def entity_table_rows(
    entity_rows: str, known_hashes: np.ndarray, num_entity_vectors: int, hashes: np.ndarray
) -> np.ndarray:
    """Entity table rows of these hashes. With the ``table`` assignment an entity outside
    training gets some row; scoring replaces it by the population vector."""
    if uses_table(entity_rows, known_hashes, num_entity_vectors):
        pos = np.searchsorted(known_hashes, hashes)
        return np.minimum(pos, len(known_hashes) - 1).astype(np.int64)
    return (hashes % np.uint64(num_entity_vectors)).astype(np.int64)


# ------------------------------------------------------------------------------ the scorer


def score_texts(score_distinct, entities, ips) -> np.ndarray:
    """Dot products for aligned sequences of entities and address strings, ``SCORE_ROWS`` rows
    at a time through ``score_distinct`` (``IPInsights``' or ``Scorer``'s); invalid addresses
    raise SecmlError naming the first one."""
    entities, ips = as_objects(entities), as_objects(ips)
    if len(entities) != len(ips):
        raise SecmlError(f"{len(entities)} entities but {len(ips)} addresses")
    out = np.empty(len(entities), dtype=np.float64)
    for start in range(0, len(entities), SCORE_ROWS):
        stop = start + SCORE_ROWS
        ent_codes, ent_uniq = factorize_texts(entities[start:stop])
        ip_codes, ip_uniq = factorize_texts(ips[start:stop])
        addresses, ok = parse_distinct_addresses(ip_uniq)
        if not ok.all():
            bad = int(np.flatnonzero(~ok[ip_codes])[0])
            raise SecmlError(
                f"row {start + bad + 1}: {short(ip_uniq[ip_codes[bad]])} is not an "
                "IPv4 or IPv6 address"
            )
        out[start:stop] = score_distinct(ent_uniq, ent_codes, addresses, ip_codes)
    return out


class Scorer:
    """A saved model's forward pass in numpy: ``score_distinct`` and ``predict_pairs`` as
    ``IPInsights`` has them (the two ``scoring.score_csv`` calls)."""

    def __init__(
        self,
        *,
        hyperparameters: dict,
        entity_rows: str,
        known_hashes: np.ndarray,
        indexer: AddressIndexer,
        weights: dict[str, np.ndarray],
    ):
        self.hyperparameters = hyperparameters
        self.entity_rows = entity_rows
        self.known_hashes = known_hashes
        self.indexer = indexer
        self.entity = weights["entity"]
        self.population = weights["population"]
        # the padding row adds nothing (embedding_bag's padding_idx): zero it once here (the
        # arrays are this scorer's own, fresh from the archive)
        self.ip_table = weights["ip_table"]
        self.ip_table[indexer.padding_row] = 0
        self.layers = [
            (weights[f"layers.{i}.weight"], weights[f"layers.{i}.bias"])
            for i in range(hyperparameters["num_ip_encoder_layers"])
        ]

    @classmethod
    def load(cls, directory: str | Path) -> Scorer:
        """A model saved with ``weights.npz``; one clear line for a missing or broken file."""
        path = Path(directory)
        engine, raw = read_model_header(path)
        try:
            hyperparameters = validate_hyperparameters(raw)
        except (SecmlError, TypeError, ValueError) as exc:
            raise SecmlError(f"{path}: engine.json / hyperparameters.json: {exc}") from None
        ip_encoder = engine.get("ip_encoder")
        entity_rows = engine.get("entity_rows", "hash")
        if ip_encoder not in ENCODERS or entity_rows not in ENTITY_ROWS:
            bad = (
                f"ip_encoder {ip_encoder!r}: expected one of {', '.join(ENCODERS)}"
                if ip_encoder not in ENCODERS
                else f"entity_rows {entity_rows!r}: expected one of {', '.join(ENTITY_ROWS)}"
            )
            raise SecmlError(f"{path}: engine.json / hyperparameters.json: {bad}")
        known_hashes, indexer = read_encoder(path, ip_encoder)
        weights = read_weights(
            path / WEIGHTS_FILE, weight_shapes(hyperparameters, indexer.num_rows)
        )
        return cls(
            hyperparameters=hyperparameters,
            entity_rows=entity_rows,
            known_hashes=known_hashes,
            indexer=indexer,
            weights=weights,
        )

    # ------------------------------------------------------------------------ forward
    def _entities(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(known flags, embedding) of distinct entity hashes."""
        known = known_mask(self.known_hashes, hashes)
        rows = entity_table_rows(
            self.entity_rows,
            self.known_hashes,
            self.hyperparameters["num_entity_vectors"],
            hashes,
        )
        return known, np.where(known[:, None], self.entity[rows], self.population)

    def _bag(self, slots: np.ndarray) -> np.ndarray:
        """Sum of each address's table rows, one slot at a time (no (n, slots, dim) array);
        slots that are padding everywhere are skipped."""
        padding = self.indexer.padding_row
        h = np.zeros((len(slots), self.ip_table.shape[1]), dtype=np.float32)
        for s in range(slots.shape[1]):
            column = slots[:, s]
            if (column != padding).any():
                h += self.ip_table[column]
        return h

    def _hidden(self, h: np.ndarray) -> np.ndarray:
        for weight, bias in self.layers[:-1]:
            h = np.maximum(h @ weight.T + bias, 0)
        return h

    def _encode_ips(self, slots: np.ndarray) -> np.ndarray:
        h = self._hidden(self._bag(slots))
        if self.layers:
            weight, bias = self.layers[-1]
            h = h @ weight.T + bias
        return h

    def score_distinct(
        self,
        entities: Sequence[str],
        entity_codes: np.ndarray,
        addresses: Addresses,
        address_codes: np.ndarray,
    ) -> np.ndarray:
        """``IPInsights.score_distinct`` in numpy: per distinct entity, address and pair, the
        last FC layer folded into the entity side (``e . (W h + b) = (e W) . h + e . b``)."""
        import pandas as pd

        n = len(entity_codes)
        if n == 0:
            return np.zeros(0)
        _, e = self._entities(distinct_entity_hashes(list(entities)))
        slots = self.indexer.rows(addresses)
        num_addresses = len(addresses)
        pair_codes, distinct = pd.factorize(
            np.asarray(entity_codes, dtype=np.int64) * num_addresses + address_codes
        )
        pair_entity = distinct // num_addresses
        pair_address = distinct % num_addresses
        if self.layers:
            weight, bias = self.layers[-1]
            q, c = e @ weight, e @ bias
        else:
            q, c = e, None
        # as score_distinct: encode each address once when pairs share addresses (or hidden
        # layers make an encoding costly), else each pair sums its address's rows itself
        per_address = len(self.layers) > 1 or len(distinct) > 2 * num_addresses
        if per_address:
            h = np.empty((num_addresses, q.shape[1]), dtype=np.float32)
            for i in range(0, num_addresses, SCORE_CHUNK):
                h[i : i + SCORE_CHUNK] = self._hidden(self._bag(slots[i : i + SCORE_CHUNK]))
        out = np.empty(len(distinct), dtype=np.float32)
        for i in range(0, len(distinct), SCORE_CHUNK):
            pe = pair_entity[i : i + SCORE_CHUNK]
            pa = pair_address[i : i + SCORE_CHUNK]
            hp = h[pa] if per_address else self._bag(slots[pa])
            part = np.einsum("bd,bd->b", q[pe], hp)
            if c is not None:
                part += c[pe]
            out[i : i + SCORE_CHUNK] = part
        return out.astype(np.float64)[pair_codes]

    def score(self, entities, ips) -> np.ndarray:
        """``IPInsights.score`` without torch: dot products of aligned entities and addresses."""
        return score_texts(self.score_distinct, entities, ips)

    def predict_pairs(self, pairs: Any, verbose: bool = False) -> dict:
        """The built-in's JSON response for checked pairs (``data.Pairs``), as
        ``IPInsights.predict_pairs``."""
        codes, uniques = factorize_texts(pairs.entities)
        if not verbose:
            scores = self.score_distinct(
                uniques, codes, pairs.addresses, np.arange(len(pairs.addresses))
            )
            return {"predictions": [{"dot_product": s} for s in scores.tolist()]}
        known_u, e_u = self._entities(distinct_entity_hashes(uniques))
        slots = self.indexer.rows(pairs.addresses)
        predictions = []
        for i in range(0, len(codes), SCORE_CHUNK):
            e = e_u[codes[i : i + SCORE_CHUNK]]
            h = self._encode_ips(slots[i : i + SCORE_CHUNK])
            scores = np.einsum("bd,bd->b", e, h).astype(np.float64)
            known = known_u[codes[i : i + SCORE_CHUNK]]
            predictions += [
                {
                    "dot_product": float(s),
                    "entity_embedding": a.tolist(),
                    "ip_embedding": b.tolist(),
                    "known_entity": bool(k),
                }
                for s, a, b, k in zip(scores, e, h, known, strict=True)
            ]
        return {"predictions": predictions}


def load_for_scoring(directory: str | Path, device: str = "cpu"):
    """What `secml score` scores with: the numpy ``Scorer`` (no torch import) for a model with
    ``weights.npz`` on the CPU; the torch ``IPInsights`` for ``--device cuda`` and for models
    saved before ``weights.npz`` (``model.pt`` only)."""
    path = Path(directory)
    legacy = not (path / WEIGHTS_FILE).exists() and (path / LEGACY_WEIGHTS_FILE).exists()
    if device == "cuda" or legacy:
        from secml.ipinsights.model import IPInsights

        return IPInsights.load(path, device=device)
    return Scorer.load(path)
