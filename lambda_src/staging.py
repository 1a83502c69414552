"""Stage a function's deployable folder, in exercise or solution mode, from one source.

The sources in lambda_src/<name>/ are the completed solutions. A line that ends in
``# EXERCISE`` is commented out in exercise mode (as the attendee finds it, to uncomment);
``# EXERCISE: <code>`` is replaced by <code> (the line the attendee must change); a line that
ends in ``# SOLUTION`` is left out (what only the solution runs). In solution mode only the
markers go. The shared modules index.py imports are copied in next to it. With
``packages=<Python version>`` the packages the function uses where installed (VENDORED) are
added too, built for the Lambda platform by pip (see lambda_packages()).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

LAMBDA_SRC = Path(__file__).resolve().parent
BUILD_DIR = LAMBDA_SRC.parent / "build" / "lambda"
SHARED_MODULES = ("ingest_common.py", "cloudtrail_logs.py", "guardduty_findings.py")
# What a function imports where it is installed and does without otherwise (docs/ingest.md):
# the CloudTrail ingest's field reader (msgspec) and inflate (isal), at requirements.txt's pins.
VENDORED = {"cloudtrail_ingest": ("msgspec", "isal")}
PACKAGES_DIR = LAMBDA_SRC.parent / "build" / "lambda-packages"
LAMBDA_PLATFORM = "manylinux2014_x86_64"  # the functions' architecture (aws_lambda's default)
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


def pinned(names: tuple[str, ...]) -> list[str]:
    """`name==version` of each package, as requirements.txt (the lock) pins it."""
    lock = (LAMBDA_SRC.parent / "requirements.txt").read_text(encoding="utf-8")
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, flags=re.MULTILINE))
    missing = [n for n in names if n not in pins]
    if missing:
        raise ValueError(f"requirements.txt pins no {', '.join(missing)}")
    return [f"{n}=={pins[n]}" for n in names]


def lambda_packages(names: tuple[str, ...], python_version: str) -> Path | None:
    """A folder holding the pinned packages installed for the Lambda platform and Python
    version, as AWS describes for compiled packages (pip install --platform manylinux2014_x86_64
    --implementation cp --python-version X.Y --only-binary=:all: --target DIR:
    https://repost.aws/knowledge-center/lambda-python-package-compatible), without Docker; built
    once into build/lambda-packages/ and reused. None, after one line on stderr, where pip cannot
    fetch them (no network): the function then runs on the stdlib, slower but the same."""
    requirements = pinned(names)
    key = hashlib.sha256(" ".join([python_version, LAMBDA_PLATFORM, *requirements]).encode())
    folder = PACKAGES_DIR / f"py{python_version}-{key.hexdigest()[:12]}"
    if (folder / ".complete").is_file():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    cmd += ["--no-deps", "--no-compile", "--only-binary=:all:", "--implementation", "cp"]
    cmd += ["--platform", LAMBDA_PLATFORM, "--python-version", python_version]
    cmd += ["--target", str(partial), *requirements]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        print(
            f"warning: could not fetch {', '.join(requirements)} for the Lambda runtime "
            f"(Python {python_version}): {reason}; the function will use the stdlib (slower)",
            file=sys.stderr,
        )
        shutil.rmtree(partial, ignore_errors=True)
        return None
    (partial / ".complete").write_text("\n".join(requirements) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def stage_function(
    name: str, *, solutions: bool, out_dir: Path | None = None, packages: str | None = None
) -> Path:
    """Write lambda_src/<name> as deployed to build/lambda/<name>-<exercise|solution>/; with
    `packages` (the runtime's Python version, "3.14"), its VENDORED packages too."""
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
    if packages and name in VENDORED:
        built = lambda_packages(VENDORED[name], packages)
        if built is not None:
            shutil.copytree(built, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
    return dest
