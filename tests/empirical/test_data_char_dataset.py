"""CharDataset: split, fraction, vocabulary and encoding against plain-loop references."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overparam_empirical.data import CharDataset, TextSource
from overparam_theory.errors import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "data"
HAMLET = (FIXTURES / "shakespeare_hamlet_excerpt.txt").read_text()


def _unique_text(n: int) -> str:
    """Every character distinct, so a character tells its position in the corpus."""
    return "".join(chr(0x100 + i) for i in range(n))


def _positions(dataset: CharDataset, ids) -> list[int]:
    return [ord(dataset.vocab[i]) - 0x100 for i in ids]


def _reference_split(n: int, block: int, v: float) -> tuple[list[int], list[int]]:
    """Plain-loop version of the documented rule (train positions, valid positions)."""
    train, valid = [], []
    for i, start in enumerate(range(0, n, block)):
        chosen = math.floor((i + 1) * v + 0.5) > math.floor(i * v + 0.5)
        (valid if chosen else train).extend(range(start, min(start + block, n)))
    return train, valid


@pytest.mark.parametrize("n, block, v", [(5000, 64, 0.1), (3000, 100, 0.25), (999, 7, 0.05)])
def test_split_matches_reference_and_never_overlaps(n, block, v):
    data = CharDataset.build(_unique_text(n), 1.0, valid_fraction=v, block_size=block)
    train_ref, valid_ref = _reference_split(n, block, v)
    assert data.valid.dtype == np.int64 and data.train.dtype == np.int64
    assert _positions(data, data.train) == train_ref  # fraction 1: whole pool, corpus order
    # validation characters never occur in training, so they are all <unk>
    assert (data.valid == 0).all() and len(data.valid) == len(valid_ref)
    assert set(train_ref).isdisjoint(valid_ref) and len(train_ref) + len(valid_ref) == n
    assert data.valid_unknown_rate == 1.0


def test_validation_spread_over_the_corpus():
    text = HAMLET * 10
    data = CharDataset.build(text, 1.0, valid_fraction=0.1, block_size=200)
    _, valid_ref = _reference_split(len(text), 200, 0.1)
    assert data.decode(data.valid) == "".join(text[i] for i in valid_ref)
    # one validation block in every ten, from the start to the end of the corpus
    starts = sorted(set(p - p % 200 for p in valid_ref))
    assert starts[0] < 2000 and starts[-1] > len(text) - 2200
    assert np.diff(starts).max() <= 2000


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(100, 3000),
    block=st.integers(1, 300),
    fractions=st.lists(st.floats(0.001, 1.0), min_size=2, max_size=4),
    seed=st.integers(0, 2**31),
)
def test_fractions_are_exact_nested_and_seeded(n, block, fractions, seed):
    text = _unique_text(n)
    sets = []
    for fraction in sorted(fractions):
        data = CharDataset.build(text, fraction, seed=seed, block_size=block)
        positions = _positions(data, data.train)
        assert len(positions) == max(2, round(fraction * data.train_pool_chars))
        assert positions == sorted(positions)  # put back in corpus order
        assert set(positions).isdisjoint(_reference_split(n, data.block_size, 0.1)[1])
        sets.append(set(positions))
    for small, large in zip(sets, sets[1:], strict=False):
        assert small <= large


def test_seed_changes_the_subset_not_the_validation_or_vocab():
    a = CharDataset.build(HAMLET, 0.2, seed=1, block_size=100)
    b = CharDataset.build(HAMLET, 0.2, seed=2, block_size=100)
    c = CharDataset.build(HAMLET, 0.5, seed=1, block_size=100)
    again = CharDataset.build(HAMLET, 0.2, seed=1, block_size=100)
    assert np.array_equal(a.train, again.train) and a.vocab == again.vocab
    assert not np.array_equal(a.train, b.train)
    assert np.array_equal(a.valid, b.valid) and np.array_equal(a.valid, c.valid)
    assert a.vocab == b.vocab == c.vocab


def test_vocabulary_from_training_only_with_unk():
    text = HAMLET * 4
    data = CharDataset.build(text, 1.0, block_size=100)
    _, valid_ref = _reference_split(len(text), data.block_size, 0.1)
    position = valid_ref[len(valid_ref) // 2]
    marked = text[:position] + "§" + text[position + 1 :]  # a character only the validation text has
    data = CharDataset.build(marked, 1.0, block_size=100)
    assert data.vocab[0] == "<unk>" and data.unk_id == 0
    assert "§" not in data.vocab and list(data.vocab[1:]) == sorted(set(data.vocab[1:]))
    assert (data.valid == 0).sum() == 1 and data.decode(data.valid).count("\ufffd") == 1
    assert set(data.vocab[1:]) == set(data.decode(data.train))


def test_min_count_maps_rare_characters_to_unk():
    text = HAMLET.replace("z", "Z") + "z" * 3
    rare = CharDataset.build(text, 1.0, valid_fraction=0.01, min_count=4)
    counts = {ch: rare.decode(rare.train).count(ch) for ch in set(rare.decode(rare.train))}
    assert all(n >= 4 for ch, n in counts.items() if ch != "\ufffd")


def test_encode_decode_round_trip():
    data = CharDataset.build(HAMLET, 1.0)
    assert data.decode(data.encode("Who's there?")) == "Who's there?"
    assert data.decode(data.encode("Who's there?\u2603")) == "Who's there?\ufffd"
    assert data.encode("ab").dtype == np.int64


def test_valid_text_and_heldout():
    source = TextSource("x", HAMLET, heldout="Enter Ghost.\n" * 50)
    data = CharDataset.build(source, 1.0)
    assert data.decode(data.train) == HAMLET and data.decode(data.valid) == "Enter Ghost.\n" * 50
    capped = CharDataset.build(source, 1.0, max_valid_chars=100)
    assert len(capped.valid) == 100


def test_max_valid_chars_keeps_a_spread_subset():
    text = _unique_text(4000)
    full = CharDataset.build(text, 1.0, valid_fraction=0.5, block_size=50)
    capped = CharDataset.build(text, 1.0, valid_fraction=0.5, block_size=50, max_valid_chars=500)
    assert len(full.valid) == 2000 and len(capped.valid) == 500


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fraction": 0}, "fraction"),
        ({"fraction": 1.5}, "fraction"),
        ({"fraction": float("nan")}, "fraction"),
        ({"fraction": True}, "fraction"),
        ({"fraction": 0.5, "valid_fraction": 1.0}, "valid_fraction"),
        ({"fraction": 0.5, "valid_fraction": 0}, "valid_fraction"),
        ({"fraction": 0.5, "seed": -1}, "seed"),
        ({"fraction": 0.5, "max_valid_chars": 0}, "max_valid_chars"),
        ({"fraction": 0.5, "block_size": 0}, "block_size"),
    ],
)
def test_bad_arguments_are_input_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        CharDataset.build(HAMLET, **kwargs)


def test_numpy_numbers_are_accepted():
    data = CharDataset.build(HAMLET, np.float32(0.5), valid_fraction=np.float64(0.2), seed=np.int64(3))
    assert data.fraction == 0.5 and data.seed == 3


def test_too_small_corpus():
    with pytest.raises(InputError, match="too small"):
        CharDataset.build("tiny", 1.0)


def test_summary_is_plain_numbers():
    summary = CharDataset.build(HAMLET, 0.5).summary()
    assert summary["train_chars"] == round(0.5 * summary["train_pool_chars"])
    assert all(isinstance(v, (int, float)) for v in summary.values())
