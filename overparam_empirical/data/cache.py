"""On-disk cache of fetched corpora: one folder per source, created atomically, verified on every read.

Layout: ``cache_dir()/text/<key>/text.txt`` (UTF-8) and ``manifest.json`` (``sha256``, ``bytes``,
``chars``, ``origin``). A fetch works in a hidden temporary folder next to the final one and publishes it
with one ``os.rename``, so a killed fetch never leaves a half-written entry; an entry whose manifest is
missing or whose text does not match its checksum is treated as absent and fetched again. When two
processes fetch the same source at once, the first rename wins and the other discards its copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from overparam_empirical.data.errors import DataUnavailableError

_STALE_SECONDS = 24 * 3600  # temporary folders of killed fetches older than this are removed


def cache_dir() -> Path:
    """``$OVERPARAM_CACHE`` if set, else ``~/.cache/overparam``."""
    configured = os.environ.get("OVERPARAM_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "overparam"


def cached_text(key: str, fetch: Callable[[Path], tuple[str, str]]) -> str:
    """Return the cached text for ``key``, calling ``fetch(work_dir) -> (text, origin)`` when absent."""
    root = cache_dir() / "text"
    entry = root / key
    text = _read_verified(entry)
    if text is not None:
        return text
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(root, key)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    except OSError as exc:
        raise DataUnavailableError(
            f"cannot write the corpus cache {root} ({exc.strerror}); set OVERPARAM_CACHE to a writable folder"
        ) from None
    try:
        work = staging / "work"
        work.mkdir()
        text, origin = fetch(work)
        shutil.rmtree(work)
        _write_entry(staging, text, origin)
        if entry.exists():  # corrupted leftover (checked above) or a concurrent fetch that just finished
            if _read_verified(entry) is not None:
                return text
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.rename(staging, entry)
        except OSError:
            if _read_verified(entry) is None:  # lost a race against a writer that left garbage: give up
                raise
        return text
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_entry(folder: Path, text: str, origin: str) -> None:
    data = text.encode("utf-8")
    (folder / "text.txt").write_bytes(data)
    manifest = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "chars": len(text),
        "origin": origin,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _read_verified(entry: Path) -> str | None:
    try:
        manifest = json.loads((entry / "manifest.json").read_text())
        data = (entry / "text.txt").read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("bytes") != len(data):
        return None
    if manifest.get("sha256") != hashlib.sha256(data).hexdigest():
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _remove_stale_temporaries(root: Path, key: str) -> None:
    now = time.time()
    for leftover in root.glob(f".{key}-*"):
        try:
            if now - leftover.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass
