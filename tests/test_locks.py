"""The compiled locks (requirements*.txt) are complete and in step with their intent (*.in).

A lock that misses a transitive package lets a fresh install months later resolve whatever is
newest; a lock whose pin differs from the .in file installs something nobody asked for. Both
are checked against the packages installed here: every Requires-Dist of every locked package
(markers evaluated for this interpreter, extras followed where a requirement asks for them)
must itself be pinned.
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys
from collections import deque
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CHECKOV_SITE = ROOT / ".venv-checkov" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"

# lock -> (its .in file, the other locks installed beside it, where it is installed)
LOCKS = {
    "requirements.txt": ("requirements.in", (), None),
    "requirements-dev.txt": ("requirements-dev.in", ("requirements.txt",), None),
    "requirements-checkov.txt": ("requirements-checkov.in", (), CHECKOV_SITE / "site-packages"),
}


def requirement_lines(path: Path) -> list[Requirement]:
    """The requirements of a pip requirements file (options such as -c / -r are left out)."""
    found = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        found.append(Requirement(line))
    return found


def pins(path: Path) -> dict[str, Version]:
    result = {}
    for req in requirement_lines(path):
        (spec,) = req.specifier  # a lock pins each package with exactly one ==
        assert spec.operator == "==", f"{path.name}: {req} is not pinned with =="
        result[canonicalize_name(req.name)] = Version(spec.version)
    return result


def installed(site: Path | None) -> dict[str, metadata.Distribution]:
    dists = metadata.distributions(path=[str(site)]) if site else metadata.distributions()
    found: dict[str, metadata.Distribution] = {}
    for dist in dists:
        found.setdefault(canonicalize_name(dist.metadata["Name"]), dist)
    return found


def missing_dependencies(
    top_level: list[Requirement], locked: set[str], dists: dict[str, metadata.Distribution]
) -> list[str]:
    """Walk Requires-Dist from the top-level requirements; name each one the lock lacks."""
    missing = []
    seen: set[tuple[str, frozenset[str]]] = set()
    queue = deque(
        (canonicalize_name(r.name), frozenset(r.extras), "the .in file") for r in top_level
    )
    while queue:
        name, extras, wanted_by = queue.popleft()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name not in locked:
            missing.append(f"{name} (wanted by {wanted_by})")
            continue
        dist = dists.get(name)
        if dist is None:
            missing.append(f"{name} is locked but not installed here; cannot check its deps")
            continue
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker and not any(
                req.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            ):
                continue
            queue.append((canonicalize_name(req.name), frozenset(req.extras), name))
    return missing


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_of_the_in_file_is_the_pin_of_the_lock(lock):
    source, _, _ = LOCKS[lock]
    locked = pins(ROOT / lock)
    for req in requirement_lines(ROOT / source):
        name = canonicalize_name(req.name)
        assert name in locked, f"{source} asks for {req.name}, {lock} does not pin it"
        assert locked[name] in req.specifier, f"{source}: {req}, but {lock} pins {locked[name]}"


@pytest.mark.parametrize("lock", LOCKS)
def test_every_dependency_of_every_locked_package_is_locked(lock):
    source, beside, site = LOCKS[lock]
    if site is not None:
        assert site.is_dir(), f"{site} is missing: run `make install`"
    locked = set(pins(ROOT / lock))
    for other in beside:
        locked |= set(pins(ROOT / other))
    top_level = requirement_lines(ROOT / source)
    # The lock's own lines are roots too: a pinned package nobody asked for still needs its deps.
    roots = top_level + [Requirement(name) for name in pins(ROOT / lock)]
    assert missing_dependencies(roots, locked, installed(site)) == []


def test_the_walk_reports_a_dependency_the_lock_lacks():
    """The check itself can fail: pip-tools is pinned, its dependency build is left out."""
    dists = installed(None)
    locked = set(pins(ROOT / "requirements-dev.txt")) - {"build"}
    missing = missing_dependencies([Requirement("pip-tools")], locked, dists)
    assert "build (wanted by pip-tools)" in missing


def test_extras_asked_for_are_followed():
    """moto[server] needs flask; plain moto does not."""
    dists = installed(None)
    locked = set(pins(ROOT / "requirements.txt")) - {"flask"}
    assert missing_dependencies([Requirement("moto")], locked, dists) == []
    assert "flask (wanted by moto)" in missing_dependencies(
        [Requirement("moto[server]")], locked, dists
    )
