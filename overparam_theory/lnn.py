"""Exact gradient-descent results for the width-K linear network of the paper's Appendix B, every regime.

Conventions (docs/theory.md): ``F(W) = (1/n) sum_i (yhat_i - y_i)**2`` (no factor 1/2), GD
``W_{t+1} = W_t - lr grad F(W_t)``; scalar input ``yhat = (sum_k w_k) x``; vector input
``yhat = 1^T W x`` with ``W in R^(K x d)``; the second layer is fixed to ones.

Scalar input (``m2 = mean x**2``, ``C = sum x y / sum x**2``, ``s = 1^T w``):

* ``grad F = 2 m2 (s - C) 1``; Hessian ``2 m2 1 1^T`` with eigenvalues ``2 m2 K`` (once) and 0 (K-1 times);
* GD moves only along ``1``: ``s_t - C = rho**t (s_0 - C)`` with ``rho = 1 - 2 lr K m2``; the distance to the
  minimiser set is ``|rho|**t D0`` with ``D0 = |C - s_0| / sqrt(K)``; the limit is the orthogonal
  projection of ``w_0`` on the hyperplane ``1^T w = C``;
* converges iff ``|rho| < 1`` iff ``K < 1 / (lr m2)`` (``rho = -1`` at equality: oscillation);
* step t has length ``(1 - rho) |rho|**t D0`` (``1 - rho = 2 lr K m2 > 0``); path length to the limit
  ``(1 - rho) / (1 - |rho|) D0`` (= D0 for ``rho >= 0``; longer when GD overshoots, ``rho < 0``);
* halting time (relative tolerance eps, first t with distance <= eps D0):
  ``T = ceil(log eps / log |rho|)`` (``rho = 0``: 1 step; ``D0 = 0``: 0 steps), the same for every init.

Vector input (``Sigma_xx`` with positive eigenvalues ``lambda_j``, ``v = W^T 1``): ``grad_W F = 1 g^T`` with
``g = 2 (Sigma_xx v - Sigma_xy)``; ``v_t - v*`` contracts mode-wise by ``rho_j = 1 - 2 lr K lambda_j``;
null-space components never move. Converges iff ``K < 1 / (lr lambda_max)``. The halting time depends on
the init (a mixture of rates) and lies between the single-rate times of the fastest and slowest mode.

Width acts as a learning-rate multiplier: the only moving direction sees the step ``2 lr K lambda``, so
``lr = lr0 / K`` (:func:`scaled_lr`) makes contraction, halting time and path shape width-independent.

Angles (scalar input, averaged over ``t = 1 .. T-1`` with T the halting time; ``A_s`` is undefined at
t = 0): ``A_s(t) = angle(grad F(W_t), W_t - W_0)`` is pi for ``rho in (0, 1)`` and alternates 0 (odd t) /
pi (even t) for ``rho < 0``; ``A_e(t) = angle(grad F(W_t), W_t - W*)`` with W* the GD limit is exactly 0;
the paper's printed A_e (normalised by ``||W* - W_0||``) evaluates to ``arccos(|rho|**t)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from overparam_theory.checks import check_int
from overparam_theory.datasets import RegressionData
from overparam_theory.errors import InputError
from overparam_theory.lnn_distance import (
    DirectDistance,
    DistanceScaling,
    direct_distance_expectation,
    direct_distance_scaling,
    expected_direct_distance,
    large_width_limit,
    paper_condition_holds,
    paper_direct_distance,
)
from overparam_theory.lnn_minimiser import (
    Minimiser,
    check_data,
    check_eps,
    check_lr,
    check_width,
    minimiser,
)

__all__ = [
    "Minimiser",
    "minimiser",
    "LNNDynamics",
    "lnn_dynamics",
    "divergence_width",
    "fastest_width",
    "scaled_lr",
    "expected_direct_distance",
    "direct_distance_expectation",
    "DirectDistance",
    "paper_direct_distance",
    "paper_condition_holds",
    "large_width_limit",
    "direct_distance_scaling",
    "DistanceScaling",
    "expected_first_step",
    "expected_path_length",
    "HALTING_TOLERANCE",
]

#: Relative slack in log space when deciding ``dist_t <= eps * D0``: without it, exact-integer ratios
#: such as ``rho = 0.1, eps = 1e-3`` (T = 3) could be pushed to the next integer by rounding.
HALTING_TOLERANCE = 1e-12


def _log_abs_rate(step: float) -> float:
    """``log |1 - step|`` accurately for ``step = 2 lr K lambda > 0`` (``-inf`` when the rate is 0)."""
    if step < 1.0:
        return math.log1p(-step)
    if step == 1.0:
        return -math.inf
    return math.log1p(step - 2.0) if step < 2.0 else math.log(step - 1.0)


def _single_rate_halting(log_rate: float, eps: float) -> int | None:
    """Smallest t >= 1 with ``t log|rho| <= log(eps) (1 - tol)``; None if ``|rho| >= 1``."""
    if log_rate == -math.inf:
        return 1
    if log_rate >= 0.0:
        return None
    ratio = math.log(eps) / log_rate
    return max(1, math.ceil(ratio * (1.0 - HALTING_TOLERANCE)))


@dataclass(frozen=True, eq=False)
class LNNDynamics:
    """Exact GD dynamics of the width-``width`` linear network on one data set at learning rate ``lr``.

    Build it with :func:`lnn_dynamics`. Multi-mode data (vector input with more than one positive
    eigenvalue of ``Sigma_xx``) supports the mode-wise quantities (``rates``, ``contraction``,
    ``converges``, ``halting_time_bounds``, ``halting_time_for``, ``trajectory``); the single-rate
    quantities (``rho``, ``halting_time``, step/path factors, angles) raise :class:`InputError` there.
    """

    width: int
    lr: float
    minimiser: Minimiser

    # -- spectra and rates -------------------------------------------------------------------------
    @property
    def eigenvalues(self) -> np.ndarray:
        """Positive eigenvalues ``lambda_j`` of ``Sigma_xx`` (scalar input: ``[m2]``), descending."""
        return self.minimiser.eigenvalues

    @property
    def hessian_eigenvalues(self) -> np.ndarray:
        """All ``K d`` eigenvalues of the Hessian ``2 (1 1^T) kron Sigma_xx``: ``2 K lambda_j``, then 0s."""
        n_weights = self.width * self.minimiser.input_dim
        out = np.zeros(n_weights)
        out[: self.minimiser.rank] = 2.0 * self.width * self.eigenvalues
        return out

    @property
    def steps(self) -> np.ndarray:
        """``2 lr K lambda_j``: the fraction of the remaining distance removed per step, per mode."""
        return 2.0 * self.lr * self.width * self.eigenvalues

    @property
    def rates(self) -> np.ndarray:
        """Per-mode contraction rates ``rho_j = 1 - 2 lr K lambda_j`` (signed)."""
        return 1.0 - self.steps

    @property
    def contraction(self) -> float:
        """``max_j |rho_j|``: the worst-case distance ratio per step (convergence iff < 1)."""
        return float(np.max(np.abs(self.rates)))

    @property
    def converges(self) -> bool:
        """True iff every excited mode contracts: ``K < 1 / (lr lambda_max)`` (``|rho| = 1`` oscillates)."""
        return self.contraction < 1.0

    @property
    def effective_lr(self) -> float:
        """``lr K``: the learning rate seen by ``v = W^T 1`` (width multiplies the learning rate)."""
        return self.lr * self.width

    @property
    def is_single_rate(self) -> bool:
        return self.minimiser.rank == 1

    def _single(self, what: str) -> None:
        if not self.is_single_rate:
            raise InputError(
                f"{what} needs a single rate (scalar input or rank-1 Sigma_xx); this data has "
                f"{self.minimiser.rank} modes: use rates, halting_time_bounds or halting_time_for"
            )

    @property
    def rho(self) -> float:
        """``rho = 1 - 2 lr K m2`` (single rate only)."""
        self._single("rho")
        return float(self.rates[0])

    @property
    def step_factor(self) -> float:
        """``||Delta_t|| / dist_t = 1 - rho = 2 lr K m2``: first step ``(1 - rho) D0`` (single rate)."""
        self._single("step_factor")
        return float(self.steps[0])

    @property
    def path_factor(self) -> float:
        """Path length to the limit over D0: ``(1 - rho) / (1 - |rho|)``; ``inf`` if GD does not converge."""
        self._single("path_factor")
        if not self.converges:
            return math.inf
        return float(self.steps[0] / (1.0 - abs(self.rates[0])))

    # -- halting time --------------------------------------------------------------------------------
    def halting_time(self, eps: float) -> int | None:
        """Steps until ``dist <= eps D0``: ``ceil(log eps / log|rho|)``, >= 1; None if it never halts.

        Init-independent for a single rate (an init already on the minimiser set, D0 = 0, halts at 0:
        use :meth:`halting_time_for`). A relative slack :data:`HALTING_TOLERANCE` absorbs rounding.
        """
        eps = check_eps(eps)
        self._single("halting_time")
        return _single_rate_halting(_log_abs_rate(float(self.steps[0])), eps)

    def halting_time_bounds(self, eps: float) -> tuple[int, int | None]:
        """``(lower, upper)`` over inits exciting every mode: single-rate times of fastest/slowest mode."""
        eps = check_eps(eps)
        logs = [_log_abs_rate(float(s)) for s in self.steps]
        fastest = _single_rate_halting(min(logs), eps)
        slowest = _single_rate_halting(max(logs), eps)
        return (fastest if fastest is not None else 0, slowest)  # fastest is None only if all diverge

    def halting_time_for(self, W0: np.ndarray, eps: float) -> int | None:
        """Exact halting time from one init ``W0`` ((K,) or (K, d)): first t with dist_t <= eps D0.

        ``dist_t**2 = sum_j rho_j**(2t) e_j**2 / K`` with ``e = U_r^T (v* - W0^T 1)``; solved by bisection
        between the bounds of the excited modes. 0 if W0 is on the minimiser set; None if an excited mode
        does not contract. Exact arithmetic: a mode with ``e_j = 0`` stays unexcited.
        """
        from scipy.special import logsumexp  # here, not at import: the CLI's start-up time

        eps = check_eps(eps)
        W0 = np.asarray(W0, dtype=np.float64)
        self._check_weights(W0)
        e = np.atleast_1d(self.minimiser.residual(W0))
        excited = e != 0.0
        if not np.any(excited):
            return 0
        logs = np.array([_log_abs_rate(float(s)) for s in self.steps])[excited]
        log_weights = np.log(e[excited] ** 2)
        if np.max(logs) >= 0.0:
            return None
        target = 2.0 * math.log(eps) * (1.0 - HALTING_TOLERANCE) + logsumexp(log_weights)

        def halted(t: int) -> bool:
            with np.errstate(invalid="ignore"):
                exponents = np.where(np.isneginf(logs), -np.inf, 2.0 * t * logs)
            return bool(logsumexp(exponents + log_weights) <= target)

        low = _single_rate_halting(float(np.min(logs)), eps) or 1
        high = _single_rate_halting(float(np.max(logs)), eps)
        low = max(1, low - 1)
        while low < high:
            mid = (low + high) // 2
            if halted(mid):
                high = mid
            else:
                low = mid + 1
        return high

    def _check_weights(self, W: np.ndarray) -> None:
        expected = (self.width,) if (self.minimiser.is_scalar and W.ndim == 1) else None
        if expected is None and W.shape[-2:] != (self.width, self.minimiser.input_dim):
            raise InputError(
                f"weights must have shape ({self.width}, {self.minimiser.input_dim}), got {W.shape}"
            )
        if expected is not None and W.shape != expected:
            raise InputError(f"weights must have shape ({self.width},), got {W.shape}")

    # -- exact trajectory, distances, steps ------------------------------------------------------------
    def trajectory(self, W0: np.ndarray, steps: int) -> np.ndarray:
        """Exact iterates ``W_0 .. W_steps`` (shape ``(steps + 1, *W0.shape)``) from the closed form.

        ``W_t = W_0 + 1 (U_r diag(1 - rho_j**t) e)^T / K`` with ``e = U_r^T (v* - W_0^T 1)``.
        """
        steps = check_int("steps", steps, minimum=0)
        W0 = np.asarray(W0, dtype=np.float64)
        self._check_weights(W0)
        e = np.atleast_1d(self.minimiser.residual(W0))
        t = np.arange(steps + 1)[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            moved = (1.0 - self.rates[None, :] ** t) * e[None, :]  # (steps+1, r)
        shift = moved @ self.minimiser.range_basis.T / self.width  # (steps+1, d)
        Wb = W0[:, None] if W0.ndim == 1 else W0
        out = Wb[None, :, :] + shift[:, None, :]
        return out[..., 0] if W0.ndim == 1 else out

    def distance(self, t: int | np.ndarray, d0: float = 1.0) -> float | np.ndarray:
        """``|rho|**t d0``: distance to the minimiser set after t steps (single rate)."""
        self._single("distance")
        t = np.asarray(t, dtype=np.float64)
        with np.errstate(over="ignore"):
            out = d0 * np.abs(self.rates[0]) ** t
        return float(out) if out.ndim == 0 else out

    def step_length(self, t: int | np.ndarray, d0: float = 1.0) -> float | np.ndarray:
        """``||W_{t+1} - W_t|| = (1 - rho) |rho|**t d0`` (single rate)."""
        return self.step_factor * self.distance(t, d0)

    def path_length(self, d0: float = 1.0, eps: float | None = None) -> float:
        """Path length ``sum_t ||Delta_t||``: to the limit (eps None) or over the first T(eps) steps.

        To the limit: ``(1 - rho)/(1 - |rho|) d0``; truncated: ``(1 - rho)(1 - |rho|**T)/(1 - |rho|) d0``.
        ``inf`` when GD does not converge (single rate).
        """
        self._single("path_length")
        if eps is None:
            return self.path_factor * d0
        T = self.halting_time(eps)
        if T is None:
            return math.inf
        a = abs(float(self.rates[0]))
        return float(self.steps[0] * (1.0 - a**T) / (1.0 - a) * d0)

    # -- angles (single rate) --------------------------------------------------------------------------
    def angle_s(self, t: int) -> float:
        """``A_s(t) = angle(grad F(W_t), W_t - W_0)``: pi, 0 or NaN (t = 0, or a zero vector).

        ``W_t - W_0 ∝ (rho**t - 1)`` and ``grad F(W_t) ∝ rho**t`` along ``1`` (same positive factor
        ``s_0 - C`` up to sign), so the angle is pi when ``(rho**t - 1) rho**t < 0`` and 0 when > 0.
        """
        self._single("angle_s")
        rho = float(self.rates[0])
        if t <= 0 or rho == 0.0:
            return math.nan
        sign_pow = 1 if (rho > 0 or t % 2 == 0) else -1
        if abs(rho) < 1.0:
            sign_move = -1
        elif abs(rho) == 1.0:
            sign_move = 0 if sign_pow == 1 else -1
        else:
            sign_move = sign_pow
        product = sign_pow * sign_move
        return math.nan if product == 0 else (math.pi if product < 0 else 0.0)

    def angle_e(self, t: int) -> float:
        """``A_e(t) = angle(grad F(W_t), W_t - W*)``, W* the GD limit: exactly 0 (NaN once grad F = 0)."""
        self._single("angle_e")
        return math.nan if (t >= 1 and self.rates[0] == 0.0) else 0.0

    def paper_angle_e(self, t: int) -> float:
        """The paper's A_e (normalised by ``||W* - W_0||``): ``arccos(|rho|**t)`` (NaN if >1 or 0/0)."""
        self._single("paper_angle_e")
        rho = abs(float(self.rates[0]))
        if t >= 1 and rho == 0.0:
            return math.nan
        value = rho**t if rho <= 1.0 else math.inf
        return math.acos(value) if value <= 1.0 else math.nan

    def angle_sequences(self, eps: float) -> dict[str, np.ndarray]:
        """``t``, ``A_s``, ``A_e``, ``paper_A_e`` for ``t = 1 .. T-1`` (T the halting time; empty if None)."""
        T = self.halting_time(eps)
        ts = np.arange(1, T) if T is not None else np.arange(1, 1)
        return {
            "t": ts,
            "A_s": np.array([self.angle_s(int(t)) for t in ts]),
            "A_e": np.array([self.angle_e(int(t)) for t in ts]),
            "paper_A_e": np.array([self.paper_angle_e(int(t)) for t in ts]),
        }

    def mean_angles(self, eps: float) -> dict[str, float]:
        """Means over ``t = 1 .. T-1`` of the defined values (NaN if none).

        Convention shared with the Monte Carlo: steps are taken at t = 0 .. T-1, A_s is undefined at
        t = 0, so every angle is averaged over t = 1 .. T-1. Closed forms: mean A_s = pi for rho in
        (0, 1) and ``pi floor((T-1)/2) / (T-1)`` for rho < 0; mean A_e = 0.
        """
        seqs = self.angle_sequences(eps)
        out = {}
        for key in ("A_s", "A_e", "paper_A_e"):
            values = seqs[key][np.isfinite(seqs[key])]
            out[key] = float(values.mean()) if values.size else math.nan
        return out


