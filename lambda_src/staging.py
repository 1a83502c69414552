"""Stage a function's deployable folder, in exercise or solution mode, from one source.

The sources in lambda_src/<name>/ are the completed solutions. A line that ends in
``# EXERCISE`` is commented out in exercise mode (as the attendee finds it, to uncomment);
``# EXERCISE: <code>`` is replaced by <code> (the line the attendee must change); a line that
ends in ``# SOLUTION`` is left out (what only the solution runs). In solution mode only the
markers go. The shared modules index.py imports are copied in next to it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

LAMBDA_SRC = Path(__file__).resolve().parent
BUILD_DIR = LAMBDA_SRC.parent / "build" / "lambda"
SHARED_MODULES = ("ingest_common.py", "cloudtrail_logs.py", "guardduty_findings.py")
_MARKER = re.compile(r"^(?P<indent>\s*)(?P<code>.*?)\s+# EXERCISE(?::\s*(?P<replacement>.*?))?\s*$")
_SOLUTION = re.compile(r"^(?P<code>.*?)\s+# SOLUTION\s*$")


def render(text: str, *, solutions: bool) -> str:
    """The source as deployed: markers stripped, exercise lines commented out or replaced."""
    lines = text.splitlines(keepends=False)
    out: list[str] = []
    i = 0
    while i < len(lines):
        if s := _SOLUTION.match(lines[i]):
            if solutions:
                out.append(s["code"])
            i += 1
            continue
        m = _MARKER.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        if solutions:
            out.append(m["indent"] + m["code"])
            i += 1
        elif m["replacement"]:
            out.append(m["indent"] + m["replacement"])
            i += 1
        else:  # a run of lines to uncomment: one "# " column, at the run's smallest indent
            run = []
            while i < len(lines) and (mm := _MARKER.match(lines[i])) and not mm["replacement"]:
                run.append(mm)
                i += 1
            col = min(len(r["indent"]) for r in run)
            out.extend(r["indent"][:col] + "# " + r["indent"][col:] + r["code"] for r in run)
    return "\n".join(out).rstrip("\n") + "\n"


def stage_function(name: str, *, solutions: bool, out_dir: Path | None = None) -> Path:
    """Write lambda_src/<name> as deployed to build/lambda/<name>-<exercise|solution>/."""
    src = LAMBDA_SRC / name
    if not (src / "index.py").is_file():
        raise FileNotFoundError(f"no Lambda source at {src}")
    dest = (out_dir or BUILD_DIR) / f"{name}-{'solution' if solutions else 'exercise'}"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        if rel.as_posix() == "__init__.py":  # only makes the folder importable in-process
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py":
            target.write_text(render(path.read_text(encoding="utf-8"), solutions=solutions))
        else:
            shutil.copyfile(path, target)
    index = (src / "index.py").read_text(encoding="utf-8")
    for module in SHARED_MODULES:
        if f"import {module.removesuffix('.py')}" in index:
            shutil.copyfile(LAMBDA_SRC / module, dest / module)
    return dest
