"""Mini-batches for stateful truncated BPTT and a deterministic evaluation pass (numpy only).

Layout: a token array of ``n`` ids is cut into ``B = batch_size`` parallel streams of
``m = (n − 1) // B`` consecutive positions; stream ``b`` reads inputs ``tokens[b·m : (b+1)·m]`` and
targets shifted by one. Window ``k`` is columns ``[k·T, (k+1)·T)`` of every stream, so window ``k+1``
continues exactly where window ``k`` stopped and the recurrent state can be carried across windows
(detached). Up to ``B`` trailing tokens that do not fill a stream are not used.

Arrays are ``int64`` and C-contiguous, ready for ``torch.from_numpy`` at the model boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from overparam_theory.checks import check_int
from overparam_theory.errors import InputError


class StreamBatch(NamedTuple):
    """One training window: ``x``, ``y`` of shape ``[B, T]``; ``window`` 0 starts an epoch (reset state)."""

    x: np.ndarray
    y: np.ndarray
    epoch: int
    window: int

    @property
    def starts_epoch(self) -> bool:
        return self.window == 0


def stream_batches(
    tokens: np.ndarray, batch_size: int, seq_len: int, *, drop_last: bool = False
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One pass over ``tokens``: consecutive ``(x, y)`` windows ``[B, T]`` (the last one may be shorter
    unless ``drop_last``)."""
    inputs, targets = _streams(tokens, batch_size, seq_len)
    length = inputs.shape[1]
    for start in range(0, length, seq_len):
        stop = min(start + seq_len, length)
        if drop_last and stop - start < seq_len:
            return
        yield np.ascontiguousarray(inputs[:, start:stop]), np.ascontiguousarray(targets[:, start:stop])


def windows_per_epoch(num_tokens: int, batch_size: int, seq_len: int, *, drop_last: bool = False) -> int:
    """Number of windows :func:`stream_batches` yields for ``num_tokens`` tokens."""
    length = max(0, (num_tokens - 1) // batch_size)
    return length // seq_len if drop_last else -(-length // seq_len)


def epoch_batches(
    tokens: np.ndarray, batch_size: int, seq_len: int, *, drop_last: bool = True
) -> Iterator[StreamBatch]:
    """Endless training stream: epoch after epoch of :func:`stream_batches`, in the same order each epoch.

    Full windows only by default, so every SGD step sees ``B·T`` characters. Reset the recurrent state
    when ``batch.starts_epoch`` (the streams jump back to their beginnings).
    """
    if windows_per_epoch(len(tokens), batch_size, seq_len, drop_last=drop_last) == 0:
        raise InputError(
            f"training text of {len(tokens)} characters is too short for batch size {batch_size} × "
            f"sequence length {seq_len}; use a larger dataset fraction or a smaller batch/sequence"
        )
    epoch = 0
    while True:
        for window, (x, y) in enumerate(stream_batches(tokens, batch_size, seq_len, drop_last=drop_last)):
            yield StreamBatch(x, y, epoch, window)
        epoch += 1


def eval_batches(
    tokens: np.ndarray, batch_size: int, seq_len: int, *, max_windows: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Deterministic evaluation pass: the first ``max_windows`` windows (all by default) of
    :func:`stream_batches`, with the batch size reduced when the text has fewer than ``B + 1`` tokens.

    The ``B`` streams start at evenly spaced points of the text, so a capped pass still samples all of
    it. Average the loss over characters (``y.size`` per window), not over windows: the last one may be
    shorter.
    """
    if max_windows is not None and (
        isinstance(max_windows, bool) or not isinstance(max_windows, int) or max_windows < 1
    ):
        raise InputError(f"max_windows must be a positive integer, got {max_windows!r}")
    batch_size = check_int("batch_size", batch_size)
    batch_size = max(1, min(batch_size, len(tokens) - 1))
    for index, window in enumerate(stream_batches(tokens, batch_size, seq_len)):
        if max_windows is not None and index >= max_windows:
            return
        yield window


def _streams(tokens: np.ndarray, batch_size: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    batch_size = check_int("batch_size", batch_size)
    check_int("seq_len", seq_len)
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise InputError(f"tokens must be a 1-D integer array, got shape {tokens.shape} of {tokens.dtype}")
    length = (len(tokens) - 1) // batch_size
    if length < 1:
        raise InputError(
            f"{len(tokens)} tokens are too few for batch size {batch_size} (need at least {batch_size + 1})"
        )
    used = batch_size * length
    inputs = tokens[:used].reshape(batch_size, length)
    targets = tokens[1 : used + 1].reshape(batch_size, length)
    return inputs, targets
