"""Monte Carlo of gradient descent on width-K linear networks, vectorised over trials, full weight space.

What is simulated (conventions in docs/theory.md): data ``(x_i, y_i)``, ``x_i ∈ R^d``; loss
``F = (1/n) Σ_i (ŷ_i − y_i)²``; GD ``θ_{t+1} = θ_t − η ∇F(θ_t)``; the network

* fixed second layer (the paper's Appendix B): ``ŷ = 1ᵀ W x``, ``W ∈ R^{K×d}``, parameters ``θ = W``;
* trainable second layer (beyond the paper): ``ŷ = aᵀ W x``, parameters ``θ = (W, a)``.

Every trial evolves its whole ``K×d`` weight array (and ``a``) with the exact gradient of the network
loss.  With ``u = Wᵀa`` (the end-to-end linear map) the loss is ``F = uᵀΣ_xx u − 2 Σ_xyᵀ u + mean(y²)``,
so the gradient is exactly

    ∇_W F = a gᵀ,   ∇_a F = W g,   g = ∂F/∂u = 2 (Σ_xx u − Σ_xy),

which depends on the data only through ``Σ_xx = XᵀX/n`` and ``Σ_xy = Xᵀy/n``: they are computed once per
run (exact, not an approximation; :func:`reference_trial` checks it against per-sample residuals).

Measured per trial (fixed second layer; distances in the Frobenius norm of the weight space):

* ``initial_distance``  ``dist(W_0, S)`` to the minimiser set ``S = {W : Σ_xx Wᵀ1 = Σ_xy}``, equal to
  ``‖P(u − u*)‖/√K`` (``P`` projects on the range of ``Σ_xx``, ``u*`` any least-squares solution);
* ``halting_time``      first ``t`` with ``dist(W_t, S) ≤ eps · dist(W_0, S)`` (relative ``eps``, with the
  rounding slack :data:`HALTING_TOLERANCE` shared with :mod:`overparam_theory.lnn`);
* ``distance``          ``D0 = ‖W_0 − W_final‖``, ``W_final`` the last iterate, reached when
  ``dist(W_t, S) ≤ final_tol · dist(W_0, S)`` (or at rounding level);
* ``first_step``        ``‖Δ_0‖ = η ‖∇F(W_0)‖``;
* ``path_length``       ``Σ_{t<T} ‖Δ_t‖`` and ``mean_step`` ``= path_length / T`` over the *halting window*
  ``t = 0..T−1`` (``T`` the halting time; the steps run when it never halted);
* ``mean_as``           mean over ``t = 1..T−1`` of
  ``A_s(t) = arccos⟨W_t − W_0, ∇F_t⟩/(‖W_t − W_0‖‖∇F_t‖)`` (undefined at ``t = 0``);
* ``mean_ae``           mean over ``t = 1..T−1`` (as for every angle, the convention of :mod:`lnn`) of
  ``A_e(t) = arccos⟨W_t − W_f, ∇F_t⟩/(‖W_t − W_f‖‖∇F_t‖)``, against the final iterate ``W_f``;
* ``mean_ae_printed``   the same with the paper's printed denominator ``‖W_f − W_0‖‖∇F_t‖`` (Section 4.3;
  not a cosine in general, so clipped to ``[−1, 1]`` before ``arccos``).

Steps where an angle is undefined (a zero vector) are left out of its mean; a diverged trial has no
window (its steps and angles are NaN).  For the fixed second layer with scalar input every step is
parallel to ``1``: ``A_s = π`` and ``A_e = 0`` on monotone paths.

Trainable second layer: the minimiser set ``{(W, a) : Σ_xx Wᵀa = Σ_xy}`` is not convex and has no simple
distance, so progress is measured on the *loss gap*: the halting time is the first ``t`` with
``√((F_t − F*)/(F_0 − F*)) ≤ eps`` (for the fixed second layer and scalar input this is exactly the
distance criterion, because ``F − F* = m2·K·dist²``); ``W_final`` is reached at root-gap ratio
``final_tol``; ``D0 = ‖(W_0, a_0) − (W_f, a_f)‖`` over both layers; angles and steps use the gradient with
respect to both layers.  The second layer starts at ones (default; then the first-layer gradient
at ``t = 0`` equals the fixed net's) or is drawn from the same law as ``W`` in ``R^K``.

Outcomes are recorded, never raised: ``status`` is ``converged``, ``not converged within cap`` (``max_steps``
reached) or ``diverged`` (a non-finite value, or the progress measure grew past ``divergence_factor`` times
its start); ``halting_time`` is NaN when it was never reached.

Algorithm: per width, trials are processed in chunks of about ``chunk_elements`` weights so the working
set stays in cache, with the trials on the last array axis (``W`` is stored as ``(K, d, m)``).  Per chunk,
pass 1 runs GD to the final iterate, dropping trials from the working arrays as they finish (their
iterate then stays frozen); pass 2 replays GD from ``W_0`` over each trial's halting window to measure
steps and angles (``A_e`` needs ``W_f``, known only after pass 1).  Each width draws its initial weights
from its own random stream ``SeedSequence(seed, spawn_key=(K, 0))`` (second layer ``(K, 1)``), so the
same seed gives identical numbers and the rows of width K do not depend on which other widths are run.
Measured layout choices and speed: docs/theory.md, "Monte Carlo".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from overparam_theory.checks import check_int, check_positive
from overparam_theory.datasets import RegressionData
from overparam_theory.errors import InputError
from overparam_theory.init_laws import get_init_law
from overparam_theory.init_laws import sample as sample_init

__all__ = [
    "CONVERGED",
    "DIVERGED",
    "NOT_CONVERGED",
    "STATUS_NAMES",
    "LossMoments",
    "MonteCarloResult",
    "Summary",
    "WidthMonteCarlo",
    "mean_confidence_interval",
    "reference_trial",
    "run_monte_carlo",
    "simulate_width",
    "width_seed_sequence",
]

CONVERGED, NOT_CONVERGED, DIVERGED = 0, 1, 2
STATUS_NAMES = ("converged", "not converged within cap", "diverged")

#: Relative slack in log space of the halting test, ``dist_t/dist_0 <= eps**(1 - HALTING_TOLERANCE)``, the
#: same as :data:`overparam_theory.lnn.HALTING_TOLERANCE`: an exact-integer ratio such as ``rho = 0.1,
#: eps = 1e-3`` then halts at T = 3 in both, not one step later because of rounding.
HALTING_TOLERANCE = 1e-12

# A progress measure this many float64 epsilons times the size of the weights is rounding noise.
_ROUNDING_FLOOR = 64.0 * np.finfo(np.float64).eps


# --------------------------------------------------------------------------------------------------
# the data, reduced to what the squared loss of a linear network depends on


@dataclass(frozen=True, eq=False)
class LossMoments:
    """``Σ_xx = XᵀX/n`` (d×d), ``Σ_xy = Xᵀy/n`` (d,), ``mean(y²)`` and the derived minimiser quantities.

    ``u_star`` is the minimum-norm least-squares solution, ``loss_min = F* = mean((X u* − y)²)``,
    ``range_basis`` an orthonormal basis (d×r) of the range of ``Σ_xx`` or ``None`` when it has full rank,
    ``largest_eigenvalue`` ``λ_max(Σ_xx)`` (``m2`` for scalar input). The minimiser quantities are those of
    :func:`overparam_theory.lnn_minimiser.minimiser` (SVD of ``X/√n``, numpy's rank rule), so that the
    simulation and the closed forms agree on the minimiser set even for nearly collinear inputs (an
    eigenvalue threshold on ``Σ_xx`` would square the condition number and drop resolved directions).
    """

    second: np.ndarray
    cross: np.ndarray
    mean_y2: float
    u_star: np.ndarray
    loss_min: float
    range_basis: np.ndarray | None
    largest_eigenvalue: float

    @classmethod
    def from_data(cls, data: RegressionData) -> LossMoments:
        from overparam_theory.lnn_minimiser import minimiser

        X = data.design_matrix
        n = X.shape[0]
        mini = minimiser(data)
        u_star = mini.v_star
        # F* from the residuals (mean(y²) − Σ_xyᵀu* cancels when the fit is good)
        loss_min = float(np.mean((X @ u_star - data.y) ** 2))
        return cls(
            second=X.T @ X / n,
            cross=X.T @ data.y / n,
            mean_y2=float(data.y @ data.y / n),
            u_star=u_star,
            loss_min=loss_min,
            range_basis=None if mini.rank == mini.input_dim else mini.range_basis,
            largest_eigenvalue=float(mini.eigenvalues[0]),
        )

    @property
    def input_dim(self) -> int:
        return int(self.cross.shape[0])

    def loss(self, u: np.ndarray) -> np.ndarray:
        """``F`` at end-to-end maps ``u`` of shape (..., d)."""
        return np.einsum("...i,ij,...j->...", u, self.second, u) - 2.0 * u @ self.cross + self.mean_y2


# --------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class Summary:
    """``mean`` with a ``level`` confidence interval ``(low, high)``: mean ± t_{(1+level)/2, n−1}·s/√n.

    ``n`` values entered (finite values of converged trials); ``n_excluded`` were left out.  The interval is
    the Student-t interval for a mean (valid for large ``n`` by the central limit theorem); it is NaN for
    ``n < 2`` and zero-width when all values are equal.
    """

    mean: float
    low: float
    high: float
    std: float
    n: int
    n_excluded: int
    level: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def mean_confidence_interval(values: np.ndarray, *, level: float = 0.95) -> Summary:
    """:class:`Summary` of the finite entries of ``values`` (NaN/inf are excluded and counted)."""
    values = np.asarray(values, dtype=float).reshape(-1)
    finite = values[np.isfinite(values)]
    excluded = int(values.size - finite.size)
    n = int(finite.size)
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, math.nan, 0, excluded, level)
    mean = float(finite.mean())
    if n < 2:
        return Summary(mean, math.nan, math.nan, math.nan, n, excluded, level)
    std = float(finite.std(ddof=1))
    from overparam_theory.powerlaw import student_t_quantile

    half = student_t_quantile(0.5 + level / 2.0, n - 1) * std / math.sqrt(n)
    return Summary(mean, mean - half, mean + half, std, n, excluded, level)


# Per-trial arrays of a WidthMonteCarlo, in the order shown by `metric_names`.
_METRICS = (
    "distance",
    "initial_distance",
    "halting_time",
    "first_step",
    "path_length",
    "mean_step",
    "mean_as",
    "mean_ae",
    "mean_ae_printed",
    "final_loss",
)


@dataclass(frozen=True, eq=False)
class WidthMonteCarlo:
    """Per-trial results for one width (arrays of length ``n_trials``; see the module docstring).

    ``initial_distance`` is ``dist(W_0, S)`` for the fixed second layer and ``√(F_0 − F*)`` for the
    trainable one (the progress measure the halting time is relative to). ``steps`` is the number of GD
    steps run in pass 1; ``curves`` (optional) holds the progress ratio ``dist_t/dist_0`` per step for the
    first trials, NaN after a trial stopped.
    """

    width: int
    lr: float
    train_second_layer: bool
    status: np.ndarray
    steps: np.ndarray
    distance: np.ndarray
    initial_distance: np.ndarray
    halting_time: np.ndarray
    first_step: np.ndarray
    path_length: np.ndarray
    mean_step: np.ndarray
    mean_as: np.ndarray
    mean_ae: np.ndarray
    mean_ae_printed: np.ndarray
    final_loss: np.ndarray
    curves: np.ndarray | None = None

    @property
    def n_trials(self) -> int:
        return int(self.status.shape[0])

    def count(self, status: int) -> int:
        return int(np.count_nonzero(self.status == status))

    @property
    def converged_fraction(self) -> float:
        return self.count(CONVERGED) / self.n_trials

    @property
    def converges(self) -> bool:
        """True when every trial converged."""
        return self.count(CONVERGED) == self.n_trials

    def summary(self, metric: str, *, level: float = 0.95, converged_only: bool = True) -> Summary:
        """Mean and t-interval of ``metric`` over converged trials (all if ``converged_only=False``)."""
        if metric not in _METRICS:
            raise InputError(f"unknown Monte Carlo metric {metric!r}; known: {', '.join(_METRICS)}")
        values = np.asarray(getattr(self, metric), dtype=float)
        if converged_only:
            values = np.where(self.status == CONVERGED, values, np.nan)
        return mean_confidence_interval(values, level=level)


@dataclass(frozen=True, eq=False)
class MonteCarloResult:
    """All widths of one Monte Carlo run, with the options used."""

    widths: tuple[WidthMonteCarlo, ...]
    options: dict = field(default_factory=dict)

    def __getitem__(self, width: int) -> WidthMonteCarlo:
        for result in self.widths:
            if result.width == width:
                return result
        raise KeyError(width)


# --------------------------------------------------------------------------------------------------
# the vectorised simulator


@dataclass(frozen=True)
class _Settings:
    lr: float
    train_second_layer: bool
    eps: float
    final_tol: float
    halt_threshold: float
    max_steps: int
    fixed_steps: int | None
    divergence_factor: float
    keep_curves: int


# Internal layout: trials LAST — W is (K, d, m), a is (K, m), u and g are (d, m) for m trials — so every
# per-trial reduction over the K·d weights is a sum of contiguous rows of length m (vectorised adds).
# With trials first, numpy reduces each trial's few weights separately: 5-20x slower for K <= 8.


def _gradient_u(u: np.ndarray, moments: LossMoments) -> np.ndarray:
    """``g = ∂F/∂u = 2(Σ_xx u − Σ_xy)`` for end-to-end maps ``u`` of shape (d, m)."""
    if moments.input_dim == 1:  # a scalar product is much cheaper than a (1, 1) @ (1, m) matmul
        return u * (2.0 * moments.second[0, 0]) - 2.0 * moments.cross[0]
    g = moments.second @ u
    g -= moments.cross[:, None]
    g *= 2.0
    return g


def _forward(W: np.ndarray, a: np.ndarray | None, moments: LossMoments) -> tuple[np.ndarray, np.ndarray]:
    """End-to-end map ``u = Wᵀa`` (``Wᵀ1`` when ``a`` is None) and ``g = ∂F/∂u = 2(Σ_xx u − Σ_xy)``."""
    u = W.sum(axis=0) if a is None else (a[:, None, :] * W).sum(axis=0)
    return u, _gradient_u(u, moments)


def _progress_sq(u: np.ndarray, moments: LossMoments, width: int, trainable: bool) -> np.ndarray:
    """Squared progress measure per trial: ``dist(W, S)² = ‖P(u − u*)‖²/K`` (fixed second layer) or the
    loss gap ``F − F* = (u − u*)ᵀΣ_xx(u − u*)`` (trainable), computed from the error, not from F − F*
    (which would cancel near the minimum)."""
    e = u - moments.u_star[:, None]
    if trainable:
        return np.maximum(np.einsum("dm,dm->m", e, moments.second @ e), 0.0)
    if moments.range_basis is not None:
        e = moments.range_basis.T @ e
    return _dot_d(e, e) / width


def _step(W: np.ndarray, a: np.ndarray | None, g: np.ndarray, lr: float) -> None:
    """One GD step in place: ``W −= η a gᵀ``; ``a −= η W g`` (with the pre-step ``W``) when trainable."""
    if a is None:
        W -= (lr * g)[None, :, :]
        return
    grad_a = (W * g[None, :, :]).sum(axis=1)
    W -= lr * (a[:, None, :] * g[None, :, :])
    a -= lr * grad_a


def _dot_d(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-trial dot product over the input dimension of two (d, m) arrays."""
    if x.shape[0] == 1:  # scalar input: a product, without einsum's dispatch cost
        return x[0] * y[0]
    return np.einsum("dm,dm->m", x, y)


def _sq_norm(x: np.ndarray) -> np.ndarray:
    """Per-trial squared Frobenius norm of an array whose last axis is the trial (one pass, no temporary)."""
    flat = x.reshape(-1, x.shape[-1])
    return np.einsum("im,im->m", flat, flat)


def _norm(x: np.ndarray) -> np.ndarray:
    return np.sqrt(_sq_norm(x))


def _keep(alive: np.ndarray, *arrays):
    """The arrays restricted to the trials still running (trials are the last axis); None stays None."""
    return [None if x is None else x[..., alive] for x in arrays]


def _simulate_chunk(W0: np.ndarray, a0: np.ndarray | None, moments: LossMoments, s: _Settings) -> dict:
    """Both passes for one chunk: ``W0`` (K, d, m), ``a0`` (K, m), trials last; returns per-trial arrays.

    Per-trial state is kept *aligned* with the working arrays and shrunk together with them when trials
    finish, so that each step is pure elementwise work (no gathers or scatters per step).
    """
    width, _, m = W0.shape
    trainable = s.train_second_layer
    out = {
        "status": np.full(m, NOT_CONVERGED, dtype=np.int8),
        "steps": np.zeros(m, dtype=np.int64),
        "halting_time": np.full(m, np.nan),
        "final_loss": np.full(m, np.nan),
    }
    stop_at = s.fixed_steps if s.fixed_steps is not None else s.max_steps
    curves = np.full((min(s.keep_curves, m), stop_at + 1), np.nan)
    W_final = np.empty_like(W0)
    a_final = None if a0 is None else np.empty_like(a0)

    # ---- pass 1: run to the final iterate; finished trials leave the working arrays (frozen there).
    # Tests compare squared ratios p_t²/p_0² with squared thresholds (one square root less per step).
    u, g = _forward(W0, a0, moments)
    p0_sq = _progress_sq(u, moments, width, trainable)
    out["initial_distance"] = np.sqrt(p0_sq)
    # below this the progress measure is rounding noise in u = Wᵀa: stop there as converged
    u_star_norm = float(np.linalg.norm(moments.u_star))
    if trainable:
        scale = _norm(W0) * _norm(a0) + 2.0 * u_star_norm
        floor = _ROUNDING_FLOOR * math.sqrt(moments.largest_eigenvalue) * scale
    else:
        floor = _ROUNDING_FLOOR * (_norm(W0) + out["initial_distance"] + u_star_norm / math.sqrt(width))
    floor_sq = floor * floor
    halt_sq, final_sq, diverge_sq = s.halt_threshold**2, s.final_tol**2, s.divergence_factor**2
    W = W0.copy()
    a = None if a0 is None else a0.copy()
    idx = np.arange(m)
    # a trial that starts on the minimiser set (p0 = 0) stops at t = 0 through the floor test
    inv_start = 1.0 / np.where(p0_sq > 0, p0_sq, 1.0)
    halt = np.full(m, np.nan)
    p_sq = p0_sq
    t = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        while True:
            if t > 0:
                u, g = _forward(W, a, moments)
                p_sq = _progress_sq(u, moments, width, trainable)
            ratio_sq = p_sq * inv_start
            if curves.shape[0]:
                kept = idx < curves.shape[0]
                curves[idx[kept], t] = np.sqrt(ratio_sq[kept])
            halt[(ratio_sq <= halt_sq) & np.isnan(halt)] = t
            diverged = ~(ratio_sq <= diverge_sq)  # also true for NaN
            converged = (ratio_sq <= final_sq) | (p_sq <= floor_sq)
            if s.fixed_steps is None:
                finished = diverged | converged
                if t >= stop_at:
                    finished[:] = True
            else:
                finished = diverged if t < stop_at else np.ones_like(diverged)
            if finished.any():
                done = idx[finished]
                out["steps"][done] = t
                out["status"][done] = np.where(
                    diverged[finished], DIVERGED, np.where(converged[finished], CONVERGED, NOT_CONVERGED)
                )
                # reaching the rounding floor before the relative tolerance counts as halting there
                halted = np.where(np.isnan(halt[finished]) & converged[finished], t, halt[finished])
                out["halting_time"][done] = np.where(diverged[finished], np.nan, halted)
                out["final_loss"][done] = moments.loss(u[:, finished].T)
                W_final[..., done] = W[..., finished]
                if a is not None:
                    a_final[:, done] = a[:, finished]
                alive = ~finished
                if not alive.any():
                    break
                idx, W, a, g, inv_start, floor_sq, halt = _keep(
                    alive, idx, W, a, g, inv_start, floor_sq, halt
                )
            _step(W, a, g, s.lr)
            t += 1
    distance2 = _sq_norm(W0 - W_final)
    if a0 is not None:
        distance2 += _sq_norm(a0 - a_final)
    out["distance"] = np.sqrt(distance2)

    # ---- pass 2: steps and angles over each trial's window (none for a diverged trial)
    if s.fixed_steps is not None:
        window = out["steps"].copy()
    else:
        halted = np.isfinite(out["halting_time"])
        window = np.where(halted, np.nan_to_num(out["halting_time"]), out["steps"]).astype(np.int64)
    window[out["status"] == DIVERGED] = 0
    for name in ("first_step", "path_length", "mean_as", "mean_ae", "mean_ae_printed"):
        out[name] = np.full(m, np.nan)
    idx = np.flatnonzero(window > 0)
    path = np.zeros(idx.size)
    angle_sum = np.zeros((3, idx.size))
    angle_count = np.zeros((3, idx.size), dtype=np.int64)
    if trainable:
        _pass2_trainable(W0, a0, W_final, a_final, moments, s, idx, window, out, path, angle_sum, angle_count)
    else:
        _pass2_fixed(W0, W_final, moments, s, idx, window, out, path, angle_sum, angle_count)
    out["mean_step"] = out["path_length"] / np.where(window > 0, window, np.nan)
    out["curves"] = curves
    return out


def _finish_window(done_mask, idx, out, path, angle_sum, angle_count) -> None:
    """Write the path length and mean angles of the trials whose window ended (``done_mask``)."""
    done = idx[done_mask]
    out["path_length"][done] = path[done_mask]
    means = angle_sum[:, done_mask] / angle_count[:, done_mask]  # 0/0 = NaN: no defined angle
    out["mean_as"][done], out["mean_ae"][done], out["mean_ae_printed"][done] = means


def _pass2_fixed(W0, W_final, moments, s, idx, window, out, path, angle_sum, angle_count) -> None:
    """Pass 2, fixed second layer: replay GD from ``W0`` over each window, measuring steps and angles.

    The iterate is carried as its displacements ``W − W_0`` and ``W − W_f`` (one stacked array, both moved by
    the same step ``−η 1 gᵀ``), so that ``‖W − W_0‖`` and ``‖W − W_f‖`` cost one reduction;
    ``1ᵀW = 1ᵀW_0 + 1ᵀ(W − W_0)`` and ``⟨W − V, 1gᵀ⟩ = (1ᵀ(W − V))·g``.
    """
    width = W0.shape[0]
    start_u = W0[..., idx].sum(axis=0)
    end_shift = W_final[..., idx].sum(axis=0) - start_u  # 1ᵀ(W_f − W_0)
    # displacements from the start (row 0) and from the final iterate (row 1), moved together
    DE = np.stack([np.zeros_like(W0[..., idx]), W0[..., idx] - W_final[..., idx]])
    reach, win = out["distance"][idx], window[idx]
    inner, denominator = np.empty((3, idx.size)), np.empty((3, idx.size))
    t = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        while idx.size:
            moved = DE[0].sum(axis=0)  # 1ᵀ(W − W_0)
            g = _gradient_u(start_u + moved, moments)
            grad_norm = np.sqrt(_dot_d(g, g) * width)
            if t == 0:
                out["first_step"][idx] = s.lr * grad_norm
            else:  # A_s is undefined at t = 0, so every angle is averaged over t = 1..T-1
                inner[0] = _dot_d(moved, g)
                inner[1] = _dot_d(moved - end_shift, g)
                inner[2] = inner[1]
                flat = DE.reshape(2, -1, idx.size)
                np.einsum("aim,aim->am", flat, flat, out=denominator[:2])
                np.sqrt(denominator[:2], out=denominator[:2])
                denominator[2] = reach
                denominator *= grad_norm
                _accumulate_angles(angle_sum, angle_count, inner, denominator)
            path += s.lr * grad_norm
            t += 1
            alive = win > t
            if not alive.all():
                _finish_window(~alive, idx, out, path, angle_sum, angle_count)
                idx, DE, g, start_u, end_shift, reach, win, path = _keep(
                    alive, idx, DE, g, start_u, end_shift, reach, win, path
                )
                angle_sum, angle_count = angle_sum[:, alive], angle_count[:, alive]
                inner, denominator = np.empty((3, idx.size)), np.empty((3, idx.size))
            if idx.size:
                DE -= (s.lr * g)[None, None, :, :]


def _pass2_trainable(W0, a0, W_final, a_final, moments, s, idx, window, out, path, angle_sum, angle_count):
    """Pass 2, trainable second layer: replay GD from ``(W0, a0)`` over each window (general gradient)."""
    W, a, start_W, start_a, end_W, end_a, reach, win = _keep(
        idx, W0, a0, W0, a0, W_final, a_final, out["distance"], window
    )
    t = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        while idx.size:
            _, g = _forward(W, a, moments)
            if t == 0:
                grad_norm = np.sqrt(_grad_sq_norm(W, a, g))
                out["first_step"][idx] = s.lr * grad_norm
            else:
                grad_norm, inner0, norm0, inner_f, norm_f = _angle_terms(
                    W, a, g, start_W, end_W, start_a, end_a
                )
                _accumulate_angles(
                    angle_sum,
                    angle_count,
                    np.stack([inner0, inner_f, inner_f]),
                    np.stack([norm0, norm_f, reach]) * grad_norm,
                )
            path += s.lr * grad_norm
            t += 1
            alive = win > t
            if not alive.all():
                _finish_window(~alive, idx, out, path, angle_sum, angle_count)
                idx, W, a, g, start_W, start_a, end_W, end_a, reach, win, path = _keep(
                    alive, idx, W, a, g, start_W, start_a, end_W, end_a, reach, win, path
                )
                angle_sum, angle_count = angle_sum[:, alive], angle_count[:, alive]
            if idx.size:
                _step(W, a, g, s.lr)


def _grad_sq_norm(W, a, g) -> np.ndarray:
    """``‖∇F‖²`` per trial: ``‖a gᵀ‖² = ‖a‖²‖g‖²`` (a = 1 when fixed), plus ``‖W g‖²`` when a is trained."""
    g2 = _dot_d(g, g)
    if a is None:
        return W.shape[0] * g2
    grad_a = (W * g[None, :, :]).sum(axis=1)
    return np.einsum("km,km->m", a, a) * g2 + np.einsum("km,km->m", grad_a, grad_a)


def _angle_terms(W, a, g, W0, Wf, a0, af):
    """Per trial ``‖∇F‖, ⟨θ−θ0, ∇F⟩, ‖θ−θ0‖, ⟨θ−θf, ∇F⟩, ‖θ−θf‖`` (``∇_W F = a gᵀ``, ``∇_a F = W g``)."""
    d0 = W - W0
    df = W - Wf
    grad_a = (W * g[None, :, :]).sum(axis=1)
    grad_norm = np.sqrt(_grad_sq_norm(W, a, g))
    da0, daf = a - a0, a - af
    inner0 = ((a[:, None, :] * d0).sum(axis=0) * g).sum(axis=0) + (da0 * grad_a).sum(axis=0)
    inner_f = ((a[:, None, :] * df).sum(axis=0) * g).sum(axis=0) + (daf * grad_a).sum(axis=0)
    norm0 = np.sqrt(_sq_norm(d0) + _sq_norm(da0))
    norm_f = np.sqrt(_sq_norm(df) + _sq_norm(daf))
    return grad_norm, inner0, norm0, inner_f, norm_f


def _accumulate_angles(total, count, inner, denominator) -> None:
    """Add ``arccos(inner/denominator)`` (arrays of shape (3, m); ``inner`` is overwritten) where defined.

    An angle is defined where the denominator is positive (not where a vector is zero; pass 2 never sees
    infinities, diverged trials have no window). The ratio is clipped to ``[−1, 1]``: for a true cosine
    only rounding exceeds it; the paper's printed ``A_e`` is not a cosine and can exceed it.
    """
    defined = denominator > 0
    np.divide(inner, denominator, out=inner)  # 0/0 and x/0 where undefined: masked below
    np.clip(inner, -1.0, 1.0, out=inner)
    np.arccos(inner, out=inner)
    total += np.where(defined, inner, 0.0)
    count += defined


# --------------------------------------------------------------------------------------------------
# public drivers


def _settings(
    lr, train_second_layer, eps, final_tol, max_steps, fixed_steps, divergence_factor, keep_curves
) -> _Settings:
    lr = check_positive("lr", lr)
    eps = check_positive("eps", eps)
    if eps >= 1.0:
        raise InputError(f"eps is a relative tolerance and must be < 1, got {eps}")
    final_tol = min(1e-8, 1e-5 * eps) if final_tol is None else check_positive("final_tol", final_tol)
    if final_tol > eps:
        raise InputError(f"final_tol ({final_tol}) must not exceed eps ({eps})")
    max_steps = check_int("max_steps", max_steps)
    if fixed_steps is not None:
        fixed_steps = check_int("fixed_steps", fixed_steps)
    divergence_factor = check_positive("divergence_factor", divergence_factor)
    if divergence_factor <= 1.0:
        raise InputError(f"divergence_factor must exceed 1, got {divergence_factor}")
    keep_curves = check_int("keep_curves", keep_curves, minimum=0)
    return _Settings(
        lr=lr,
        train_second_layer=bool(train_second_layer),
        eps=eps,
        final_tol=final_tol,
        halt_threshold=eps ** (1.0 - HALTING_TOLERANCE),
        max_steps=max_steps,
        fixed_steps=fixed_steps,
        divergence_factor=divergence_factor,
        keep_curves=int(keep_curves),
    )


def _as_moments(data: RegressionData | LossMoments) -> LossMoments:
    if isinstance(data, LossMoments):
        return data
    if isinstance(data, RegressionData):
        return LossMoments.from_data(data)
    raise InputError(
        f"data must be a RegressionData (see overparam_theory.datasets), got {type(data).__name__}"
    )


def simulate_width(
    W0: np.ndarray,
    data: RegressionData | LossMoments,
    lr: float,
    *,
    a0: np.ndarray | None = None,
    train_second_layer: bool = False,
    eps: float = 1e-3,
    final_tol: float | None = None,
    max_steps: int = 10_000,
    fixed_steps: int | None = None,
    divergence_factor: float = 1e6,
    chunk_elements: int = 65_536,
    keep_curves: int = 0,
) -> WidthMonteCarlo:
    """GD from each of the initial weights ``W0`` (shape ``(n_trials, K, d)``), vectorised over trials.

    ``a0`` (``(n_trials, K)``) is the initial second layer when ``train_second_layer`` (default ones).
    ``eps``: relative halting tolerance; ``final_tol``: relative tolerance of the final iterate (default
    ``min(1e-8, 1e-5·eps)``); ``max_steps``: the cap; ``fixed_steps``: run exactly this many steps per
    trial (no early stop; diverged trials still stop) and average steps/angles over all of them — the
    benchmark's mode.  ``chunk_elements``: weights per chunk (cache size).  See the module docstring for
    every output.
    """
    s = _settings(
        lr, train_second_layer, eps, final_tol, max_steps, fixed_steps, divergence_factor, keep_curves
    )
    moments = _as_moments(data)
    W0 = np.asarray(W0, dtype=np.float64)
    if W0.ndim != 3 or min(W0.shape) < 1:
        raise InputError(f"initial weights must have shape (n_trials, width, input_dim), got {W0.shape}")
    n_trials, width, input_dim = W0.shape
    if input_dim != moments.input_dim:
        raise InputError(f"initial weights have input_dim {input_dim} but the data has {moments.input_dim}")
    if not np.all(np.isfinite(W0)):
        raise InputError("initial weights must be finite")
    if s.train_second_layer:
        a0 = np.ones((n_trials, width)) if a0 is None else np.asarray(a0, dtype=np.float64)
        if a0.shape != (n_trials, width):
            raise InputError(f"initial second layer must have shape {(n_trials, width)}, got {a0.shape}")
        if not np.all(np.isfinite(a0)):
            raise InputError("initial second layer must be finite")
    elif a0 is not None:
        raise InputError("a0 is only used with train_second_layer=True")
    chunk = max(
        1, check_int("chunk_elements", chunk_elements) // (width * (input_dim + s.train_second_layer))
    )
    parts = []
    for start in range(0, n_trials, chunk):
        stop = min(n_trials, start + chunk)
        chunk_settings = s if start == 0 else _replace_curves(s)
        W_chunk = np.ascontiguousarray(W0[start:stop].transpose(1, 2, 0))
        a_chunk = None if a0 is None else np.ascontiguousarray(a0[start:stop].T)
        parts.append(_simulate_chunk(W_chunk, a_chunk, moments, chunk_settings))
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0] if key != "curves"}
    curves = parts[0]["curves"]
    if curves.shape[0]:
        filled = np.flatnonzero(np.isfinite(curves).any(axis=0))
        curves = curves[:, : (filled[-1] + 1 if filled.size else 0)]
    else:
        curves = None
    return WidthMonteCarlo(
        width=width, lr=s.lr, train_second_layer=s.train_second_layer, curves=curves, **merged
    )


