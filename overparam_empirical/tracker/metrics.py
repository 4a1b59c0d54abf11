"""Host-side formulas that turn the float64 inner products gathered on the device into metrics.

Inner products per group (all float64) at a tracked step t, with Δ_t = W_{t+1} − W_t:

* distance        ‖W_t − W_0‖;  relative distance ‖W_t − W_0‖ / ‖W_0‖ (undefined when W_0 = 0);
* step size       ‖Δ_t‖;        gradient norm ‖g_t‖;
* As(t)           arccos(⟨g_t, W_t − W_0⟩ / (‖g_t‖ ‖W_t − W_0‖))  (undefined at t = 0, where W_t = W_0);
* Ae(t)           arccos(⟨g_t, W_t − W*⟩ / (‖g_t‖ ‖W_t − W*‖))    (undefined where W_t = W*);
* the paper's Ae  arccos(⟨W_t − W*, g_t⟩ / (‖W* − W_0‖ ‖g_t‖)), printed as such in §4.3. Its denominator is
  not the norm of W_t − W*, so the ratio is not a cosine and may leave [−1, 1]; it is then undefined.

Undefined values are NaN here and ``None`` in records. Cosines from float64 inner products are clipped
into [−1, 1] before arccos (rounding can push |cos| a few ulps above 1).
"""

from __future__ import annotations

import math

import numpy as np


def safe_sqrt(squared: np.ndarray) -> np.ndarray:
    """√x with tiny negative rounding residue clamped to 0 (squared norms from Gram sums)."""
    return np.sqrt(np.maximum(np.asarray(squared, dtype=np.float64), 0.0))


def angle(dot: np.ndarray, sq_a: np.ndarray, sq_b: np.ndarray) -> np.ndarray:
    """∠(a, b) = arccos(⟨a, b⟩ / (‖a‖‖b‖)) in radians, in [0, π]; NaN where a or b is zero or non-finite."""
    dot = np.asarray(dot, dtype=np.float64)
    denom = safe_sqrt(sq_a) * safe_sqrt(sq_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = np.where(denom > 0, dot / np.where(denom > 0, denom, 1.0), np.nan)
        return np.arccos(np.clip(cosine, -1.0, 1.0))


def paper_ae(dot_g_dstar: np.ndarray, sq_g: np.ndarray, star_to_init: float) -> tuple[np.ndarray, np.ndarray]:
    """The paper's printed Ae: returns (ratio, arccos(ratio) or NaN where |ratio| > 1 or undefined)."""
    dot = np.asarray(dot_g_dstar, dtype=np.float64)
    denom = safe_sqrt(sq_g) * star_to_init
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(denom > 0, dot / np.where(denom > 0, denom, 1.0), np.nan)
        inside = np.abs(ratio) <= 1.0
        return ratio, np.where(inside, np.arccos(np.where(inside, ratio, 0.0)), np.nan)


def path_mean(steps: np.ndarray, values: np.ndarray, end: int) -> float:
    """The average of a per-step quantity along the path, (1/N) Σ_t v(t), estimated from tracked steps.

    Each finite value v(t_i) stands for the steps from its own step up to the next tracked step with a
    finite value (the last one up to ``end``, the number of steps in the path): a left Riemann sum over
    t, so the estimate does not depend on how densely the schedule tracks a part of the path. With every
    step tracked it is the plain mean of the defined values (e.g. As over t = 1..T−1, As(0) being
    undefined). NaN when no value is finite. A logarithmic schedule tracks the first few steps densely:
    their plain mean would weigh the start of training as much as the whole rest of it.
    """
    steps = np.asarray(steps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    steps, values = steps[finite], values[finite]
    if values.size == 0:
        return math.nan
    weights = np.diff(np.append(steps, max(int(end), int(steps[-1]) + 1))).astype(np.float64)
    return float(np.dot(weights, values) / weights.sum())


def yin_check(
    final_to_star_sq: float,
    init_to_star_sq: float,
    sum_step_sq: float,
    sum_w_dot_step: float,
    star_dot_displacement: float,
) -> dict[str, float]:
    """The Yin accounting identity for any fixed W*, checked from the every-step sums.

    For W_{t+1} = W_t + Δ_t (t = 0..T−1) and any W*, expanding ‖W_{t+1} − W*‖² and summing gives
    ‖W_T − W*‖² = ‖W_0 − W*‖² + Σ‖Δ_t‖² + 2 Σ⟨W_t − W*, Δ_t⟩, and
    Σ⟨W_t − W*, Δ_t⟩ = Σ⟨W_t, Δ_t⟩ − ⟨W*, W_T − W_0⟩, so W* need not be known while training.
    Relative residual: |lhs − rhs| / (lhs + ‖W_0 − W*‖² + Σ‖Δ_t‖²), the sum of the non-negative terms.
    """
    cross = sum_w_dot_step - star_dot_displacement
    lhs = final_to_star_sq
    rhs = init_to_star_sq + sum_step_sq + 2.0 * cross
    residual = abs(lhs - rhs)
    scale = lhs + init_to_star_sq + sum_step_sq
    if not (math.isfinite(residual) and math.isfinite(scale)):
        relative = math.nan  # diverged weights: a result to record, not a crash
    elif scale > 0:
        relative = residual / scale
    else:
        relative = 0.0 if residual == 0 else math.inf
    return {
        "yin_lhs": lhs,
        "yin_rhs": rhs,
        "yin_cross_sum": cross,
        "yin_abs_residual": residual,
        "yin_rel_residual": float(relative),
    }
