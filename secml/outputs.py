"""Writing outputs without destroying inputs or leaving half a result behind.

Every command that writes a file or a folder goes through here (design.md, "Bad input": never a
partial or corrupt output):

- ``check_output`` refuses, before any work, an output that resolves to one of the command's
  inputs (the same path, a symlink to it, a hard link of it, or a folder that holds it) and an
  output whose parent is a file.
- ``atomic_file`` and ``atomic_directory`` write to a temporary sibling (same folder, so the
  same file system) and rename it into place only when it is complete: a crash, Ctrl-C or
  SIGTERM leaves the previous version or the new one, never a mix, and no stray ``.part``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from secml.errors import SecmlError


def _is_remote(value: object) -> bool:
    return isinstance(value, str) and "://" in value


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # st_dev + st_ino: symlinks and hard links alike
    except OSError:
        return False


def _inside(child: Path, folder: Path) -> bool:
    try:
        child.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def check_output(
    output: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    *,
    option: str = "--out",
    kind: str = "file",
) -> Path:
    """Refuse ``output`` (a ``kind`` of "file" or "folder") if writing it would destroy an input.

    Returns the output as a Path. Inputs given as URLs (``s3://...``) or ``None`` are ignored.
    """
    out = Path(output)
    if _is_remote(str(output)):
        raise SecmlError(f"{option} {output}: only local paths can be written")
    for parent in out.absolute().parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise SecmlError(f"{option} {out}: {parent} is a file, not a folder")
            break
    if kind == "file" and out.is_dir():
        raise SecmlError(f"{option} {out}: is a folder, expected a file name")
    if kind == "folder" and out.exists() and not out.is_dir():
        raise SecmlError(f"{option} {out}: exists and is not a folder")
    for given in inputs:
        if given is None or _is_remote(str(given)):
            continue
        source = Path(given)
        if not (source.exists() or source.is_symlink()):
            continue
        clash = (
            _same_file(out, source)
            or out.absolute() == source.absolute()
            or (out.is_symlink() and out.resolve() == source.resolve())
        )
        if kind == "folder" and not clash:
            clash = _inside(source, out)
        if clash:
            raise SecmlError(
                f"{option} {out} is also an input ({source}); writing it would destroy that input"
            )
    return out


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """``open(path, mode)`` that appears at ``path`` only when the ``with`` block completes."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file writes whole files, mode {mode!r} is not 'w' or 'wb'")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    with atomic_file(path, "w", encoding=encoding) as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``path``; on success it replaces ``path`` whole.

    The swap is two renames (old folder aside, new one in), then the old one is deleted: at no
    moment does ``path`` hold a mix of old and new files. On any error the temporary folder is
    removed and ``path`` is left as it was.
    """
    target = Path(path)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=parent))
    staging.chmod(0o777 & ~_umask())
    old: Path | None = None
    try:
        yield staging
        if target.exists() or target.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
            os.replace(target, old / "previous")
        os.replace(staging, target)
    except BaseException:
        # Put the previous version back if it was moved aside and the new one is not in place.
        if old is not None and (old / "previous").exists() and not target.exists():
            os.replace(old / "previous", target)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