def _replace_curves(s: _Settings) -> _Settings:
    from dataclasses import replace

    return replace(s, keep_curves=0)


def width_seed_sequence(seed: int, width: int, stream: int = 0) -> np.random.SeedSequence:
    """Random stream of width K (``stream`` 1: its second layer): ``SeedSequence(seed, (K, stream))``."""
    return np.random.SeedSequence(int(seed), spawn_key=(int(width), int(stream)))


LR_SCALINGS = ("none", "inverse-width")
SECOND_LAYER_INITS = ("ones", "law")


def run_monte_carlo(
    data: RegressionData,
    widths: Sequence[int],
    *,
    lr: float = 0.1,
    init: str = "ball",
    scale: float = 0.5,
    n_trials: int = 10_000,
    seed: int = 0,
    eps: float = 1e-3,
    lr_scaling: str = "none",
    train_second_layer: bool = False,
    second_layer_init: str = "ones",
    final_tol: float | None = None,
    max_steps: int = 10_000,
    fixed_steps: int | None = None,
    divergence_factor: float = 1e6,
    chunk_elements: int = 65_536,
    keep_curves: int = 0,
    progress=None,
) -> MonteCarloResult:
    """Monte Carlo over ``n_trials`` initialisations for every width in ``widths``.

    ``W0`` is drawn from ``init`` (``ball`` / ``cube`` / ``gaussian``, see :mod:`overparam_theory.init_laws`)
    with ``scale`` (R or σ) in the full weight space ``R^{K·d}``.  ``lr_scaling="inverse-width"`` uses
    ``η = lr/K``.  ``second_layer_init`` (trainable second layer only): ``ones`` or ``law`` (drawn from
    the same law and scale in ``R^K``).  ``progress``, if given, is called with each width when it is done.
    Same ``seed`` → identical numbers.
    """
    if not isinstance(data, RegressionData):
        raise InputError(f"data must be a RegressionData, got {type(data).__name__}")
    moments = LossMoments.from_data(data)
    if isinstance(widths, int | np.integer):
        widths = [widths]
    widths = [check_int("width", w) for w in widths]
    if not widths:
        raise InputError("no widths given")
    if len(set(widths)) != len(widths):
        raise InputError(f"widths must be distinct, got {widths}")
    n_trials = check_int("n_trials", n_trials)
    seed = check_int("seed", seed, minimum=0)
    if lr_scaling not in LR_SCALINGS:
        raise InputError(f"unknown lr scaling {lr_scaling!r}; valid: {', '.join(LR_SCALINGS)}")
    if second_layer_init not in SECOND_LAYER_INITS:
        raise InputError(
            f"unknown second-layer init {second_layer_init!r}; valid: {', '.join(SECOND_LAYER_INITS)}"
        )
    law = get_init_law(init, scale)
    lr = check_positive("lr", lr)
    # validate the remaining settings once, before any work
    _settings(lr, train_second_layer, eps, final_tol, max_steps, fixed_steps, divergence_factor, keep_curves)
    results = []
    for width in widths:
        rng = np.random.default_rng(width_seed_sequence(seed, width))
        W0 = sample_init(law, law.scale, n_trials, width, moments.input_dim, rng)
        a0 = None
        if train_second_layer:
            if second_layer_init == "ones":
                a0 = np.ones((n_trials, width))
            else:
                rng_a = np.random.default_rng(width_seed_sequence(seed, width, stream=1))
                a0 = sample_init(law, law.scale, n_trials, width, 1, rng_a)[:, :, 0]
        width_lr = lr / width if lr_scaling == "inverse-width" else lr
        results.append(
            simulate_width(
                W0,
                moments,
                width_lr,
                a0=a0,
                train_second_layer=train_second_layer,
                eps=eps,
                final_tol=final_tol,
                max_steps=max_steps,
                fixed_steps=fixed_steps,
                divergence_factor=divergence_factor,
                chunk_elements=chunk_elements,
                keep_curves=keep_curves,
            )
        )
        if progress is not None:
            progress(width)
    options = {
        "widths": widths,
        "lr": lr,
        "init": law.name,
        "scale": law.scale,
        "n_trials": n_trials,
        "seed": int(seed),
        "eps": float(eps),
        "lr_scaling": lr_scaling,
        "train_second_layer": bool(train_second_layer),
        "second_layer_init": second_layer_init if train_second_layer else None,
        "max_steps": int(max_steps),
        "fixed_steps": fixed_steps,
        "input_dim": moments.input_dim,
        "data": data.name,
    }
    return MonteCarloResult(widths=tuple(results), options=options)


