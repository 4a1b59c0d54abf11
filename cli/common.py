"""Small helpers shared by the ``overparam`` sub-commands: output-path checks, atomic writes, JSON.

Policy (docs/architecture.md): every option is validated before any work starts, and a file is either
written completely or not at all — content goes to a temporary file in the target's directory, which is
then renamed over the target (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from overparam_theory.errors import InputError
from overparam_theory.files import atomic_write, atomic_write_text

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "check_output_path",
    "to_jsonable",
    "write_json",
]


def check_output_path(path: Path | str, option: str, suffixes: Iterable[str] | None = None) -> Path:
    """``path`` as a Path after checking it can be written: parent folder exists and is writable, the
    path is not a folder, and (if given) its suffix is one of ``suffixes`` (case-insensitive)."""
    path = Path(path)
    if suffixes is not None:
        allowed = tuple(s.lower() for s in suffixes)
        if path.suffix.lower() not in allowed:
            shown = path.suffix or "(none)"
            raise InputError(f"{option} {path}: unknown file suffix {shown}; use one of {', '.join(allowed)}")
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory, expected a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{option} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: folder {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{option} {path}: file exists and is not writable")
    return path


def to_jsonable(value):
    """``value`` with numpy scalars/arrays turned into Python ones and NaN/inf into ``None`` (valid JSON)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path | str, payload: dict) -> None:
    """Write ``payload`` as indented, strictly valid JSON (NaN/inf as null), atomically."""
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text)
