"""Export a trained local IP Insights model for scoring without numpy or torch (docs/detection.md).

The detection Lambda (lambda_src/detection_scoring) scores one finding at a time in pure Python,
so the model travels as a zip of raw little-endian arrays that the standard library reads
directly (``array.frombytes``), plus ``model.json`` with what the arrays mean, the alert
threshold and, per principal, the networks it used in training (to say *why* a pair is
anomalous). Only the rows a score can touch are kept: the vectors of the training principals
(not all ``num_entity_vectors`` rows), the population vector for principals never seen, and the
IP table (every row belongs to a prefix seen in training).

The format is documented in lambda_src/detection_scoring/compact_model.py, its only reader.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from secml import __version__
from secml.errors import SecmlError
from secml.ipinsights.data import Pairs, load_pairs

FORMAT = "secml-ipinsights-compact"
FORMAT_VERSION = 1
MODEL_JSON = "model.json"
DEFAULT_PERCENTILE = 1.0


def principal_networks(pairs: Pairs) -> dict[str, list[str]]:
    """Per principal, the networks (IPv4 /16, IPv6 /32) it used in training, sorted."""
    seen: dict[str, set[str]] = {}
    networks: dict[str, str] = {}  # one parse per distinct address
    for entity, text in set(zip(pairs.entities, pairs.ip_texts, strict=True)):
        text = str(text)
        if text not in networks:
            networks[text] = network_of(text)
        seen.setdefault(str(entity), set()).add(networks[text])
    return {entity: sorted(nets) for entity, nets in sorted(seen.items())}


def network_of(ip: str) -> str:
    """The network an explanation talks about: IPv4 /16, IPv6 /32 (IPv4-mapped as IPv4).

    The same rule as compact_model.network_of (the Lambda cannot import this module); a test
    keeps the two equal.
    """
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 16 if addr.version == 4 else 32
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def _f32(values) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def _u64(values) -> bytes:
    return np.ascontiguousarray(values, dtype="<u8").tobytes()


def export_model(
    model,
    train,
    *,
    threshold: float | None = None,
    threshold_percentile: float = DEFAULT_PERCENTILE,
    threshold_rule: str | None = None,
) -> bytes:
    """The artifact (zip bytes) for a trained ``IPInsights`` and the pairs it was trained on.

    ``threshold``: the score below which a pair alerts; by default the ``threshold_percentile``
    percentile of the training pairs' scores. ``threshold_rule`` says how a given threshold was
    chosen (the notebook's: a percentile of held-out scores); it is kept in ``model.json``.
    """
    from secml.analysis import threshold_from_scores

    model._require_trained()
    pairs = train if isinstance(train, Pairs) else load_pairs(train, what="train")
    if len(pairs) == 0:
        raise SecmlError("no training pairs: the threshold and profiles need them")
    if threshold is None:
        scores = model.score(list(pairs.entities), list(pairs.ip_texts))
        threshold = threshold_from_scores(scores, threshold_percentile)
        threshold_rule = f"percentile {threshold_percentile:g} of {len(pairs):,} training scores"
    else:
        threshold_rule = threshold_rule or "given"
    if not np.isfinite(threshold):
        raise SecmlError(f"threshold {threshold!r} is not a finite number")

    net = model.net
    state = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    dim = int(state["entity"].shape[1])
    hashes = np.asarray(model.known_hashes, dtype=np.uint64)
    entity_vectors = state["entity"][model._entity_rows(hashes)]
    indexer = model.indexer
    ip_table = state["ip_table"][: indexer.padding_row]  # the padding row is zero: not stored
    files: dict[str, bytes] = {
        "entity_hashes.u64": _u64(hashes),
        "entity_vectors.f32": _f32(entity_vectors),
        "population.f32": _f32(state["population"]),
        "ip_table.f32": _f32(ip_table),
    }
    encoder: dict = {"kind": indexer.kind, "rows": int(indexer.padding_row)}
    if indexer.kind == "prefix":
        levels = sorted(int(k.split("_")[1]) for k in indexer.arrays if k.startswith("vocab_"))
        sizes = []
        for lvl in levels:
            vocab = np.asarray(indexer.arrays[f"vocab_{lvl}"], dtype=np.uint64)
            files[f"vocab_{lvl}.u64"] = _u64(vocab)
            sizes.append(len(vocab))
        encoder["vocab_sizes"] = sizes
    elif indexer.kind == "hashed":
        encoder["buckets"] = [int(b) for b in indexer.arrays["buckets"]]
    layers = []
    for i in range(len(net.layers)):
        files[f"layer_{i}_weight.f32"] = _f32(state[f"layers.{i}.weight"])
        files[f"layer_{i}_bias.f32"] = _f32(state[f"layers.{i}.bias"])
        layers.append(i)
    has_v6 = bool(np.asarray(pairs.addresses.is_v6).any())
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "secml_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "vector_dim": dim,
        "entities": len(hashes),
        "encoder": encoder,
        "layers": len(layers),
        "threshold": float(threshold),
        "threshold_rule": threshold_rule,
        # Without IPv6 in training the model cannot judge IPv6 addresses: the Lambda skips them.
        "ipv4_only": not has_v6,
        "training_pairs": len(pairs),
        "hyperparameters": dict(model.hyperparameters),
        "principal_networks": principal_networks(pairs),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MODEL_JSON, json.dumps(meta, indent=1, sort_keys=True))
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def write_artifact(data: bytes, out: str | os.PathLike) -> str:
    """Write the artifact to a file (atomically) or to ``s3://bucket/key`` (one PutObject)."""
    text = str(out)
    if text.startswith("s3://"):
        bucket, _, key = text[5:].partition("/")
        if not bucket or not key:
            raise SecmlError(f"not an S3 object URI (s3://bucket/key): {text}")
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise SecmlError(f"writing {text}: {exc}") from None
        return text
    path = Path(out)
    if path.is_dir():
        raise SecmlError(f"--out {path} is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)
