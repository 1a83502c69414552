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

from secml.errors import SecmlError


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
    bad = SecmlError(f"hyperparameter {spec.name}={value!r}: must be {spec.describe()}")
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
            raise SecmlError(f"--hp {pair!r}: expected name=value, e.g. --hp vector_dim=128")
        parsed[name.strip()] = value.strip()
    return parsed
