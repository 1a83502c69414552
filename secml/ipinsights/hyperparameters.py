"""The SageMaker IP Insights hyperparameters: names, defaults and valid ranges.

Names, defaults and ranges follow the SageMaker developer guide's "IP Insights Hyperparameters"
page (and the SageMaker Python SDK's validators), so a job definition written for the built-in
works here unchanged, and a value the built-in would refuse is refused here with a clear line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from secml.errors import SecmlError, short


@dataclass(frozen=True)
class HyperparameterSpec:
    name: str
    kind: type  # int or float
    low: float
    high: float | None  # None: no upper bound
    default: int | float | None  # None: required

    def describe(self) -> str:
        kind = "an integer" if self.kind is int else "a number"
        if self.high is None:
            return f"{kind} >= {self.low:g}"
        return f"{kind} in [{self.low:g}, {self.high:g}]"


SPECS: dict[str, HyperparameterSpec] = {
    s.name: s
    for s in (
        HyperparameterSpec("num_entity_vectors", int, 1, 250_000_000, None),
        HyperparameterSpec("vector_dim", int, 4, 4096, None),
        HyperparameterSpec("batch_metrics_publish_interval", int, 1, None, 1000),
        HyperparameterSpec("epochs", int, 1, None, 10),
        HyperparameterSpec("learning_rate", float, 1e-6, 10.0, 0.001),
        HyperparameterSpec("mini_batch_size", int, 1, 500_000, 10_000),
        HyperparameterSpec("num_ip_encoder_layers", int, 0, 100, 1),
        HyperparameterSpec("random_negative_sampling_rate", int, 0, 500, 1),
        HyperparameterSpec("shuffled_negative_sampling_rate", int, 0, 500, 1),
        HyperparameterSpec("weight_decay", float, 0.0, 10.0, 0.00001),
    )
}


def _coerce(spec: HyperparameterSpec, value: Any) -> int | float:
    """Accept what SageMaker accepts: numbers, or their string form ("128", "1e-3")."""
    bad = SecmlError(f"hyperparameter {spec.name}={short(value)}: must be {spec.describe()}")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if spec.kind is int else float(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                raise bad from None
            if spec.kind is int and as_float.is_integer():
                value = int(as_float)
            else:
                raise bad from None
    if spec.kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise bad
    else:
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise bad
        value = float(value)
    if value < spec.low or (spec.high is not None and value > spec.high):
        raise bad
    return value


def validate_hyperparameters(given: Mapping[str, Any]) -> dict[str, int | float]:
    """Return the full, typed set (defaults filled in) or raise SecmlError naming the problem."""
    unknown = sorted(set(given) - set(SPECS))
    if unknown:
        raise SecmlError(
            f"unknown hyperparameter(s): {', '.join(unknown)} "
            f"(IP Insights takes: {', '.join(SPECS)})"
        )
    result: dict[str, int | float] = {}
    for name, spec in SPECS.items():
        if name in given and given[name] is not None:
            result[name] = _coerce(spec, given[name])
        elif spec.default is None:
            raise SecmlError(f"hyperparameter {name} is required ({spec.describe()})")
        else:
            result[name] = spec.default
    negatives = result["random_negative_sampling_rate"] + result["shuffled_negative_sampling_rate"]
    if not 1 <= negatives <= 500:
        raise SecmlError(
            "random_negative_sampling_rate + shuffled_negative_sampling_rate must be in "
            f"[1, 500], got {negatives}"
        )
    return result


def parse_hp_arguments(pairs: list[str]) -> dict[str, str]:
    """`--hp name=value` arguments to a dict (values are validated later, with the rest)."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise SecmlError(f"--hp {short(pair)}: expected name=value, e.g. --hp vector_dim=128")
        parsed[name.strip()] = value.strip()
    return parsed


# float32 weights plus Adam's two moment tables (trainer.py keeps m and v for every table).
BYTES_PER_PARAMETER = 4 * 3


def training_memory_bytes(hp: Mapping[str, Any], ip_table_rows: int = 0) -> int:
    """What the tables of a model with these hyperparameters take while training.

    The entity table, the address table (``ip_table_rows`` is only known once the data is read)
    and the encoder layers, each with its Adam state. Batches and the data itself come on top.
    """
    dim = int(hp["vector_dim"])
    layers = int(hp.get("num_ip_encoder_layers", 1)) * (dim * dim + dim)
    parameters = int(hp["num_entity_vectors"]) * dim + ip_table_rows * dim + layers
    return parameters * BYTES_PER_PARAMETER


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else physical memory, else None (unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def check_training_memory(
    hp: Mapping[str, Any], ip_table_rows: int = 0, available: int | None = None
) -> None:
    """Refuse, before any allocation, hyperparameters whose tables do not fit in memory.

    Values inside the documented ranges can still ask for terabytes (num_entity_vectors may be
    250 million, vector_dim 4096); Linux overcommits, so without this check the process is
    killed half-way through instead of getting a clear line.
    """
    need = training_memory_bytes(hp, ip_table_rows)
    have = available_memory_bytes() if available is None else available
    if have is not None and need > have:
        raise SecmlError(
            f"num_entity_vectors={hp['num_entity_vectors']}, vector_dim={hp['vector_dim']}, "
            f"num_ip_encoder_layers={hp.get('num_ip_encoder_layers', 1)}: the model's tables "
            f"need about {format_bytes(need)} to train (weights and Adam state), this machine "
            f"has {format_bytes(have)} available; lower num_entity_vectors or vector_dim"
        )
