"""Local IP Insights engine: SageMaker's built-in IP Insights, in PyTorch
(docs/ipinsights-engine.md).

    from secml.ipinsights import IPInsights, read_pairs_csv

Imports are lazy so that ``python -m secml --help`` does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from secml.ipinsights.data import read_pairs_csv
    from secml.ipinsights.model import IPInsights

__all__ = ["IPInsights", "read_pairs_csv"]


def __getattr__(name: str) -> Any:
    if name == "IPInsights":
        from secml.ipinsights.model import IPInsights

        return IPInsights
    if name == "read_pairs_csv":
        from secml.ipinsights.data import read_pairs_csv

        return read_pairs_csv
    raise AttributeError(f"module 'secml.ipinsights' has no attribute {name!r}")
