"""The loaded corpus handed to the dataset builder."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TextSource:
    """A corpus as one string.

    ``credit`` is a one-line attribution/licence notice the CLI prints before training (required for
    CC-BY content); ``heldout`` is the corpus' own validation text when it ships one (1B-Words
    ``heldout-monolingual…`` folder), else ``None``.
    """

    name: str
    text: str = field(repr=False)
    credit: str = ""
    origin: str = ""
    heldout: str | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.text)
