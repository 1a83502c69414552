"""Access to the workshop notebook's cells for tests: its helper cells run in-process."""

from __future__ import annotations

import atexit
import re
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_PY = ROOT / "notebooks" / "ip_insights_workshop.py"
NOTEBOOK_IPYNB = ROOT / "notebooks" / "ip_insights_workshop.ipynb"


def tagged_source(tag: str) -> str:
    cells = [c for c in jupytext.read(NOTEBOOK_PY).cells if tag in c.metadata.get("tags", [])]
    assert cells, f"no cell tagged {tag!r} in {NOTEBOOK_PY.name}"
    return "\n\n".join(c.source for c in cells)


def code_cells() -> list[str]:
    return [c.source for c in jupytext.read(NOTEBOOK_PY).cells if c.cell_type == "code"]


def load_helpers(*tags: str) -> dict:
    """Execute the notebook cells with these tags; return their namespace."""
    namespace: dict = {"__name__": "ip_insights_workshop"}
    source = "\n\n".join(tagged_source(tag) for tag in tags)
    exec(compile(source, f"<{NOTEBOOK_PY.name} cells {tags}>", "exec"), namespace)
    return namespace


def forget_cleanup(namespace: dict) -> None:
    """Undo the atexit registration a test's helpers made in the pytest process."""
    if "cleanup" in namespace:
        atexit.unregister(namespace["cleanup"])


def notebook_boto3_version() -> str:
    """The boto3 version the notebook installs on a notebook instance (BOTO3_VERSION = "...")."""
    match = re.search(r'^BOTO3_VERSION = "([^"]+)"$', NOTEBOOK_PY.read_text(), re.MULTILINE)
    assert match, "BOTO3_VERSION not found in the notebook"
    return match.group(1)
