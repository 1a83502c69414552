"""`IPInsights`: the local stand-in for SageMaker's built-in, with the same hyperparameters."""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from secml import __version__
from secml.errors import SecmlError
from secml.ipinsights.addresses import (
    IPV4_PREFIXES,
    IPV6_PREFIXES,
    Addresses,
)
from secml.ipinsights.data import Pairs, entity_hashes, load_pairs
from secml.ipinsights.encoder import ENCODERS, AddressIndexer
from secml.ipinsights.hyperparameters import validate_hyperparameters
from secml.ipinsights.metrics import roc_auc
from secml.ipinsights.network import IPInsightsNet
from secml.ipinsights.scorer import (
    ENTITY_ROWS,
    FORMAT_VERSION,
    LEGACY_WEIGHTS_FILE,
    SCORE_CHUNK,
    WEIGHTS_FILE,
    entity_table_rows,
    known_mask,
    read_encoder,
    read_model_header,
    read_weights,
    score_texts,
    uses_table,
    weight_shapes,
)
from secml.ipinsights.scoring import distinct_entity_hashes, factorize_texts
from secml.ipinsights.trainer import (
    DEFAULT_ENTITY_SMOOTHING,
    DEFAULT_PREFIX_DROPOUT,
    DEFAULT_PREFIX_LR_SCALE,
    NETWORK_SLOT,
    TrainData,
    Trainer,
    smooth_entities,
)
from secml.outputs import atomic_directory

log = logging.getLogger("secml.ipinsights")


def _prefix_setting(
    name: str, value: float | Sequence[float] | None, ip_encoder: str
) -> tuple[float, ...]:
    """Validate ``prefix_dropout`` / ``prefix_lr_scale`` (None: the engine default)."""
    if value is None:
        if ip_encoder == "octet":
            return ()
        return DEFAULT_PREFIX_DROPOUT if name == "prefix_dropout" else DEFAULT_PREFIX_LR_SCALE
    raw = [value] if isinstance(value, int | float) and not isinstance(value, bool) else value
    try:
        values = tuple(float(v) for v in raw if not isinstance(v, bool | str))
        ok = len(values) == len(raw) and all(math.isfinite(v) for v in values)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise SecmlError(f"{name}={value!r}: expected a number or a list of numbers")
    if name == "prefix_dropout":
        most = len(IPV4_PREFIXES) - 1  # an address always keeps its coarsest prefix
        if len(values) > most or not all(0 <= v <= 1 for v in values):
            raise SecmlError(
                f"prefix_dropout={value!r}: at most {most} probabilities in [0, 1] (finest "
                "level first)"
            )
        if any(b > a for a, b in zip(values, values[1:], strict=False)):
            raise SecmlError(
                f"prefix_dropout={value!r}: must not increase (losing /24 includes losing /32)"
            )
    else:
        most = max(len(IPV4_PREFIXES), len(IPV6_PREFIXES))
        if len(values) > most or not all(0 < v <= 10 for v in values):
            raise SecmlError(
                f"prefix_lr_scale={value!r}: at most {most} multipliers in (0, 10] (finest "
                "level first)"
            )
    if ip_encoder == "octet" and any(v != (0 if name == "prefix_dropout" else 1) for v in values):
        raise SecmlError(f"{name} needs prefix levels: use ip_encoder prefix or hashed, not octet")
    return values


def resolve_device(device: str) -> torch.device:
    if device not in ("cpu", "cuda", "auto"):
        raise SecmlError(f"device {device!r}: expected cpu, cuda or auto")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SecmlError("device cuda: no CUDA GPU is available here (use --device cpu or auto)")
    return torch.device(device)


