"""Atomic file writes: the one home for every file the package writes for a user.

A file is written to a temporary file in the same directory, flushed, ``fsync``-ed and renamed over
the target with ``os.replace``, so an interruption leaves either the old file or the new one, never
a truncated one. The temporary file is created with mode 0600 (``tempfile.mkstemp``); before the
rename it gets the mode an ordinary ``open(path, "w")`` would give (``0o666`` minus the umask).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

__all__ = ["atomic_create_text", "atomic_save", "atomic_write", "atomic_write_bytes", "atomic_write_text"]


def _default_mode() -> int:
    """``0o666 & ~umask``: the mode ``open()`` gives a new file (reading the umask restores it)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_temp(path: Path, write: Callable[[IO[bytes]], Any]) -> str:
    """Write a complete, synced temporary file next to ``path`` with ``open()``'s mode; return it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(f)`` on a binary temporary file, then rename it to ``path`` atomically.

    Args:
        path: the file to create or replace (its directory must exist).
        write: writes the content into the open binary file it is given.

    On any exception (``KeyboardInterrupt`` included) the temporary file is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    tmp = _write_temp(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_create_text(text: str, path: str | os.PathLike) -> bool:
    """Create ``path`` holding ``text`` (UTF-8), atomically and only if it does not exist yet.

    The complete file is hard-linked into place, which fails if ``path`` exists, so concurrent
    writers agree on one content (on a file system without hard links, an exclusive ``open``).

    Returns:
        True if this call created the file, False if it existed (it is then left unchanged).
    """
    path = Path(path)
    tmp = _write_temp(path, lambda f: f.write(text.encode()))
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system
        try:
            with open(path, "x", encoding="utf-8") as f:
                f.write(text)
            return True
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` atomically."""
    atomic_write(path, lambda f: torch.save(obj, f))