# --------------------------------------------------------------------------------------------------
# the brute-force reference: one trial, plain loops, gradient from per-sample residuals


def reference_trial(
    W0: np.ndarray,
    data: RegressionData,
    lr: float,
    *,
    a0: np.ndarray | None = None,
    train_second_layer: bool = False,
    eps: float = 1e-3,
    final_tol: float | None = None,
    max_steps: int = 10_000,
    fixed_steps: int | None = None,
    divergence_factor: float = 1e6,
) -> dict:
    """The same simulation and metrics for ONE trial (``W0`` of shape ``(K, d)``) with plain per-step code.

    Independent of the vectorised path where it matters: the gradient comes from the per-sample residuals
    ``r_i = ŷ_i − y_i`` (``∇_W F = (2/n) Σ_i r_i a x_iᵀ``, ``∇_a F = (2/n) Σ_i r_i W x_i``), the minimiser
    and the projection from an SVD of ``X``, and every norm and inner product from materialised arrays.
    Slow by design; used by the tests and the benchmark.  Returns a dict with the keys of
    :class:`WidthMonteCarlo`'s per-trial arrays (scalars).
    """
    s = _settings(lr, train_second_layer, eps, final_tol, max_steps, fixed_steps, divergence_factor, 0)
    X = data.design_matrix
    y = data.y
    n = X.shape[0]
    W0 = np.array(W0, dtype=np.float64)
    width, _ = W0.shape
    trainable = s.train_second_layer
    if trainable:
        a_init = np.ones(width) if a0 is None else np.array(a0, dtype=np.float64)
    else:
        a_init = np.ones(width)
    _, singular, vt = np.linalg.svd(X, full_matrices=False)
    rank = int(np.sum(singular > singular.max() * max(X.shape) * np.finfo(float).eps))
    row_space = vt[:rank].T  # basis of range(XᵀX)
    u_star = np.linalg.lstsq(X, y, rcond=None)[0]
    lam_max = float(singular.max() ** 2 / n)

    def loss_and_grads(W, a):
        residual = X @ (W.T @ a) - y
        loss = float(np.mean(residual**2))
        grad_W = np.zeros_like(W)
        grad_a = np.zeros_like(a)
        for i in range(n):
            grad_W += (2.0 / n) * residual[i] * np.outer(a, X[i])
            grad_a += (2.0 / n) * residual[i] * (W @ X[i])
        return loss, grad_W, (grad_a if trainable else None)

    def progress_exact(W, a):
        # the loss gap from the error u − u* directly: F − F* would cancel badly near the minimum
        e = W.T @ a - u_star
        if trainable:
            return math.sqrt(max(float(e @ (X.T @ (X @ e)) / n), 0.0))
        return float(np.linalg.norm(row_space.T @ e)) / math.sqrt(width)

    W, a = W0.copy(), a_init.copy()
    p0 = progress_exact(W, a)
    u_star_norm = float(np.linalg.norm(u_star))
    if trainable:
        floor = (
            _ROUNDING_FLOOR
            * math.sqrt(lam_max)
            * (np.linalg.norm(W0) * np.linalg.norm(a_init) + 2 * u_star_norm)
        )
    else:
        floor = _ROUNDING_FLOOR * (np.linalg.norm(W0) + p0 + u_star_norm / math.sqrt(width))
    halting = math.nan
    status = NOT_CONVERGED
    stop_at = s.fixed_steps if s.fixed_steps is not None else s.max_steps
    t = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        while True:
            loss, grad_W, grad_a = loss_and_grads(W, a)
            p = progress_exact(W, a)
            ratio = p / p0 if p0 > 0 else (math.inf if p > 0 else 0.0)
            if math.isnan(halting) and ratio <= s.halt_threshold:
                halting = float(t)
            diverged = not (math.isfinite(ratio) and math.isfinite(p)) or ratio > s.divergence_factor
            converged = (ratio <= s.final_tol or p <= floor) and not diverged
            if diverged:
                status = DIVERGED
                break
            if (converged and s.fixed_steps is None) or t >= stop_at:
                status = CONVERGED if converged else NOT_CONVERGED
                if converged and math.isnan(halting):  # at the rounding floor before reaching eps
                    halting = float(t)
                break
            W = W - s.lr * grad_W
            if trainable:
                a = a - s.lr * grad_a
            t += 1
    steps, W_final, a_final, final_loss = t, W, a, loss
    if status == DIVERGED:
        halting = math.nan
    distance = math.sqrt(
        np.sum((W0 - W_final) ** 2) + (np.sum((a_init - a_final) ** 2) if trainable else 0.0)
    )

    window = steps if (s.fixed_steps is not None or math.isnan(halting)) else int(halting)
    if status == DIVERGED:  # steps and angles along a diverging path are not reported
        window = 0
    W, a = W0.copy(), a_init.copy()
    path, first_step = 0.0, math.nan
    angle_sums = {"as": [], "ae": [], "aep": []}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for t in range(window):
            _, grad_W, grad_a = loss_and_grads(W, a)
            flat_grad = np.concatenate([grad_W.ravel(), grad_a if trainable else []])
            flat_now = np.concatenate([W.ravel(), a if trainable else []])
            flat_start = np.concatenate([W0.ravel(), a_init if trainable else []])
            flat_end = np.concatenate([W_final.ravel(), a_final if trainable else []])
            grad_norm = float(np.linalg.norm(flat_grad))
            step = s.lr * grad_norm
            path += step
            if t == 0:
                first_step = step
            for key, other, denominator_norm in (
                ("as", flat_start, None),
                ("ae", flat_end, None),
                ("aep", flat_end, distance),
            ):
                diff = flat_now - other
                norm = float(np.linalg.norm(diff)) if denominator_norm is None else denominator_norm
                denominator = norm * grad_norm
                if t >= 1 and denominator > 0 and math.isfinite(denominator):
                    cosine = min(1.0, max(-1.0, float(diff @ flat_grad) / denominator))
                    angle_sums[key].append(math.acos(cosine))
            W = W - s.lr * grad_W
            if trainable:
                a = a - s.lr * grad_a

    def mean(values):
        return sum(values) / len(values) if values else math.nan

    return {
        "status": status,
        "steps": steps,
        "distance": distance,
        "initial_distance": p0,
        "halting_time": halting,
        "first_step": first_step,
        "path_length": path if window > 0 else math.nan,
        "mean_step": path / window if window > 0 else math.nan,
        "mean_as": mean(angle_sums["as"]),
        "mean_ae": mean(angle_sums["ae"]),
        "mean_ae_printed": mean(angle_sums["aep"]),
        "final_loss": final_loss,
    }
