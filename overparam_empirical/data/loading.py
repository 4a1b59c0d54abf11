"""``load_text``: one entry point for the built-in corpora and the user's own files."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from overparam_empirical.data import brown, kjv, shakespeare
from overparam_empirical.data.cache import cached_text
from overparam_empirical.data.text_source import TextSource
from overparam_empirical.data.user_text import FORMATS, detect_format, read_user_corpus
from overparam_theory.errors import InputError

DEFAULT_SOURCE = "shakespeare"
BUILTIN_SOURCES: dict[str, ModuleType] = {"shakespeare": shakespeare, "brown": brown, "kjv": kjv}


def load_text(
    source: str | Path = DEFAULT_SOURCE,
    *,
    fmt: str | None = None,
    max_files: int | None = None,
    max_chars: int | None = None,
) -> TextSource:
    """Load a corpus as one string.

    ``source`` is a built-in name (``shakespeare`` — the default —, ``brown``, ``kjv``; fetched on first
    use and cached, see :func:`overparam_empirical.data.cache.cache_dir`) or a path: a UTF-8 text file,
    ``enwik8`` (raw bytes), ``text8``, a 1B-Words folder, or a folder of ``.txt`` files (``fmt`` forces
    one of ``text, enwik8, text8, 1b-words, txt-dir``). ``max_files`` keeps the first shards/files of a
    folder; ``max_chars`` keeps the first characters of the result (for quick runs).
    An existing path wins over a built-in name of the same spelling.
    """
    for name, value in (("max_files", max_files), ("max_chars", max_chars)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown corpus format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not str(source).strip():
        raise InputError("corpus must be a built-in source name or a path, got an empty string")
    path = Path(source).expanduser()
    if path.exists():
        kind = fmt or detect_format(path)
        text, heldout, origin = read_user_corpus(path, kind, max_files=max_files)
        loaded = TextSource(name=path.name or str(path), text=text, origin=origin, heldout=heldout)
    elif str(source) in BUILTIN_SOURCES:
        if fmt is not None:
            raise InputError(f"fmt applies to corpus files only, not to the built-in source {source!r}")
        module = BUILTIN_SOURCES[str(source)]
        text = cached_text(module.CACHE_KEY, module.fetch)
        loaded = TextSource(name=module.NAME, text=text, credit=module.CREDIT, origin=module.ORIGIN)
    else:
        raise InputError(
            f"corpus {str(source)!r} is neither a built-in source ({', '.join(BUILTIN_SOURCES)}) "
            "nor an existing file or folder"
        )
    if max_chars is not None and len(loaded.text) > max_chars:
        loaded = TextSource(
            loaded.name, loaded.text[:max_chars], loaded.credit, loaded.origin, loaded.heldout
        )
    return loaded
