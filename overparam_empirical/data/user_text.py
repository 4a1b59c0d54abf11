"""Corpora the user brings: a text file, enwik8/text8, a 1B-Words folder, a folder of ``.txt`` files.

Formats (``fmt``; ``None`` = detect from the path):

* ``text``    a UTF-8 text file (a leading BOM is dropped, ``\\r\\n`` becomes ``\\n``). A file with NUL bytes
  or invalid UTF-8 is refused with the offset of the first bad byte.
* ``enwik8``  raw bytes (Hutter-prize ``enwik8``/``enwik9``; detected by the file name ``enwik<digits>``),
  decoded as Latin-1 so that every *byte* becomes exactly one character: the byte-level convention of
  the enwik8 literature (a multi-byte UTF-8 character counts as 2–4 symbols; at most 256 symbols).
* ``text8``   Mikolov's ``text8`` (one line of lower-case a–z and spaces, detected by the name
  ``text8``); read as text.
* ``1b-words`` the One Billion Word benchmark folder (``1-billion-word-language-modeling-benchmark-r13output``
  or its ``training-monolingual.tokenized.shuffled`` subfolder): the training shards ``news.en-*`` in
  sorted order (``max_files`` keeps only the first ones: the whole corpus is ~4.1 G characters), and the
  ``heldout-monolingual.tokenized.shuffled/news.en.heldout-*`` shards 1–49 as validation text when that
  folder is present. Shard ``news.en.heldout-00000-of-00050`` is the benchmark's test set and is never read.
* ``txt-dir`` a folder of ``*.txt`` files (searched recursively, read as ``text`` in sorted path order).
"""

from __future__ import annotations

import re
from pathlib import Path

from overparam_theory.errors import InputError

FORMATS = ("text", "enwik8", "text8", "1b-words", "txt-dir")
ONE_B_TRAIN = "training-monolingual.tokenized.shuffled"
ONE_B_HELDOUT = "heldout-monolingual.tokenized.shuffled"
ONE_B_TEST_SHARD = "news.en.heldout-00000-of-00050"


def detect_format(path: Path) -> str:
    if path.is_dir():
        if _one_b_train_folder(path) is not None:
            return "1b-words"
        return "txt-dir"
    if re.fullmatch(r"enwik\d+", path.name):
        return "enwik8"
    if path.name == "text8":
        return "text8"
    return "text"


def read_user_corpus(path: Path, fmt: str, *, max_files: int | None = None) -> tuple[str, str | None, str]:
    """Return ``(text, heldout_text or None, description)`` for a user path of format ``fmt``."""
    if fmt in ("text", "text8"):
        return read_text_file(path), None, f"{fmt} file {path}"
    if fmt == "enwik8":
        return read_bytes_as_latin1(path), None, f"raw bytes of {path} (Latin-1: one character per byte)"
    if fmt == "1b-words":
        return read_one_billion_words(path, max_files=max_files)
    if fmt == "txt-dir":
        return read_text_folder(path, max_files=max_files)
    raise InputError(f"unknown corpus format {fmt!r}; choose one of {', '.join(FORMATS)}")


def read_text_file(path: Path) -> str:
    data = _read_file(path)
    if b"\x00" in data[:65536]:
        raise InputError(f"{path} looks like a binary file (it contains NUL bytes); give a UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it to UTF-8, or name it enwik8 to read raw bytes"
        ) from None
    return text.replace("\r\n", "\n")


def read_bytes_as_latin1(path: Path) -> str:
    return _read_file(path).decode("latin-1")


def read_text_folder(path: Path, *, max_files: int | None = None) -> tuple[str, None, str]:
    files = sorted(p for p in path.rglob("*.txt") if p.is_file())
    if not files:
        raise InputError(f"folder {path} holds no .txt files (and is not a 1B-Words folder)")
    files = files[:max_files] if max_files else files
    return _concatenate(files), None, f"{len(files)} .txt files under {path}"


def read_one_billion_words(path: Path, *, max_files: int | None = None) -> tuple[str, str | None, str]:
    train_folder = _one_b_train_folder(path)
    if train_folder is None:
        raise InputError(f"{path} is not a 1B-Words folder (no {ONE_B_TRAIN}/news.en-* files)")
    shards = sorted(train_folder.glob("news.en-*"))
    shards = shards[:max_files] if max_files else shards
    heldout_folder = train_folder.parent / ONE_B_HELDOUT
    heldout_files = (
        sorted(p for p in heldout_folder.glob("news.en.heldout-*") if p.name != ONE_B_TEST_SHARD)
        if heldout_folder.is_dir()
        else []
    )
    heldout = _concatenate(heldout_files) if heldout_files else None
    described = f"1B-Words: {len(shards)} training shards of {train_folder}"
    if heldout is not None:
        described += f", {len(heldout_files)} heldout shards as validation"
    return _concatenate(shards), heldout, described


def _one_b_train_folder(path: Path) -> Path | None:
    for candidate in (path / ONE_B_TRAIN, path):
        if candidate.is_dir() and any(candidate.glob("news.en-*")):
            return candidate
    return None


def _concatenate(files: list[Path]) -> str:
    parts = []
    for file in files:
        text = read_text_file(file)
        parts.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(parts)


def _read_file(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read corpus {path}: {exc.strerror}") from None
    if not data:
        raise InputError(f"corpus file {path} is empty")
    return data
