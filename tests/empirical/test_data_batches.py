"""Truncated-BPTT batches and the evaluation pass against plain-loop references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from overparam_empirical.data import epoch_batches, eval_batches, stream_batches, windows_per_epoch
from overparam_theory.errors import InputError


@pytest.mark.parametrize("n, batch, seq", [(1000, 4, 7), (101, 10, 10), (50, 1, 49), (64, 3, 100)])
def test_windows_match_reference(n, batch, seq):
    tokens = np.arange(n, dtype=np.int64) * 3
    windows = list(stream_batches(tokens, batch, seq))
    stream_length = (n - 1) // batch
    assert len(windows) == windows_per_epoch(n, batch, seq)
    for k, (x, y) in enumerate(windows):
        assert x.dtype == np.int64 and x.flags.c_contiguous and x.shape == y.shape
        for b in range(batch):
            for j in range(x.shape[1]):
                position = b * stream_length + k * seq + j
                assert x[b, j] == tokens[position] and y[b, j] == tokens[position + 1]
    # every stream is covered exactly once, consecutively
    assert sum(x.shape[1] for x, _ in windows) == stream_length


def test_drop_last_keeps_full_windows_only():
    tokens = np.arange(1000)
    full = list(stream_batches(tokens, 4, 7, drop_last=True))
    assert all(x.shape == (4, 7) for x, _ in full) and len(full) == 249 // 7
    assert windows_per_epoch(1000, 4, 7, drop_last=True) == len(full)


def test_epoch_iterator_wraps_around():
    tokens = np.arange(100)
    per_epoch = windows_per_epoch(100, 3, 5, drop_last=True)
    batches = list(itertools.islice(epoch_batches(tokens, 3, 5), 2 * per_epoch + 1))
    assert [b.epoch for b in batches] == [0] * per_epoch + [1] * per_epoch + [2]
    assert batches[0].starts_epoch and batches[per_epoch].starts_epoch and not batches[1].starts_epoch
    for first, second in zip(batches[:per_epoch], batches[per_epoch:], strict=False):
        assert np.array_equal(first.x, second.x) and np.array_equal(first.y, second.y)


def test_epoch_iterator_refuses_too_short_text():
    with pytest.raises(InputError, match="too short"):
        next(epoch_batches(np.arange(20), 4, 10))


def test_eval_pass_is_deterministic_and_capped():
    tokens = np.random.default_rng(0).integers(0, 50, 5000)
    a = list(eval_batches(tokens, 8, 30))
    b = list(eval_batches(tokens, 8, 30))
    assert all(
        np.array_equal(x1, x2) and np.array_equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=False)
    )
    assert sum(y.size for _, y in a) == 8 * ((5000 - 1) // 8)
    capped = list(eval_batches(tokens, 8, 30, max_windows=3))
    assert len(capped) == 3 and all(np.array_equal(c[0], f[0]) for c, f in zip(capped, a, strict=False))


def test_eval_pass_shrinks_batch_for_tiny_text():
    x, y = next(eval_batches(np.arange(5), 32, 10))
    assert x.shape == (4, 1) and y.tolist() == [[1], [2], [3], [4]]


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.arange(10), 0, 5), "batch_size"),
        ((np.arange(10), 2, 0), "seq_len"),
        ((np.arange(10), 20, 5), "too few"),
        ((np.zeros((2, 5), dtype=np.int64), 1, 5), "1-D integer"),
        ((np.zeros(10), 1, 5), "1-D integer"),
    ],
)
def test_bad_arguments(args, message):
    with pytest.raises(InputError, match=message):
        next(stream_batches(*args))
