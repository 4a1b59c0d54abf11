"""Built-in source ``kjv``: the King James Bible from Debian's ``bible-kjv`` package.

The text is the verbatim output of ``bible -l9999 "Gen1:1-Rev22:21"`` (line width 9999, so every verse is
one line, ``  <verse number> <text>``, with a ``<Book> <chapter>`` heading line before each chapter):
4,298,239 characters, 31,102 verses. The ``bible`` program ships only with the Debian package, so it must
be installed by the user (``sudo apt-get install bible-kjv``); this module never runs apt itself.
Text public domain; program GPL-2+.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from overparam_empirical.data.errors import CORPUS_HINT, DataUnavailableError
from overparam_empirical.data.fetching import FETCH_TIMEOUT_SECONDS

NAME = "kjv"
CACHE_KEY = "kjv-bible-kjv-4"
CREDIT = "King James Bible (public domain) as printed by Debian's bible-kjv package (program GPL-2+)"
PASSAGE = "Gen1:1-Rev22:21"
ORIGIN = f"bible -l9999 {PASSAGE} (Debian bible-kjv)"
MIN_CHARS = 4_000_000  # the full text is 4.3 M characters; less means a broken or partial install


def fetch(work: Path) -> tuple[str, str]:
    bible = shutil.which("bible")
    if bible is None:
        raise DataUnavailableError(
            "the 'kjv' corpus needs the bible program from Debian's bible-kjv package: "
            f"run 'sudo apt-get install bible-kjv'; {CORPUS_HINT}"
        )
    try:
        done = subprocess.run(
            [bible, "-l9999", PASSAGE],
            cwd=work,
            capture_output=True,
            timeout=FETCH_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataUnavailableError(
            f"cannot read the 'kjv' corpus: bible failed ({exc}); {CORPUS_HINT}"
        ) from None
    text = done.stdout.decode("utf-8", errors="replace")
    if done.returncode != 0 or len(text) < MIN_CHARS:
        raise DataUnavailableError(
            f"cannot read the 'kjv' corpus: 'bible -l9999 {PASSAGE}' gave {len(text)} characters "
            f"(exit status {done.returncode}); reinstall with 'sudo apt-get install --reinstall bible-kjv'; "
            + CORPUS_HINT
        )
    return text, ORIGIN
