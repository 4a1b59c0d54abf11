"""Fused single-pass CPU kernels for the tracker's per-step inner products (numba).

The torch path of :meth:`TraversalTracker.step` makes several passes over the weights per step (convert
to float64, form differences, matrix-vector products). On a CPU that work is memory-bound, so one pass
that reads each stored value once is several times cheaper. These kernels make that pass for float32 and
float64 rows (numba has no CPU float16/bfloat16; such models, and CUDA, use the torch path).

Arithmetic (the same quantities as the torch path). Per group segment [s, e) of the flat rows, with
W_t = ``rows[cur]``, W_{t+1} = ``rows[nxt]``, g_t = ``rows[GRAD]``, W_0 = ``rows[INIT]`` and W* = ``ref``
(float64): every stored value is converted to float64 and the differences Δ = W_{t+1} − W_t, W_t − W_0,
W_t − W* are formed in float64 — exact for float32 values, whose difference fits in a double's 53-bit
mantissa (when the exponents are more than 29 apart the difference is rounded once, relative error
2⁻⁵³) — then the products are accumulated in float64.

Summation order (fixed by the code, so results are bitwise reproducible): element i of a segment adds
into lane (i − s) mod LANES; each lane adds its elements in index order; the lanes are then added in lane
order. The lanes are independent, so the compiler vectorises the loop without reassociating anything
(no fast-math). The running sums live in one small 2-D array per call (LANES × quantities, a few KiB,
in L1 cache).

Caching: compiled code is cached on disk (``cache=True``: ``__pycache__`` next to this file, else numba's
per-user cache folder). Where neither is writable (a read-only install and no writable home) the kernels
are compiled in memory at first use instead — slower to start, same results.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

LANES = 64

# Columns of the per-step inner products (the tracker's layout; tracker.py documents them).
C_STEP_SQ, C_W_A_STEP, C_W_B_STEP, C_GRAD_SQ, C_GRAD_INIT, C_GRAD_REF, C_INIT_SQ, C_REF_SQ = range(8)
N_COLUMNS = 8
# Rows of the stored vectors: W_A and W_B alternate as W_t and W_{t+1}.
W_A, W_B, GRAD, INIT = range(4)

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_lock = threading.Lock()
_compiled: dict[str, Callable[..., Any]] | None = None
_failure: str | None = None
_warm: set[np.dtype] = set()


# ---------------------------------------------------------------------------------------------- kernels
# Plain Python here; _compile() turns them into numba functions. `cur`/`nxt` are W_A or W_B, and the
# column of ⟨W_A, Δ⟩ is C_W_A_STEP + W_A, that of ⟨W_B, Δ⟩ is C_W_A_STEP + W_B. The drivers loop over
# groups and hand each group's slices to a segment function: a loop over whole slices starting at 0
# vectorises, the same loop over offsets inside the full rows did not (3× slower, measured).


def _untracked(rows, cur, nxt, bounds, values):  # pragma: no cover - runs compiled
    """‖Δ‖², ⟨W_t, Δ⟩, ⟨W_{t+1}, Δ⟩ per group into ``values[g]``; row ``n_groups`` = their sum."""
    n_groups = bounds.size - 1
    for g in range(n_groups):
        s, e = bounds[g], bounds[g + 1]
        sq, wd, vd = _step_segment(rows[cur, s:e], rows[nxt, s:e])
        values[g, C_STEP_SQ] = sq
        values[g, C_W_A_STEP + cur] = wd
        values[g, C_W_A_STEP + nxt] = vd
    _total_row(values, n_groups)


def _tracked(rows, cur, nxt, bounds, values):  # pragma: no cover - runs compiled
    """Every column but the two W* ones per group into ``values[g]``; row ``n_groups`` = their sum."""
    n_groups = bounds.size - 1
    for g in range(n_groups):
        s, e = bounds[g], bounds[g + 1]
        sums = _tracked_segment(rows[cur, s:e], rows[nxt, s:e], rows[GRAD, s:e], rows[INIT, s:e])
        _store_common(values, g, cur, nxt, sums)
    _total_row(values, n_groups)


def _tracked_ref(rows, cur, nxt, bounds, ref, values):  # pragma: no cover - runs compiled
    """All eight columns per group (W* = ``ref``, float64) into ``values[g]``; row ``n_groups`` = the sum."""
    n_groups = bounds.size - 1
    for g in range(n_groups):
        s, e = bounds[g], bounds[g + 1]
        sums = _ref_segment(rows[cur, s:e], rows[nxt, s:e], rows[GRAD, s:e], rows[INIT, s:e], ref[s:e])
        _store_common(values, g, cur, nxt, sums)
        values[g, C_GRAD_REF] = sums[6]
        values[g, C_REF_SQ] = sums[7]
    _total_row(values, n_groups)


def _tracked_snapshot(rows, cur, nxt, bounds, snapshot, values):  # pragma: no cover - runs compiled
    """As :func:`_tracked`, and copies W_t and g_t into ``snapshot[0]``, ``snapshot[1]`` on the way."""
    n_groups = bounds.size - 1
    for g in range(n_groups):
        s, e = bounds[g], bounds[g + 1]
        sums = _snapshot_segment(
            rows[cur, s:e],
            rows[nxt, s:e],
            rows[GRAD, s:e],
            rows[INIT, s:e],
            snapshot[0, s:e],
            snapshot[1, s:e],
        )
        _store_common(values, g, cur, nxt, sums)
    _total_row(values, n_groups)


def _store_common(values, g, cur, nxt, sums):  # pragma: no cover - runs compiled
    values[g, C_STEP_SQ] = sums[0]
    values[g, C_W_A_STEP + cur] = sums[1]
    values[g, C_W_A_STEP + nxt] = sums[2]
    values[g, C_GRAD_SQ] = sums[3]
    values[g, C_GRAD_INIT] = sums[4]
    values[g, C_INIT_SQ] = sums[5]


def _step_segment(w, v):  # pragma: no cover - runs compiled
    acc = np.zeros((3, LANES))
    blocks = w.size // LANES
    for b in range(blocks):
        _step_lanes(acc, w, v, b * LANES, LANES)
    _step_lanes(acc, w, v, blocks * LANES, w.size - blocks * LANES)
    return _lane_sum(acc[0]), _lane_sum(acc[1]), _lane_sum(acc[2])


def _tracked_segment(w, v, grad, init):  # pragma: no cover - runs compiled
    acc = np.zeros((6, LANES))
    blocks = w.size // LANES
    for b in range(blocks):
        _tracked_lanes(acc, w, v, grad, init, b * LANES, LANES)
    _tracked_lanes(acc, w, v, grad, init, blocks * LANES, w.size - blocks * LANES)
    return _lane_sums(acc)


def _snapshot_segment(w, v, grad, init, w_copy, grad_copy):  # pragma: no cover - runs compiled
    acc = np.zeros((6, LANES))
    blocks = w.size // LANES
    for b in range(blocks):
        _snapshot_lanes(acc, w, v, grad, init, w_copy, grad_copy, b * LANES, LANES)
    _snapshot_lanes(acc, w, v, grad, init, w_copy, grad_copy, blocks * LANES, w.size - blocks * LANES)
    return _lane_sums(acc)


def _ref_segment(w, v, grad, init, ref):  # pragma: no cover - runs compiled
    acc = np.zeros((8, LANES))
    blocks = w.size // LANES
    for b in range(blocks):
        _ref_lanes(acc, w, v, grad, init, ref, b * LANES, LANES)
    _ref_lanes(acc, w, v, grad, init, ref, blocks * LANES, w.size - blocks * LANES)
    return _lane_sums(acc)


def _step_lanes(acc, w, v, base, width):  # pragma: no cover - inlined into the segment functions
    for j in range(width):
        a = np.float64(w[base + j])
        c = np.float64(v[base + j])
        d = c - a
        acc[0, j] += d * d
        acc[1, j] += a * d
        acc[2, j] += c * d


def _tracked_lanes(acc, w, v, grad, init, base, width):  # pragma: no cover - inlined
    for j in range(width):
        a = np.float64(w[base + j])
        c = np.float64(v[base + j])
        h = np.float64(grad[base + j])
        d = c - a
        f = a - np.float64(init[base + j])
        acc[0, j] += d * d
        acc[1, j] += a * d
        acc[2, j] += c * d
        acc[3, j] += h * h
        acc[4, j] += h * f
        acc[5, j] += f * f


def _snapshot_lanes(acc, w, v, grad, init, w_copy, grad_copy, base, width):  # pragma: no cover - inlined
    for j in range(width):
        a = np.float64(w[base + j])
        c = np.float64(v[base + j])
        h = np.float64(grad[base + j])
        d = c - a
        f = a - np.float64(init[base + j])
        acc[0, j] += d * d
        acc[1, j] += a * d
        acc[2, j] += c * d
        acc[3, j] += h * h
        acc[4, j] += h * f
        acc[5, j] += f * f
        w_copy[base + j] = w[base + j]
        grad_copy[base + j] = grad[base + j]


def _ref_lanes(acc, w, v, grad, init, ref, base, width):  # pragma: no cover - inlined
    for j in range(width):
        a = np.float64(w[base + j])
        c = np.float64(v[base + j])
        h = np.float64(grad[base + j])
        d = c - a
        f = a - np.float64(init[base + j])
        r = a - ref[base + j]
        acc[0, j] += d * d
        acc[1, j] += a * d
        acc[2, j] += c * d
        acc[3, j] += h * h
        acc[4, j] += h * f
        acc[5, j] += f * f
        acc[6, j] += h * r
        acc[7, j] += r * r


def _lane_sum(lanes):  # pragma: no cover - runs compiled
    total = 0.0
    for j in range(lanes.size):
        total += lanes[j]
    return total


def _lane_sums(acc):  # pragma: no cover - runs compiled
    sums = np.empty(acc.shape[0])
    for k in range(acc.shape[0]):
        sums[k] = _lane_sum(acc[k])
    return sums


def _total_row(values, n_groups):  # pragma: no cover - runs compiled
    for k in range(values.shape[1]):
        total = 0.0
        for g in range(n_groups):
            total += values[g, k]
        values[n_groups, k] = total


# ---------------------------------------------------------------------------------------------- loading
def _compile() -> dict[str, Callable[..., Any]]:
    import numba

    options = {"nogil": True, "boundscheck": False, "error_model": "numpy"}

    def jit(function, **extra):
        try:
            return numba.njit(cache=True, **options, **extra)(function)
        except RuntimeError:  # no writable cache folder anywhere: compile in memory
            return numba.njit(**options, **extra)(function)

    # Helpers must already be numba functions when the kernels calling them compile (lazily, at their
    # first call): numba resolves them as globals of this module.
    global _step_lanes, _tracked_lanes, _snapshot_lanes, _ref_lanes
    global _step_segment, _tracked_segment, _snapshot_segment, _ref_segment
    global _lane_sum, _lane_sums, _total_row, _store_common
    _step_lanes, _tracked_lanes, _snapshot_lanes, _ref_lanes = (
        jit(f, inline="always") for f in (_step_lanes, _tracked_lanes, _snapshot_lanes, _ref_lanes)
    )
    _lane_sum, _lane_sums, _total_row, _store_common = (
        jit(f) for f in (_lane_sum, _lane_sums, _total_row, _store_common)
    )
    _step_segment, _tracked_segment, _snapshot_segment, _ref_segment = (
        jit(f) for f in (_step_segment, _tracked_segment, _snapshot_segment, _ref_segment)
    )
    return {
        "untracked": jit(_untracked),
        "tracked": jit(_tracked),
        "tracked_snapshot": jit(_tracked_snapshot),
        "tracked_ref": jit(_tracked_ref),
    }


def kernels(dtype: np.dtype | type) -> dict[str, Callable[..., Any]] | None:
    """The compiled kernels, ready for rows of ``dtype`` (float32 or float64), or None where numba is
    missing or fails (then :func:`unavailable_reason` says why). Compiles (or loads from the cache) on
    first use, so that compilation never lands in a training step."""
    global _compiled, _failure
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        return None
    with _lock:
        if _failure is not None:
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numba's cache warnings are not the user's concern
                if _compiled is None:
                    _compiled = _compile()
                if dtype not in _warm:
                    _warm_up(_compiled, dtype)
                    _warm.add(dtype)
        except Exception as error:  # noqa: BLE001 - any numba failure means: use the torch path
            _failure = f"{type(error).__name__}: {error}".splitlines()[0]
            _compiled = None
            return None
    return _compiled


def unavailable_reason() -> str | None:
    """Why the fused kernels are unavailable (None when they work or were not tried yet)."""
    return _failure


def _warm_up(compiled: dict[str, Callable[..., Any]], dtype: np.dtype) -> None:
    """Compile (or load from the cache) the specialisations for ``dtype`` on tiny inputs."""
    bounds = np.array([0, 3, 5], dtype=np.int64)
    values = np.zeros((3, N_COLUMNS))
    rows = np.ones((4, 5), dtype=dtype)
    compiled["untracked"](rows, W_A, W_B, bounds, values)
    compiled["tracked"](rows, W_A, W_B, bounds, values)
    compiled["tracked_snapshot"](rows, W_A, W_B, bounds, np.empty((2, 5), dtype=dtype), values)
    compiled["tracked_ref"](rows, W_A, W_B, bounds, np.zeros(5), values)
