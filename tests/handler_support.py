"""Load lambda_src/<name>/index.py under a unique module name (every handler file is index.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

LAMBDA_SRC = Path(__file__).resolve().parents[1] / "lambda_src"


def load_handler(name: str) -> ModuleType:
    module_name = f"lambda_src_{name}_index"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, LAMBDA_SRC / name / "index.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
