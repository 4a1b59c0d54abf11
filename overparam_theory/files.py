"""Atomic file writes, shared by every part of the toolkit (standard library only).

A file is either written completely or not at all: the content goes to a temporary file in the target's
folder, which is then renamed over the target (``os.replace`` is atomic on POSIX within one file
system). An interrupted write leaves the previous file, or none, and no temporary file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text"]


def atomic_write(path: Path | str, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` to produce the content, then rename it over ``path``; returns ``path``.

    The temporary file sits next to the target (same file system) and is removed if ``write`` or the
    rename fails; permissions follow the umask, like a plain ``open(path, "w")``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