def lnn_dynamics(data: RegressionData, width: int, lr: float) -> LNNDynamics:
    """The exact GD dynamics of the width-``width`` linear network on ``data`` at learning rate ``lr``."""
    return LNNDynamics(check_width(width), check_lr(lr), minimiser(check_data(data)))


def scaled_lr(base_lr: float, width: int) -> float:
    """``lr = base_lr / K``: the width-neutral learning rate (contraction ``1 - 2 base_lr lambda``, any K)."""
    return check_lr(base_lr) / check_width(width)


def divergence_width(data: RegressionData, lr: float) -> int | None:
    """Smallest integer K at which GD does not converge: ``ceil(1 / (lr lambda_max))``.

    At ``K = 1/(lr lambda_max)`` exactly, ``rho = -1`` (oscillation) counts as not converging. Decided by
    the same float predicate as :attr:`LNNDynamics.converges`. None if no representable width diverges.
    """
    mini = minimiser(check_data(data))
    lr = check_lr(lr)
    lam = float(mini.eigenvalues[0])
    guess = 1.0 / (lr * lam)
    if not math.isfinite(guess) or guess > 2**62:
        return None
    k = max(1, math.ceil(guess))

    def converges(K: int) -> bool:
        return abs(1.0 - 2.0 * lr * K * lam) < 1.0

    while converges(k):
        k += 1
    while k > 1 and not converges(k - 1):
        k -= 1
    return k


