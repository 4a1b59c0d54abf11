"""Fused single-pass CPU kernels for the tracker's per-step inner products (numba).

The torch path of :meth:`TraversalTracker.step` copies the weights (and gradients) into flat rows and
then makes several passes over them (convert to float64, form differences, matrix-vector products). On a
CPU that work is memory-bound, so a single pass that reads each value once is several times cheaper.
These kernels make that pass for float32 and float64 parameters (numba has no CPU float16/bfloat16;
such models, and CUDA, use the torch path).

One pass per step. For each tracked tensor the kernel reads W_{t+1} from the parameter itself and g_t
from its gradient (by address: the tracker checks before every call that each is a contiguous CPU tensor
of the store dtype, and otherwise points the kernel at a copy in its rows), W_t from ``rows[cur]`` and
W_0 from ``rows[INIT]`` (and W* for ``ae_method="reference"``); it writes W_{t+1} into ``rows[nxt]``,
which holds W_t at the next step, and, for ``ae_method="snapshots"``, (W_t, g_t) into the snapshot slot.

Arithmetic (the same quantities as the torch path). Every value is converted to float64 and the
differences Δ = W_{t+1} − W_t, W_t − W_0, W_t − W* are formed in float64 — exact for float32 values,
whose difference fits in a double's 53-bit mantissa (when the exponents are more than 29 apart the
difference is rounded once, relative error 2⁻⁵³) — then the products are accumulated in float64.

Summation order (fixed by the code, so results are bitwise reproducible): element j of a tensor adds
into lane j mod LANES; each lane adds its elements in index order; the lanes are added in lane order,
then the tensors of a group in layout order, then the groups in order for ``all``. The lanes are
independent, so the compiler vectorises the loop without reassociating anything (no fast-math). The
running sums live in a small 2-D array per tensor (LANES × quantities, a few KiB, in L1 cache).

Caching: compiled code is cached on disk (``cache=True``: ``__pycache__`` next to this file, else numba's
per-user cache folder). Where neither is writable (a read-only install and no writable home) the kernels
are compiled in memory at first use instead — a few seconds more at the first tracker, same results.
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
# Modes of the tracked kernel.
PLAIN, SNAPSHOT, REFERENCE = range(3)

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_lock = threading.Lock()
_compiled: dict[str, Callable[..., Any]] | None = None
_failure: str | None = None
_warm: set[np.dtype] = set()
numba: Any = None  # imported by _compile(), at the first kernels() call
_pointer_like: Any = None  # numba intrinsic: integer address -> typed pointer (defined by _compile)


# ---------------------------------------------------------------------------------------------- kernels
# Plain Python here; _compile() turns them into numba functions.
#
# Inputs of a step. `params` / `grads`: the addresses of the parameter tensors (W_{t+1}) and of their
# gradients (g_t), one per tracked tensor, each contiguous, of the rows' dtype and `offsets[i+1] −
# offsets[i]` elements long (the tracker checks this before every call, and points at a row copy
# otherwise). `rows[cur]` holds W_t, `rows[nxt]` receives W_{t+1} (it is W_t of the next step),
# `rows[INIT]` holds W_0. Group g owns tensors group_tensors[g] .. group_tensors[g+1] − 1.
# `cur`/`nxt` are W_A or W_B; the column of ⟨W_A, Δ⟩ is C_W_A_STEP + W_A, that of ⟨W_B, Δ⟩ C_W_A_STEP + W_B.
#
# The drivers hand each tensor's slices to a segment function: a loop over whole slices starting at 0
# vectorises, the same loop over offsets inside the full rows did not (3× slower, measured).


def _untracked(params, rows, cur, nxt, offsets, group_tensors, values):  # pragma: no cover - compiled
    """‖Δ‖², ⟨W_t, Δ⟩, ⟨W_{t+1}, Δ⟩ per group into ``values[g]`` (row ``n_groups``: their sum), and
    W_{t+1} copied into ``rows[nxt]``."""
    like = rows[0, :0]
    n_groups = group_tensors.size - 1
    for g in range(n_groups):
        sq = wd = vd = 0.0
        for i in range(group_tensors[g], group_tensors[g + 1]):
            s, e = offsets[i], offsets[i + 1]
            new = numba.carray(_pointer_like(params[i], like), (e - s,))
            a, b, c = _step_segment(new, rows[cur, s:e], rows[nxt, s:e])
            sq += a
            wd += b
            vd += c
        values[g, C_STEP_SQ] = sq
        values[g, C_W_A_STEP + cur] = wd
        values[g, C_W_A_STEP + nxt] = vd
    _total_row(values, n_groups)


def _tracked(
    params, grads, rows, cur, nxt, offsets, group_tensors, mode, ref, snapshot, values
):  # pragma: no cover - compiled
    """Every column per group into ``values[g]`` (row ``n_groups``: their sum) and W_{t+1} copied into
    ``rows[nxt]``. ``mode``: PLAIN (no W*: the two W* columns are left alone), SNAPSHOT (the same, and
    W_t, g_t copied into ``snapshot[0]``, ``snapshot[1]`` on the way) or REFERENCE (W* = ``ref``,
    float64). The unused one of ``ref`` / ``snapshot`` may be any array of the right type."""
    like = rows[0, :0]
    n_groups = group_tensors.size - 1
    for g in range(n_groups):
        sums = np.zeros(8)
        for i in range(group_tensors[g], group_tensors[g + 1]):
            s, e = offsets[i], offsets[i + 1]
            new = numba.carray(_pointer_like(params[i], like), (e - s,))
            grad = numba.carray(_pointer_like(grads[i], like), (e - s,))
            w, w_next, init = rows[cur, s:e], rows[nxt, s:e], rows[INIT, s:e]
            if mode == SNAPSHOT:
                part = _snapshot_segment(new, w, w_next, grad, init, snapshot[0, s:e], snapshot[1, s:e])
            elif mode == REFERENCE:
                part = _ref_segment(new, w, w_next, grad, init, ref[s:e])
            else:
                part = _tracked_segment(new, w, w_next, grad, init)
            for k in range(part.size):
                sums[k] += part[k]
        values[g, C_STEP_SQ] = sums[0]
        values[g, C_W_A_STEP + cur] = sums[1]
        values[g, C_W_A_STEP + nxt] = sums[2]
        values[g, C_GRAD_SQ] = sums[3]
        values[g, C_GRAD_INIT] = sums[4]
        values[g, C_INIT_SQ] = sums[5]
        if mode == REFERENCE:
            values[g, C_GRAD_REF] = sums[6]
            values[g, C_REF_SQ] = sums[7]
    _total_row(values, n_groups)


def _star_sums(pairs, bounds, star, dots, squares):  # pragma: no cover - compiled
    """For stored snapshots ``pairs[k] = (W_t, g_t)`` and W* = ``star`` (float64): ⟨g_t, W_t − W*⟩ into
    ``dots[k, g]`` and ‖W_t − W*‖² into ``squares[k, g]`` per group segment ``bounds[g]..bounds[g+1]``;
    column ``n_groups`` = their sum. (finalize(); one pass per snapshot, no float64 temporaries.)"""
    n_groups = bounds.size - 1
    for k in range(pairs.shape[0]):
        dot_total = 0.0
        sq_total = 0.0
        for g in range(n_groups):
            s, e = bounds[g], bounds[g + 1]
            dot, sq = _star_segment(pairs[k, 0, s:e], pairs[k, 1, s:e], star[s:e])
            dots[k, g] = dot
            squares[k, g] = sq
            dot_total += dot
            sq_total += sq
        dots[k, n_groups] = dot_total
        squares[k, n_groups] = sq_total


# Segment functions: one tensor's slices; lane loops over whole blocks, then the tail.
def _step_segment(new, w, w_next):  # pragma: no cover - compiled
    acc = np.zeros((3, LANES))
    blocks = w.size // LANES
    for b in range(blocks):
        _step_lanes(acc, new, w, w_next, b * LANES, LANES)
    _step_lanes(acc, new, w, w_next, blocks * LANES, w.size - blocks * LANES)
    return _lane_sum(acc[0]), _lane_sum(acc[1]), _lane_sum(acc[2])


def _tracked_segment(new, w, w_next, grad, init):  # pragma: no cover - compiled
    acc = np.zeros((6, LANES))
    blocks = w.size // LANES
    for b in range(blocks):
        _tracked_lanes(acc, new, w, w_next, grad, init, b * LANES, LANES)
    _tracked_lanes(acc, new, w, w_next, grad, init, blocks * LANES, w.size - blocks * LANES)
    return _lane_sums(acc)


def _snapshot_segment(new, w, w_next, grad, init, w_copy, grad_copy):  # pragma: no cover - compiled
    acc = np.zeros((6, LANES))
    blocks = w.size // LANES
    for b in range(blocks):
        _snapshot_lanes(acc, new, w, w_next, grad, init, w_copy, grad_copy, b * LANES, LANES)
    tail = w.size - blocks * LANES
    _snapshot_lanes(acc, new, w, w_next, grad, init, w_copy, grad_copy, blocks * LANES, tail)
    return _lane_sums(acc)


def _ref_segment(new, w, w_next, grad, init, ref):  # pragma: no cover - compiled
    acc = np.zeros((8, LANES))
    blocks = w.size // LANES
    for b in range(blocks):
        _ref_lanes(acc, new, w, w_next, grad, init, ref, b * LANES, LANES)
    _ref_lanes(acc, new, w, w_next, grad, init, ref, blocks * LANES, w.size - blocks * LANES)
    return _lane_sums(acc)


def _star_segment(w, grad, star):  # pragma: no cover - compiled
    acc = np.zeros((2, LANES))
    blocks = w.size // LANES
    for b in range(blocks):
        _star_lanes(acc, w, grad, star, b * LANES, LANES)
    _star_lanes(acc, w, grad, star, blocks * LANES, w.size - blocks * LANES)
    return _lane_sum(acc[0]), _lane_sum(acc[1])


# Lane loops (inlined into the segment functions). Element base + j adds into lane j.
def _step_lanes(acc, new, w, w_next, base, width):  # pragma: no cover - inlined
    for j in range(width):
        a = np.float64(w[base + j])
        c = np.float64(new[base + j])
        w_next[base + j] = new[base + j]
        d = c - a
        acc[0, j] += d * d
        acc[1, j] += a * d
        acc[2, j] += c * d


def _tracked_lanes(acc, new, w, w_next, grad, init, base, width):  # pragma: no cover - inlined
    for j in range(width):
        a = np.float64(w[base + j])
        c = np.float64(new[base + j])
        h = np.float64(grad[base + j])
        w_next[base + j] = new[base + j]
        d = c - a
        f = a - np.float64(init[base + j])
        acc[0, j] += d * d
        acc[1, j] += a * d
        acc[2, j] += c * d
        acc[3, j] += h * h
        acc[4, j] += h * f
        acc[5, j] += f * f


def _snapshot_lanes(acc, new, w, w_next, grad, init, w_copy, grad_copy, base, width):  # pragma: no cover
    for j in range(width):
        a = np.float64(w[base + j])
        c = np.float64(new[base + j])
        h = np.float64(grad[base + j])
        w_next[base + j] = new[base + j]
        w_copy[base + j] = w[base + j]
        grad_copy[base + j] = grad[base + j]
        d = c - a
        f = a - np.float64(init[base + j])
        acc[0, j] += d * d
        acc[1, j] += a * d
        acc[2, j] += c * d
        acc[3, j] += h * h
        acc[4, j] += h * f
        acc[5, j] += f * f


def _ref_lanes(acc, new, w, w_next, grad, init, ref, base, width):  # pragma: no cover - inlined
    for j in range(width):
        a = np.float64(w[base + j])
        c = np.float64(new[base + j])
        h = np.float64(grad[base + j])
        w_next[base + j] = new[base + j]
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


def _star_lanes(acc, w, grad, star, base, width):  # pragma: no cover - inlined
    for j in range(width):
        r = np.float64(w[base + j]) - star[base + j]
        acc[0, j] += np.float64(grad[base + j]) * r
        acc[1, j] += r * r


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


def _total_row(values, n_groups):  # pragma: no cover - compiled
    for k in range(values.shape[1]):
        total = 0.0
        for g in range(n_groups):
            total += values[g, k]
        values[n_groups, k] = total


# ---------------------------------------------------------------------------------------------- loading
def _compile() -> dict[str, Callable[..., Any]]:
    global numba, _pointer_like
    import numba
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def pointer_like(typingctx, address, like):
        """The integer ``address`` as a pointer to elements of the array type ``like``."""
        if not isinstance(address, types.Integer) or not isinstance(like, types.Array):
            return None

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

        return types.CPointer(like.dtype)(address, like), codegen

    _pointer_like = pointer_like
    options = {"nogil": True, "boundscheck": False, "error_model": "numpy"}

    def jit(function, **extra):
        try:
            return numba.njit(cache=True, **options, **extra)(function)
        except RuntimeError:  # no writable cache folder anywhere: compile in memory
            return numba.njit(**options, **extra)(function)

    # Helpers must already be numba functions when the kernels calling them compile (lazily, at their
    # first call): numba resolves them as globals of this module.
    names = ["_step_lanes", "_tracked_lanes", "_snapshot_lanes", "_ref_lanes", "_star_lanes"]
    for name in names:
        globals()[name] = jit(globals()[name], inline="always")
    names = ["_lane_sum", "_lane_sums", "_total_row"]
    names += ["_step_segment", "_tracked_segment", "_snapshot_segment", "_ref_segment", "_star_segment"]
    for name in names:
        globals()[name] = jit(globals()[name])
    return {"untracked": jit(_untracked), "tracked": jit(_tracked), "star_sums": jit(_star_sums)}


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
    """Compile (or load from the cache) every specialisation for ``dtype``, on tiny inputs."""
    rows = np.ones((4, 5), dtype=dtype)
    new, grad = np.full(5, 2.0, dtype=dtype), np.zeros(5, dtype=dtype)
    params = np.array([new[:3].ctypes.data, new[3:].ctypes.data], dtype=np.int64)
    grads = np.array([grad[:3].ctypes.data, grad[3:].ctypes.data], dtype=np.int64)
    offsets, group_tensors = np.array([0, 3, 5], dtype=np.int64), np.array([0, 1, 2], dtype=np.int64)
    values, snapshot, ref = np.zeros((3, N_COLUMNS)), np.empty((2, 5), dtype=dtype), np.zeros(5)
    compiled["untracked"](params, rows, W_A, W_B, offsets, group_tensors, values)
    for mode in (PLAIN, SNAPSHOT, REFERENCE):
        compiled["tracked"](
            params, grads, rows, W_A, W_B, offsets, group_tensors, mode, ref, snapshot, values
        )
    compiled["star_sums"](np.ones((2, 2, 5), dtype=dtype), offsets, ref, values[:2], values[1:])
