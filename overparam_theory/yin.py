"""The Yin et al. recursion (paper Section 4.2, eq. 2-4), derived symbolically, and its numeric use.

For any update ``W_{t+1} = W_t + Delta_t`` and any fixed point ``W*``:

    ||W_T - W*||**2 = ||W_0 - W*||**2 + sum_{t<T} ||Delta_t||**2 + 2 sum_{t<T} <W_t - W*, Delta_t>

(a purely algebraic identity: it holds for SGD, Adam, anything). For gradient descent,
``Delta_t = -lr grad F(W_t)``:

    ||W_T - W*||**2 = ||W_0 - W*||**2 + lr**2 sum_{t<T} ||grad F(W_t)||**2
                      - 2 lr sum_{t<T} <W_t - W*, grad F(W_t)>.

With the trajectory averages ``A = (1/T) sum <W_t - W*, grad F(W_t)>`` and
``S = (1/T) sum ||grad F(W_t)||**2`` this reads ``||W_T - W*||**2 = D0**2 - T (2 lr A - lr**2 S)``, so
reaching ``||W_T - W*||**2 <= eps`` needs

    T >= (D0**2 - eps) / (2 lr A - lr**2 S)     provided 2 lr A - lr**2 S > 0, i.e. A > lr S / 2.

If ``2 lr A - lr**2 S <= 0`` the squared distance cannot fall below ``D0**2`` with those averages, so
(when ``D0**2 > eps``) the tolerance is never reached; if ``D0**2 <= eps`` the bound is ``T >= 0``.
A and S are averages over the very trajectory whose length T is bounded: the bound is a consistency
relation, not a prediction, unless A and S are bounded independently of T (e.g. by strong convexity
and smoothness, as in Yin et al.). Here ``D0 = ||W_0 - W*||`` is the *distance* and ``eps`` a tolerance
on the *squared* distance (the paper's epsilon).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from overparam_theory.errors import InputError

__all__ = [
    "YinDerivation",
    "derive_yin",
    "HaltingBound",
    "halting_time_bound",
    "YinResidual",
    "yin_identity_residual",
]


# --------------------------------------------------------------------------------------------------
# Symbolic derivation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class YinDerivation:
    """The derivation's steps as sympy objects, each paired with a check that sympy verified.

    ``steps``: list of ``(title, sympy expression or Eq, explanation)``; ``checks``: name -> bool, every
    entry True when sympy confirmed the step (``derive_yin`` raises if one is not).
    """

    steps: tuple[tuple[str, object, str], ...]
    checks: dict[str, bool] = field(default_factory=dict)


def derive_yin() -> YinDerivation:
    """Derive the recursion with sympy from the update rule; every step is checked symbolically.

    1. One step, vectors as ``n x 1`` matrix symbols (any dimension n): ``||e - lr g||**2`` expanded,
       using ``g^T e = e^T g``.
    2. Any update Delta: ``||e + Delta||**2 = ||e||**2 + ||Delta||**2 + 2 <e, Delta>``; Delta = -lr g gives 1.
    3. General T: ``d_T - d_0 = Sum_{t<T} (d_{t+1} - d_t)`` (sympy telescopes the IndexedBase sum), and
       the right-hand side ``R(T) = d_0 + Sum_{t<T} (lr**2 s_t - 2 lr a_t)`` satisfies ``R(0) = d_0`` and
       ``R(T+1) - R(T) = lr**2 s_T - 2 lr a_T`` = the one-step change: by induction ``d_T = R(T)`` for all T.
    4. Averages A, S and the halting-time bound, with its condition.
    """
    import sympy as sp

    checks: dict[str, bool] = {}
    steps: list[tuple[str, object, str]] = []
    n = sp.Symbol("n", integer=True, positive=True)
    lr, eps = sp.symbols("eta epsilon", positive=True)
    e = sp.MatrixSymbol("e", n, 1)  # e_t = W_t - W*
    g = sp.MatrixSymbol("g", n, 1)  # g_t = grad F(W_t)
    delta = sp.MatrixSymbol("Delta", n, 1)

    def sq(v):
        return v.T * v

    def dot(u, v):
        return u.T * v

    def symmetric(expr):  # scalar products (1 x 1) are symmetric: v^T u = u^T v
        return expr.subs({g.T * e: dot(e, g), delta.T * e: dot(e, delta)})

    def is_zero(expr) -> bool:
        expr = sp.simplify(sp.expand(expr))
        return expr == 0 or isinstance(expr, sp.ZeroMatrix)

    one_step_lhs = sq(e - lr * g)
    one_step_rhs = sq(e) + lr**2 * sq(g) - 2 * lr * dot(e, g)
    checks["one_step"] = is_zero(symmetric(sp.expand(one_step_lhs)) - one_step_rhs)
    steps.append(
        (
            "One GD step: W_{t+1} - W* = (W_t - W*) - eta grad F(W_t), with e = W_t - W*, g = grad F(W_t)",
            sp.Eq(one_step_lhs, one_step_rhs, evaluate=False),
            "expand the square; <g, e> = <e, g>",
        )
    )
    any_lhs = sq(e + delta)
    any_rhs = sq(e) + sq(delta) + 2 * dot(e, delta)
    checks["any_update"] = is_zero(symmetric(sp.expand(any_lhs)) - any_rhs)
    checks["any_update_reduces_to_gd"] = is_zero(
        symmetric(sp.expand(any_rhs.subs(delta, -lr * g))) - one_step_rhs
    )
    steps.append(
        (
            "Any update W_{t+1} = W_t + Delta_t (SGD, Adam, ...)",
            sp.Eq(any_lhs, any_rhs, evaluate=False),
            "Delta_t = -eta grad F(W_t) gives the GD step above",
        )
    )

    t, T = sp.symbols("t T", integer=True, nonnegative=True)
    d = sp.IndexedBase("d")  # d_t = ||W_t - W*||^2
    a = sp.IndexedBase("a")  # a_t = <W_t - W*, grad F(W_t)>
    s = sp.IndexedBase("s")  # s_t = ||grad F(W_t)||^2
    telescoped = sp.Sum(d[t + 1] - d[t], (t, 0, T - 1))
    checks["telescoping"] = sp.simplify(telescoped.doit() - (d[T] - d[0])) == 0
    rhs = d[0] + sp.Sum(lr**2 * s[t] - 2 * lr * a[t], (t, 0, T - 1))
    checks["induction_base"] = sp.simplify(rhs.subs(T, 0).doit() - d[0]) == 0
    increment = sp.difference_delta(rhs, T)
    checks["induction_step"] = sp.simplify(increment - (lr**2 * s[T] - 2 * lr * a[T])) == 0
    steps.append(
        (
            "Telescoping over t = 0..T-1"
            " (d_t = ||W_t - W*||^2, a_t = <W_t - W*, grad F_t>, s_t = ||grad F_t||^2)",
            sp.Eq(d[T], rhs, evaluate=False),
            "d_T - d_0 = sum (d_{t+1} - d_t); each difference is the one-step change eta^2 s_t - 2 eta a_t "
            "(proved for every T by induction: R(0) = d_0, R(T+1) - R(T) = eta^2 s_T - 2 eta a_T)",
        )
    )
    delta_rhs = d[0] + sp.Sum(sp.IndexedBase("q")[t] + 2 * sp.IndexedBase("p")[t], (t, 0, T - 1))
    checks["any_update_telescoped"] = (
        sp.simplify(sp.difference_delta(delta_rhs, T) - (sp.IndexedBase("q")[T] + 2 * sp.IndexedBase("p")[T]))
        == 0
    )
    steps.append(
        (
            "Any update, telescoped (q_t = ||Delta_t||^2, p_t = <W_t - W*, Delta_t>)",
            sp.Eq(d[T], delta_rhs, evaluate=False),
            "same induction with the any-update step",
        )
    )

    A, S, D0 = sp.symbols("A S D_0", real=True)
    T_sym = sp.Symbol("T", positive=True)
    averaged = D0**2 + T_sym * lr**2 * S - 2 * lr * T_sym * A
    checks["averages"] = (
        sp.simplify(
            rhs.subs(T, 3).doit().subs({d[0]: D0**2})
            - averaged.subs(T_sym, 3).subs(
                {S: sum(s[i] for i in range(3)) / 3, A: sum(a[i] for i in range(3)) / 3}
            )
        )
        == 0
    )
    steps.append(
        (
            "With the trajectory averages A = (1/T) sum a_t and S = (1/T) sum s_t (D_0 = ||W_0 - W*||)",
            sp.Eq(sp.Symbol("d_T"), averaged, evaluate=False),
            "A, S are averages over the same T steps: a consistency relation",
        )
    )
    denominator = 2 * lr * A - lr**2 * S
    bound = (D0**2 - eps) / denominator
    checks["bound_reaches_eps"] = sp.simplify(averaged.subs(T_sym, bound) - eps) == 0
    steps.append(
        (
            "Halting-time bound for d_T <= epsilon (epsilon: tolerance on the squared distance)",
            sp.GreaterThan(T_sym, bound, evaluate=False),
            "valid iff 2 eta A - eta^2 S > 0 (A > eta S / 2); if <= 0 and D_0^2 > epsilon the tolerance is "
            "never reached with these averages; if D_0^2 <= epsilon, T >= 0",
        )
    )
    failed = [name for name, ok in checks.items() if not ok]
    if failed:  # pragma: no cover - would mean sympy changed behaviour
        raise RuntimeError(f"symbolic check failed: {', '.join(failed)}")
    return YinDerivation(tuple(steps), checks)


# --------------------------------------------------------------------------------------------------
# Numeric halting-time bound
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HaltingBound:
    """Outcome of :func:`halting_time_bound`.

    ``applies``: the bound is a finite statement; ``bound``: ``(D0**2 - eps)/(2 lr A - lr**2 S)`` (0 when
    already within tolerance; None when it does not apply); ``steps``: the smallest integer T satisfying
    it; ``denominator``: ``2 lr A - lr**2 S``; ``reason``: one line saying which case holds.
    """

    applies: bool
    bound: float | None
    steps: int | None
    denominator: float
    reason: str


def _finite(value: object, name: str, *, minimum: float | None = None, strict: bool = False) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (number < minimum or (strict and number == minimum)):
        relation = ">" if strict else ">="
        raise InputError(f"{name} must be {relation} {minimum:g}, got {value!r}")
    return number


def halting_time_bound(d0: float, lr: float, alignment: float, grad_sq: float, eps: float) -> HaltingBound:
    """Evaluate ``T >= (d0**2 - eps) / (2 lr A - lr**2 S)`` with its conditions.

    ``d0``: the distance ``||W_0 - W*||`` (not squared); ``lr``: the learning rate eta;
    ``alignment``: ``A``, the trajectory average of ``<W_t - W*, grad F(W_t)>``; ``grad_sq``: ``S``, the
    average of ``||grad F(W_t)||**2``; ``eps``: tolerance on the squared distance ``||W_T - W*||**2``.
    Raises :class:`InputError` for non-finite numbers, ``d0 < 0``, ``lr <= 0``, ``grad_sq < 0``, ``eps <= 0``.
    """
    d0 = _finite(d0, "d0", minimum=0.0)
    lr = _finite(lr, "lr", minimum=0.0, strict=True)
    alignment = _finite(alignment, "alignment")
    grad_sq = _finite(grad_sq, "grad_sq", minimum=0.0)
    eps = _finite(eps, "eps", minimum=0.0, strict=True)
    d0_sq = d0 * d0
    denominator = 2.0 * lr * alignment - lr * lr * grad_sq
    if d0_sq <= eps:
        return HaltingBound(
            True,
            0.0,
            0,
            denominator,
            f"already within tolerance: d0^2 = {d0_sq:.6g} <= eps = {eps:.6g}, T >= 0",
        )
    if denominator <= 0.0:
        return HaltingBound(
            False,
            None,
            None,
            denominator,
            f"does not apply: 2*lr*A - lr^2*S = {denominator:.6g} <= 0"
            f" (needs A > lr*S/2 = {lr * grad_sq / 2:.6g}); with these averages the squared distance"
            " never falls below d0^2, so eps is not reached",
        )
    bound = (d0_sq - eps) / denominator
    steps = math.ceil(bound * (1.0 - 1e-12))
    return HaltingBound(
        True,
        bound,
        steps,
        denominator,
        f"T >= (d0^2 - eps)/(2*lr*A - lr^2*S) = ({d0_sq:.6g} - {eps:.6g})/{denominator:.6g} = {bound:.6g}",
    )


# --------------------------------------------------------------------------------------------------
# Numeric identity check on a recorded trajectory
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class YinResidual:
    """The terms of the identity on a recorded trajectory and how well it closes.

    ``final_sq``: ``||W_T - W*||**2``; ``initial_sq``: ``||W_0 - W*||**2``; ``step_sq_sum``:
    ``sum ||Delta_t||**2``; ``alignment_sum``: ``sum <W_t - W*, Delta_t>``; ``residual``:
    ``final_sq - (initial_sq + step_sq_sum + 2 alignment_sum)``; ``relative``: residual over the largest
    term's magnitude. With ``gradients`` and ``lr``: ``grad_sq_sum`` = ``sum ||g_t||**2``,
    ``grad_alignment_sum`` = ``sum <W_t - W*, g_t>`` and ``gd_residual`` / ``gd_relative`` for the GD form
    ``final_sq - (initial_sq + lr**2 grad_sq_sum - 2 lr grad_alignment_sum)``, which vanishes only if the
    steps really were ``-lr g_t``.
    """

    steps: int
    final_sq: float
    initial_sq: float
    step_sq_sum: float
    alignment_sum: float
    residual: float
    relative: float
    grad_sq_sum: float | None = None
    grad_alignment_sum: float | None = None
    gd_residual: float | None = None
    gd_relative: float | None = None


def _stack(name: str, values: object) -> np.ndarray:
    try:
        if isinstance(values, np.ndarray):
            array = values.astype(np.float64, copy=False)
        else:
            array = np.stack([np.asarray(v, dtype=np.float64).ravel() for v in values])  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a sequence of equally shaped numeric arrays ({exc})") from None
    array = array.reshape(array.shape[0], -1) if array.ndim >= 1 else array
    if array.ndim != 2:
        raise InputError(f"{name} must hold at least one array")
    return array


def yin_identity_residual(
    trajectory: object,
    w_star: object,
    gradients: object | None = None,
    lr: float | None = None,
) -> YinResidual:
    """Check the identity on ``trajectory`` = ``[W_0, ..., W_T]`` (arrays of any equal shape) and ``w_star``.

    The any-update form uses ``Delta_t = W_{t+1} - W_t`` and must close to rounding for every trajectory.
    Pass ``gradients`` (``[g_0, ..., g_{T-1}]``) and ``lr`` to test the GD form as well. Sums use math.fsum
    so the residual reflects the data, not the summation order.
    """
    W = _stack("trajectory", trajectory)
    if W.shape[0] < 1:
        raise InputError("trajectory must contain at least W_0")
    star = np.asarray(w_star, dtype=np.float64).ravel()
    if star.shape[0] != W.shape[1]:
        raise InputError(f"w_star has {star.shape[0]} entries but each W_t has {W.shape[1]}")
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(star))):
        raise InputError("trajectory and w_star must be finite")
    T = W.shape[0] - 1
    err = W - star
    steps = np.diff(W, axis=0)
    final_sq = math.fsum(err[-1] * err[-1])
    initial_sq = math.fsum(err[0] * err[0])
    step_sq = math.fsum((steps * steps).ravel())
    align = math.fsum((err[:-1] * steps).ravel())
    residual = final_sq - (initial_sq + step_sq + 2.0 * align)
    scale = max(final_sq, initial_sq, step_sq, 2.0 * abs(align), np.finfo(float).tiny)
    out = dict(
        steps=T,
        final_sq=final_sq,
        initial_sq=initial_sq,
        step_sq_sum=step_sq,
        alignment_sum=align,
        residual=residual,
        relative=abs(residual) / scale,
    )
    if (gradients is None) != (lr is None):
        raise InputError("pass gradients and lr together (or neither)")
    if gradients is not None:
        G = _stack("gradients", gradients)
        if G.shape != (T, W.shape[1]):
            raise InputError(f"gradients must be {T} arrays of {W.shape[1]} entries, got {G.shape}")
        eta = _finite(lr, "lr", minimum=0.0, strict=True)
        grad_sq = math.fsum((G * G).ravel())
        grad_align = math.fsum((err[:-1] * G).ravel())
        gd_residual = final_sq - (initial_sq + eta * eta * grad_sq - 2.0 * eta * grad_align)
        gd_scale = max(
            final_sq, initial_sq, eta * eta * grad_sq, 2.0 * eta * abs(grad_align), np.finfo(float).tiny
        )
        out.update(
            grad_sq_sum=grad_sq,
            grad_alignment_sum=grad_align,
            gd_residual=gd_residual,
            gd_relative=abs(gd_residual) / gd_scale,
        )
    return YinResidual(**out)