def fastest_width(data: RegressionData, lr: float, max_width: int) -> int | None:
    """The integer ``K <= max_width`` minimising ``max_j |1 - 2 lr K lambda_j|`` (ties: the smaller K).

    Scalar input: ``argmin |rho|`` near ``1 / (2 lr m2)``; vector input: near
    ``1 / (lr (lambda_min + lambda_max))``. None if no width up to ``max_width`` converges.
    """
    mini = minimiser(check_data(data))
    lr = check_lr(lr)
    max_width = check_width(max_width, "max_width")
    lams = mini.eigenvalues

    def contraction(K: int) -> float:
        return float(np.max(np.abs(1.0 - 2.0 * lr * K * lams)))

    optimum = 1.0 / (lr * (float(lams.min()) + float(lams.max())))
    candidates = {1, max_width}
    if math.isfinite(optimum):
        for k in (math.floor(optimum), math.ceil(optimum)):
            candidates.add(min(max(1, k), max_width))
    best = min(sorted(candidates), key=contraction)
    best_value = contraction(best)
    # The smaller width wins ties (within rounding).
    for k in sorted(candidates):
        if contraction(k) <= best_value * (1.0 + 1e-12) + 1e-300:
            best = k
            break
    return best if contraction(best) < 1.0 else None


def expected_first_step(data: RegressionData, width: int, lr: float, law: str, scale: float) -> float:
    """``E||Delta_0|| = 2 lr K m2 E[D0] = (1 - rho) E[D0]`` (single rate: ``||Delta_0|| = (1-rho) D0``)."""
    dyn = lnn_dynamics(data, width, lr)
    return dyn.step_factor * expected_direct_distance(data, width, law, scale)


def expected_path_length(
    data: RegressionData, width: int, lr: float, law: str, scale: float, eps: float | None = None
) -> float:
    """``E[path] = path_factor E[D0]`` (to the limit) or truncated at the halting time T(eps).

    Path length is ``D0`` times an init-independent factor for a single rate, so the expectation is
    exact. ``inf`` when GD does not converge.
    """
    dyn = lnn_dynamics(data, width, lr)
    factor = dyn.path_length(1.0, eps)
    if math.isinf(factor):
        return math.inf
    return factor * expected_direct_distance(data, width, law, scale)