class IPInsights:
    """Train and score like SageMaker's IP Insights, locally (CPU, or a GPU when present).

    Keyword arguments are the built-in's hyperparameter names (``num_entity_vectors`` and
    ``vector_dim`` are required), plus engine settings that are not SageMaker hyperparameters
    (not in ``hyperparameters.json``; saved in ``engine.json``): ``seed``, ``device``,
    ``ip_encoder`` (one of ``prefix`` (default), ``hashed``, ``octet``; see ``encoder.py``), and
    for the prefix-level encoders (``prefix``, ``hashed``; see ``trainer.py``):

    ``prefix_dropout``
        Probabilities, finest level first, that a training pair loses its finest prefix level
        (/32; IPv6 /128), its two finest, ... Default ``(0.5,)``; ``()`` or ``0`` turns it off.
        Training only: scoring always uses every known prefix.
    ``prefix_lr_scale``
        Learning-rate multipliers for the rows of the finest levels, finest first. Default
        ``(0.25, 0.25)``: /32 and /24 (IPv6 /128 and /64) rows learn at a quarter of
        ``learning_rate``; ``()`` turns it off.

    and ``entity_rows``, how training entities are assigned to the ``num_entity_vectors`` rows:
    ``table`` (default) gives each distinct training entity a row of its own (its rank among
    the sorted entity hashes, which the model keeps anyway) whenever there are at least as many
    rows as entities, and falls back to ``hash`` otherwise; ``hash`` is the built-in's
    assignment, 64-bit hash modulo ``num_entity_vectors``, where entities can collide (at the
    advised 2x rows, about 2 in 5 training entities share their row with another);
    and ``entity_smoothing`` (default 0.85; 0 turns it off), how far each training entity's
    vector moves, after the last epoch, towards the entities that used the same networks
    (``trainer.smooth_entities``: learning from colleagues, three passes).
    """

    def __init__(
        self,
        *,
        seed: int | None = 0,
        device: str = "cpu",
        ip_encoder: str = "prefix",
        prefix_dropout: float | Sequence[float] | None = None,
        prefix_lr_scale: float | Sequence[float] | None = None,
        entity_rows: str = "table",
        entity_smoothing: float | None = None,
        **hyperparameters: Any,
    ):
        self.hyperparameters = validate_hyperparameters(hyperparameters)
        if ip_encoder not in ENCODERS:
            raise SecmlError(f"ip_encoder {ip_encoder!r}: expected one of {', '.join(ENCODERS)}")
        self.ip_encoder = ip_encoder
        if entity_rows not in ENTITY_ROWS:
            raise SecmlError(
                f"entity_rows {entity_rows!r}: expected one of {', '.join(ENTITY_ROWS)}"
            )
        self.entity_rows = entity_rows
        self.prefix_dropout = _prefix_setting("prefix_dropout", prefix_dropout, ip_encoder)
        self.prefix_lr_scale = _prefix_setting("prefix_lr_scale", prefix_lr_scale, ip_encoder)
        if entity_smoothing is None:
            entity_smoothing = 0.0 if ip_encoder == "octet" else DEFAULT_ENTITY_SMOOTHING
        if (
            isinstance(entity_smoothing, bool)
            or not isinstance(entity_smoothing, int | float)
            or not 0 <= entity_smoothing <= 1
        ):
            raise SecmlError(f"entity_smoothing={entity_smoothing!r}: expected a number in [0, 1]")
        if ip_encoder == "octet" and entity_smoothing:
            raise SecmlError("entity_smoothing needs prefix levels: use ip_encoder prefix, hashed")
        self.entity_smoothing = float(entity_smoothing)
        self.seed = seed
        self.device = resolve_device(device)
        self.net: IPInsightsNet | None = None
        self.indexer: AddressIndexer | None = None
        self.known_hashes = np.zeros(0, dtype=np.uint64)
        self.history: list[dict] = []

    # ----------------------------------------------------------------------------- training
    def _uses_table(self) -> bool:
        return uses_table(
            self.entity_rows, self.known_hashes, self.hyperparameters["num_entity_vectors"]
        )

    def _entity_rows(self, hashes: np.ndarray) -> np.ndarray:
        """Entity table rows (``known_hashes`` must be set). With the ``table`` assignment an
        entity outside training gets some row; scoring replaces it by the population vector."""
        return entity_table_rows(
            self.entity_rows, self.known_hashes, self.hyperparameters["num_entity_vectors"], hashes
        )

    def _prepare(self, pairs: Pairs) -> tuple[Trainer, TrainData]:
        """Fresh network, address vocabulary and trainer for these training pairs."""
        hp = self.hyperparameters
        seed = 0 if self.seed is None else int(self.seed)
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        self.indexer = AddressIndexer.fit(self.ip_encoder, pairs.addresses)
        hashes = entity_hashes(pairs.entities)
        self.known_hashes = np.unique(hashes)
        net = IPInsightsNet(
            hp["num_entity_vectors"],
            self.indexer.num_rows,
            hp["vector_dim"],
            hp["num_ip_encoder_layers"],
            self.indexer.padding_row,
        )
        net.reset_parameters(gen)
        self.net = net.to(self.device)
        data = TrainData(
            torch.from_numpy(self._entity_rows(hashes)).to(self.device),
            torch.from_numpy(self.indexer.rows(pairs.addresses)).to(self.device),
            pairs.addresses.is_v6,
        )
        trainer = Trainer(
            self.net,
            self.indexer,
            hp,
            self.device,
            rng,
            prefix_dropout=self.prefix_dropout,
            prefix_lr_scale=self.prefix_lr_scale,
            dropout_rng=np.random.default_rng([seed, 1]),
        )
        return trainer, data

    def fit(
        self,
        train: Any,
        validation: Any = None,
        progress: bool = True,
        *,
        skip_invalid: bool = False,
    ) -> list[dict]:
        """Train from scratch; returns one metrics dict per epoch (also kept in ``history``)."""
        hp = self.hyperparameters
        pairs = (
            train
            if isinstance(train, Pairs)
            else load_pairs(train, skip_invalid=skip_invalid, what="train")
        )
        if pairs.skipped:
            log.warning("train: skipped %d invalid rows (%s)", pairs.skipped, pairs.problems[0])
        val_pairs = None
        if validation is not None:
            val_pairs = (
                validation
                if isinstance(validation, Pairs)
                else load_pairs(validation, skip_invalid=skip_invalid, what="validation")
            )
        trainer, data = self._prepare(pairs)
        seed = 0 if self.seed is None else int(self.seed)
        val_negatives = None
        if val_pairs is not None:
            from secml.ipinsights.addresses import random_addresses

            val_rng = np.random.default_rng(seed + 1)
            val_negatives = random_addresses(val_rng, val_pairs.addresses.is_v6)
        self.history = []
        epochs = hp["epochs"]
        per_epoch = len(pairs) * (
            1 + hp["random_negative_sampling_rate"] + hp["shuffled_negative_sampling_rate"]
        )
        for epoch in range(1, epochs + 1):
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(
                    total=per_epoch,
                    desc=f"epoch {epoch}/{epochs}",
                    unit="rec",
                    unit_scale=True,
                    leave=True,
                    file=sys.stderr,
                    mininterval=0.5,
                )

            def on_batch(records, loss, acc, rate, bar=bar):
                bar.update(records)
                bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.4f}", refresh=False)

            self.net.train()
            metrics = trainer.epoch(data, on_batch if bar is not None else None)
            if bar is not None:
                bar.close()
            metrics = {"epoch": epoch, **metrics}
            if val_pairs is not None:
                metrics["validation:discriminator_auc"] = self._validation_auc(
                    val_pairs, val_negatives
                )
            self.history.append(metrics)
            log.info(
                "epoch %d: %s",
                epoch,
                ", ".join(
                    f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in metrics.items()
                    if k != "epoch"
                ),
            )
        with torch.no_grad():
            smooth_entities(
                self.net.entity.data,
                data.entity_rows,
                data.ip_slots[:, NETWORK_SLOT],
                self.entity_smoothing,
                skip=self.net.padding_row,
            )
        self._set_population(data.entity_rows)
        self.net.eval()
        return self.history

    def _set_population(self, entity_rows: torch.Tensor) -> None:
        with torch.no_grad():
            rows = torch.unique(entity_rows)
            self.net.population.copy_(self.net.entity.index_select(0, rows).mean(0))

    def _validation_auc(self, pairs: Pairs, negatives) -> float:
        """discriminator_auc: real validation pairs against one random address per pair."""
        real = self._score_parsed(pairs.entities, pairs.addresses)
        fake = self._score_parsed(pairs.entities, negatives)
        return roc_auc(np.concatenate([real, fake]), np.r_[np.ones(len(real)), np.zeros(len(fake))])

    # ------------------------------------------------------------------------------ scoring
    def _require_trained(self) -> None:
        if self.net is None:
            raise SecmlError("the model is not trained: call fit() or IPInsights.load() first")

    def known_entities(self, entities) -> np.ndarray:
        """True where the entity was in the training data (by its 64-bit hash)."""
        self._require_trained()
        codes, uniques = factorize_texts(np.asarray(entities, dtype=object))
        return self._known(distinct_entity_hashes(uniques))[codes]

    def _known(self, hashes: np.ndarray) -> np.ndarray:
        return known_mask(self.known_hashes, hashes)

    def _embed(self, entities: np.ndarray, addresses, *, need_embeddings: bool):
        """Scores, known flags and, with ``need_embeddings``, both embeddings of every row
        (the ``verbose`` path; plain scores go through ``score_distinct``)."""
        self._require_trained()
        codes, uniques = factorize_texts(entities)
        hashes = distinct_entity_hashes(uniques)
        known = self._known(hashes)[codes]
        rows = self._entity_rows(hashes)[codes]
        slots = self.indexer.rows(addresses)
        net = self.net
        net.eval()
        scores, ents, ips = [], [], []
        with torch.inference_mode():
            for i in range(0, len(rows), SCORE_CHUNK):
                r = torch.from_numpy(rows[i : i + SCORE_CHUNK]).to(self.device)
                k = torch.from_numpy(known[i : i + SCORE_CHUNK]).to(self.device)
                e = net.entity.index_select(0, r)
                e = torch.where(k[:, None], e, net.population)
                h = net.encode_ips(torch.from_numpy(slots[i : i + SCORE_CHUNK]).to(self.device))
                scores.append((e * h).sum(1).cpu().numpy())
                if need_embeddings:
                    ents.append(e.cpu().numpy())
                    ips.append(h.cpu().numpy())
        score = np.concatenate(scores).astype(np.float64) if scores else np.zeros(0)
        if need_embeddings:
            return score, known, np.concatenate(ents), np.concatenate(ips)
        return score, known

    def score_distinct(
        self,
        entities: Sequence[str],
        entity_codes: np.ndarray,
        addresses: Addresses,
        address_codes: np.ndarray,
    ) -> np.ndarray:
        """Scores of the rows (``entities[entity_codes[i]]``, ``addresses[address_codes[i]]``):
        each distinct entity is hashed and embedded once, each distinct address encoded once,
        each distinct pair scored once (see ``scoring.py``).

        With FC layers the last one is folded into the entity side, as in training:
        ``e . (W h + b) = (e W) . h + e . b``, so an address costs the sum of its table rows
        (and the hidden layers, if any) and a pair one dot product of ``vector_dim``.
        """
        import pandas as pd

        self._require_trained()
        n = len(entity_codes)
        if n == 0:
            return np.zeros(0)
        hashes = distinct_entity_hashes(list(entities))
        known = torch.from_numpy(self._known(hashes)).to(self.device)
        rows = torch.from_numpy(self._entity_rows(hashes)).to(self.device)
        slots = self.indexer.rows(addresses)
        net = self.net
        net.eval()
        num_addresses = len(addresses)
        pair_codes, distinct = pd.factorize(
            np.asarray(entity_codes, dtype=np.int64) * num_addresses + address_codes
        )
        pair_entity = torch.from_numpy(distinct // num_addresses).to(self.device)
        pair_address = torch.from_numpy(distinct % num_addresses).to(self.device)
        slots_t = torch.from_numpy(slots).to(self.device)
        # an address's encoding is computed once when pairs share addresses (or hidden layers
        # make it costly); else each pair sums its address's rows itself (one pass, no copy)
        per_address = len(net.layers) > 1 or len(distinct) > 2 * num_addresses
        out = torch.empty(len(distinct), dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            e = net.entity.index_select(0, rows)
            e = torch.where(known[:, None], e, net.population)
            if len(net.layers):
                last = net.layers[-1]
                q, c = e @ last.weight, e @ last.bias
            else:
                q, c = e, None
            if per_address:
                h = torch.empty(num_addresses, q.shape[1], device=self.device)
                for i in range(0, num_addresses, SCORE_CHUNK):
                    h[i : i + SCORE_CHUNK] = net.hidden(net.bag(slots_t[i : i + SCORE_CHUNK]))
            for i in range(0, len(distinct), SCORE_CHUNK):
                pe = pair_entity[i : i + SCORE_CHUNK]
                pa = pair_address[i : i + SCORE_CHUNK]
                hp = h.index_select(0, pa) if per_address else net.bag(slots_t.index_select(0, pa))
                # einsum runs as a batched matrix product: no (rows, vector_dim) temporary
                part = torch.einsum("bd,bd->b", q.index_select(0, pe), hp)
                if c is not None:
                    part += c.index_select(0, pe)
                out[i : i + SCORE_CHUNK] = part
        return out.cpu().numpy().astype(np.float64)[pair_codes]

    def _score_parsed(self, entities: np.ndarray, addresses) -> np.ndarray:
        codes, uniques = factorize_texts(entities)
        return self.score_distinct(uniques, codes, addresses, np.arange(len(addresses)))

    def score(self, entities, ips) -> np.ndarray:
        """Dot products for aligned sequences of entities and address strings (the fast path:
        work per distinct entity, address and pair; ``SCORE_ROWS`` rows at a time).

        Unseen entities are scored with the population vector (see docs/ipinsights-engine.md);
        invalid addresses raise SecmlError naming the first one.
        """
        self._require_trained()
        return score_texts(self.score_distinct, entities, ips)

    def predict(self, pairs: Any, verbose: bool = False, *, skip_invalid: bool = False) -> dict:
        """The built-in's application/json response: {"predictions": [{"dot_product": x}, ...]}.

        ``verbose=True`` adds ``entity_embedding`` and ``ip_embedding`` (as the built-in's
        ``verbose=True`` accept parameter) and ``known_entity``.
        """
        checked = load_pairs(pairs, skip_invalid=skip_invalid, what="input")
        return self.predict_pairs(checked, verbose=verbose)

    def predict_pairs(self, pairs: Pairs, verbose: bool = False) -> dict:
        if not verbose:
            scores = self._score_parsed(pairs.entities, pairs.addresses)
            return {"predictions": [{"dot_product": s} for s in scores.tolist()]}
        scores, known, ents, ips = self._embed(
            pairs.entities, pairs.addresses, need_embeddings=True
        )
        return {
            "predictions": [
                {
                    "dot_product": float(s),
                    "entity_embedding": e.tolist(),
                    "ip_embedding": i.tolist(),
                    "known_entity": bool(k),
                }
                for s, e, i, k in zip(scores, ents, ips, known, strict=True)
            ]
        }

    # -------------------------------------------------------------------------- persistence
    def save(self, directory) -> Path:
        """weights.npz (the state dict as numpy arrays: `secml score` reads it without torch,
        see ``scorer.py``), hyperparameters.json, engine.json, encoder.npz (entity hashes and
        address vocabulary), history.json.

        The files are written into a temporary sibling folder that then replaces ``directory``
        whole (``secml.outputs.atomic_directory``): an interrupted retrain leaves the previous
        model or the new one, never a mix. A non-empty folder that is not a model is refused
        rather than replaced.
        """
        self._require_trained()
        path = Path(directory)
        check_model_dir(path)
        state = {k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        engine = {
            "format": FORMAT_VERSION,
            "secml_version": __version__,
            "ip_encoder": self.ip_encoder,
            "prefix_dropout": list(self.prefix_dropout),
            "prefix_lr_scale": list(self.prefix_lr_scale),
            "entity_rows": self.entity_rows,
            "ip_table_rows": self.indexer.num_rows,
            "seed": self.seed,
        }
        with atomic_directory(path) as staging:
            np.savez(staging / WEIGHTS_FILE, **state)
            np.savez(staging / "encoder.npz", known_hashes=self.known_hashes, **self.indexer.arrays)
            (staging / "hyperparameters.json").write_text(
                json.dumps(self.hyperparameters, indent=2)
            )
            (staging / "history.json").write_text(json.dumps(self.history, indent=2))
            # engine.json last: its presence marks a complete model (check_model_dir relies on it)
            (staging / "engine.json").write_text(json.dumps(engine, indent=2))
        return path

    @classmethod
    def load(cls, directory, device: str = "cpu") -> IPInsights:
        """A saved model; a missing, partial or corrupt one is one clear line naming the file."""
        path = Path(directory)
        engine, hyperparameters = read_model_header(path)
        try:
            model = cls(
                seed=engine.get("seed"),
                device=device,
                ip_encoder=engine.get("ip_encoder"),
                # models saved before these settings existed were trained without them
                prefix_dropout=engine.get("prefix_dropout", ()),
                prefix_lr_scale=engine.get("prefix_lr_scale", ()),
                entity_rows=engine.get("entity_rows", "hash"),
                **hyperparameters,
            )
        except (SecmlError, TypeError, ValueError) as exc:
            raise SecmlError(f"{path}: engine.json / hyperparameters.json: {exc}") from None
        model.known_hashes, model.indexer = read_encoder(path, engine["ip_encoder"])
        hp = model.hyperparameters
        net = IPInsightsNet(
            hp["num_entity_vectors"],
            model.indexer.num_rows,
            hp["vector_dim"],
            hp["num_ip_encoder_layers"],
            model.indexer.padding_row,
        )
        weights = path / WEIGHTS_FILE
        if weights.exists() or not (path / LEGACY_WEIGHTS_FILE).exists():
            arrays = read_weights(weights, weight_shapes(hp, model.indexer.num_rows))
            net.load_state_dict({name: torch.from_numpy(a) for name, a in arrays.items()})
        else:  # saved before weights.npz
            _load_legacy_weights(net, path / LEGACY_WEIGHTS_FILE)
        model.net = net.to(model.device).eval()
        history = path / "history.json"
        try:
            model.history = json.loads(history.read_text()) if history.exists() else []
        except (OSError, ValueError):
            model.history = []  # a training log only: scoring does not need it
        return model


MODEL_MARKER = "engine.json"


def check_model_dir(path: Path) -> None:
    """Refuse a ``--model-dir`` that saving would wrongly replace: a file, a folder under a file,
    or a non-empty folder that is not a model (its files would be deleted with the old model)."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise SecmlError(f"--model-dir {path}: {parent} is a file, not a folder")
            break
    if path.exists() and not path.is_dir():
        raise SecmlError(f"--model-dir {path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / MODEL_MARKER).is_file():
        raise SecmlError(
            f"--model-dir {path}: a non-empty folder that is not a saved model; saving replaces "
            "the whole folder, so choose a new or empty one"
        )


def _load_legacy_weights(net: IPInsightsNet, weights: Path) -> None:
    """model.pt (torch.save of the state dict), as models were saved before weights.npz."""
    try:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except (RuntimeError, ValueError, OSError, EOFError, KeyError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SecmlError(
            f"{weights}: not the weights of this model (truncated, corrupt or from another "
            f"model: {first})"
        ) from None
