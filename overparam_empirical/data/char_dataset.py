"""Character-level dataset: deterministic train/validation split, dataset fraction, vocabulary, encoding.

How ``CharDataset.build`` splits a corpus of ``n`` characters (all steps deterministic):

1. **Blocks.** The text is cut into contiguous blocks of ``block_size`` characters (default 4096, about
   80 lines of a play; reduced to ``n // 20`` for tiny corpora so there are always ≥ 20 blocks).
2. **Validation blocks** are spread evenly over the corpus: block ``i`` is a validation block when
   ``floor((i+1)·v + ½) > floor(i·v + ½)`` (``v = valid_fraction``), i.e. every ``1/v``-th block, so
   validation samples the whole corpus (every play, every genre) and never overlaps training. The
   split depends on neither ``seed`` nor ``fraction``: runs at different dataset sizes and seeds are
   evaluated on the same text. ``max_valid_chars`` keeps an evenly spread subset of the validation blocks.
   If the corpus ships its own validation text (``valid_text``, e.g. the 1B-Words heldout shards), that
   is used instead and the whole corpus is the training pool.
3. **Vocabulary** = the characters occurring at least ``min_count`` times in the *whole training pool*
   (never the validation text), sorted by code point, after id 0 = ``<unk>``. Using the pool rather than
   the fraction keeps the vocabulary — hence the model size at a given width — identical across dataset
   fractions and seeds. Characters outside it (in validation, or rare ones) map to ``<unk>``.
4. **Fraction.** The training set is ``round(fraction·pool)`` characters made of whole training blocks
   chosen in a random order fixed by ``seed`` (the last chosen block is cut to hit the size exactly), then
   put back in corpus order. Subsets are nested: with the same seed, a smaller fraction is a subset of a
   larger one, like the paper's growing fractions of 1B Words (0.01 % … 0.4 %); ``fraction = 1`` is the
   whole pool in order.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from overparam_empirical.data.text_source import TextSource
from overparam_theory.checks import check_int
from overparam_theory.errors import InputError

UNK = "<unk>"
UNK_ID = 0
UNK_DISPLAY = "\ufffd"  # decode() shows <unk> as one replacement character
DEFAULT_BLOCK_SIZE = 4096
MIN_BLOCKS = 20
MIN_CORPUS_CHARS = 100
_MAX_CODEPOINT = 0x110000
_CHUNK = 1 << 24  # characters converted to code points at a time (bounds the temporary memory)


@dataclass(frozen=True, eq=False)
class CharDataset:
    """Token ids (``int64`` numpy arrays) of the training and validation text plus the vocabulary.

    ``vocab[i]`` is the character of id ``i``; ``vocab[0] == "<unk>"``.
    """

    vocab: tuple[str, ...]
    train: np.ndarray
    valid: np.ndarray
    fraction: float
    valid_fraction: float
    seed: int
    block_size: int
    train_pool_chars: int
    valid_unknown_rate: float

    unk_id = UNK_ID

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @classmethod
    def build(
        cls,
        text: str | TextSource,
        fraction: float,
        valid_fraction: float = 0.1,
        seed: int = 0,
        max_valid_chars: int | None = None,
        *,
        valid_text: str | None = None,
        block_size: int = DEFAULT_BLOCK_SIZE,
        min_count: int = 1,
    ) -> CharDataset:
        """Split, subsample and encode ``text`` (see the module docstring for the exact rules).

        ``text`` may be a :class:`TextSource`; its ``heldout`` text then serves as ``valid_text``.
        """
        if isinstance(text, TextSource):
            valid_text = text.heldout if valid_text is None else valid_text
            text = text.text
        fraction = _check_fraction("fraction", fraction, allow_one=True)
        if valid_text is None:
            valid_fraction = _check_fraction("valid_fraction", valid_fraction, allow_one=False)
        seed = check_int("seed", seed, minimum=0)
        block_size = check_int("block_size", block_size, minimum=1)
        min_count = check_int("min_count", min_count, minimum=1)
        if max_valid_chars is not None:
            max_valid_chars = check_int("max_valid_chars", max_valid_chars, minimum=1)
        if not isinstance(text, str) or len(text) < MIN_CORPUS_CHARS:
            size = len(text) if isinstance(text, str) else type(text).__name__
            raise InputError(f"corpus too small: need at least {MIN_CORPUS_CHARS} characters, got {size}")
        if valid_text is not None and not valid_text:
            raise InputError("valid_text is empty")

        codes = _codepoints(text)
        block = min(block_size, max(1, len(codes) // MIN_BLOCKS))
        starts = np.arange(0, len(codes), block)
        ends = np.minimum(starts + block, len(codes))
        if valid_text is None:
            is_valid = _validation_blocks(len(starts), valid_fraction)
            valid_codes = _concat(codes, starts[is_valid], ends[is_valid])
        else:
            is_valid = np.zeros(len(starts), dtype=bool)
            valid_codes = _codepoints(valid_text)
        train_starts, train_ends = starts[~is_valid], ends[~is_valid]
        if max_valid_chars is not None and len(valid_codes) > max_valid_chars:
            valid_codes = _spread_subset(valid_codes, max_valid_chars, block)

        counts = np.bincount(_concat(codes, train_starts, train_ends), minlength=_MAX_CODEPOINT)
        kept = np.flatnonzero(counts >= min_count)
        table = np.full(_MAX_CODEPOINT, UNK_ID, dtype=np.int64)
        table[kept] = np.arange(1, len(kept) + 1)
        pool = int((train_ends - train_starts).sum())

        wanted = max(2, round(fraction * pool))
        train_codes = _fraction_of_blocks(codes, train_starts, train_ends, wanted, seed)
        valid_ids = table[valid_codes]
        return cls(
            vocab=(UNK, *(chr(c) for c in kept)),
            train=table[train_codes],
            valid=valid_ids,
            fraction=float(fraction),
            valid_fraction=float(valid_fraction) if valid_text is None else float("nan"),
            seed=seed,
            block_size=int(block),
            train_pool_chars=pool,
            valid_unknown_rate=float(np.mean(valid_ids == UNK_ID)) if len(valid_ids) else 0.0,
        )

    def encode(self, text: str) -> np.ndarray:
        """Ids of ``text`` under this vocabulary (unknown characters -> ``<unk>``)."""
        index = {ch: i for i, ch in enumerate(self.vocab) if i != UNK_ID}
        return np.fromiter((index.get(ch, UNK_ID) for ch in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        """Characters of ``ids``; ``<unk>`` shows as U+FFFD so one id is one character."""
        shown = (UNK_DISPLAY, *self.vocab[1:])
        return "".join(shown[int(i)] for i in np.asarray(ids).ravel())

    def summary(self) -> dict:
        """Plain numbers describing the dataset (for logs, stores and reports)."""
        return {
            "vocab_size": self.vocab_size,
            "train_chars": int(len(self.train)),
            "valid_chars": int(len(self.valid)),
            "train_pool_chars": self.train_pool_chars,
            "fraction": self.fraction,
            "valid_fraction": self.valid_fraction,
            "seed": self.seed,
            "block_size": self.block_size,
            "valid_unknown_rate": self.valid_unknown_rate,
        }


def _validation_blocks(num_blocks: int, valid_fraction: float) -> np.ndarray:
    index = np.arange(num_blocks)
    is_valid = np.floor((index + 1) * valid_fraction + 0.5) > np.floor(index * valid_fraction + 0.5)
    if not is_valid.any():
        is_valid[num_blocks // 2] = True
    if is_valid.all():
        is_valid[num_blocks // 2] = False
    return is_valid


def _fraction_of_blocks(codes, starts, ends, wanted: int, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(len(starts))
    lengths = (ends - starts)[order]
    taken = int(np.searchsorted(np.cumsum(lengths), wanted))  # blocks order[:taken+1] reach `wanted`
    chosen = order[: taken + 1]
    short = int(lengths[: taken + 1].sum()) - wanted  # cut from the last chosen block
    cut_ends = ends.copy()
    cut_ends[chosen[-1]] -= short
    chosen = np.sort(chosen)
    return _concat(codes, starts[chosen], cut_ends[chosen])


def _spread_subset(codes: np.ndarray, limit: int, block: int) -> np.ndarray:
    starts = np.arange(0, len(codes), block)
    count = min(len(starts), math.ceil(limit / block))
    picked = starts[np.unique(np.linspace(0, len(starts) - 1, count).round().astype(np.int64))]
    return _concat(codes, picked, np.minimum(picked + block, len(codes)))[:limit]


def _concat(codes: np.ndarray, starts, ends) -> np.ndarray:
    if len(starts) == 0:
        return codes[:0]
    return np.concatenate([codes[s:e] for s, e in zip(starts, ends, strict=True)])


def _codepoints(text: str) -> np.ndarray:
    parts = [
        np.frombuffer(text[i : i + _CHUNK].encode("utf-32-le"), dtype="<u4")
        for i in range(0, len(text), _CHUNK)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype="<u4")


def _check_fraction(name: str, value, *, allow_one: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputError(f"{name} must be a number in (0, 1{']' if allow_one else ')'}, got {value!r}")
    if not (0 < value < 1 or (allow_one and value == 1)):
        raise InputError(f"{name} must be in (0, 1{']' if allow_one else ')'}, got {value!r}")
    return float(value)
