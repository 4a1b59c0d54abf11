"""Expected direct distance ``E[D0]`` from the init to the minimiser set of the width-K linear network.

``D0 = ||P (v* - W0^T 1)|| / sqrt(K) = ||c - U_r^T v0|| / sqrt(K)`` with ``v0 = W0^T 1``, ``c = U_r^T v*``
(see :mod:`overparam_theory.lnn_minimiser`); scalar input: ``D0 = |C - s0| / sqrt(K)``, ``s0 = sum_k w_k``.
The paper's value (Appendix B) is the distance from the origin, ``||c|| / sqrt(K)`` (``C / sqrt(K)``).

Exact results per init law (N = K d weights, r = rank Sigma_xx):

* gaussian(sigma): ``U_r^T v0 / sqrt(K) ~ N(0, sigma**2 I_r)``, so ``E[D0]`` is the noncentral-chi mean
  ``sigma sqrt(2) Gamma((r+1)/2) / Gamma(r/2) 1F1(-1/2; r/2; -lambda**2 / 2)``,
  ``lambda = ||c|| / (sigma sqrt(K))``; for r = 1 the folded-normal mean
  ``tau sqrt(2/pi) exp(-C**2 / (2 tau**2)) + |C| erf(|C| / (tau sqrt 2))`` over sqrt(K),
  ``tau = sigma sqrt(K)``.
* ball(R) (the paper's law): ``u = U_r^T v0 / sqrt(K)`` is the projection of the uniform N-ball on an
  r-dimensional subspace, density ``∝ (1 - ||u||**2 / R**2)**((N - r)/2)``, i.e.
  ``||u||**2 / R**2 ~ Beta(r/2, (N - r)/2 + 1)`` with a uniform direction; ``D0 = ||c' - u||``,
  ``c' = c / sqrt(K)``. r = 1: ``E|c' - u| = |c'| + 2 E[(u - |c'|)_+]`` in closed form (regularised
  incomplete beta + a power term), equal to the paper's ``|C| / sqrt(K)`` iff ``|C| >= R sqrt(K)``
  (scalar input; the hyperplane misses the ball). r >= 2: adaptive quadrature over radius x angle;
  there ``E[D0] > ||c'||`` always (strict Jensen), so the paper's formula never holds.
* cube(R): scalar input: ``s0 = R (2 S - K)`` with ``S`` Irwin-Hall; ``E|C - s0| = |C| + 4 R E[(b' - S)_+]``,
  ``b' = (K - |C|/R)/2``, ``E[(b' - S)_+] = sum_{j <= b'} (-1)**j binom(K, j) (b' - j)**(K+1) / (K+1)!``,
  an alternating sum that cancels catastrophically in floats (measured relative error 4e-9 at K = 60,
  5 % at K = 100, garbage at 150), evaluated with mpmath at ``30 + K/2`` digits. Vector input with
  full-rank ``Sigma_xx``: ``||z|| = (1/(2 sqrt(pi))) int_0^inf (1 - exp(-t ||z||**2)) t**(-3/2) dt``
  with ``E exp(-t ||z||**2) = prod_j E exp(-t z_j**2)`` (independent coordinates ``v0_j``), each factor
  a 1-D integral against the Irwin-Hall density (a cardinal B-spline, evaluated by its stable
  recurrence). Rank-deficient vector input: no closed form known to us; a seeded
  Monte Carlo estimate with its standard error, labelled as such.

Large-K limits: ball ``E[D0] ~ E||c - (R/sqrt d) Z_r|| / sqrt(K)`` (scalar: ``E|C - R Z| / sqrt(K)``, still
``∝ K**-1/2`` with a larger constant than C); cube and gaussian tend to the constants
``(R/sqrt 3) m_r`` and ``sigma m_r`` with ``m_r = E||Z_r||`` (scalar: ``R sqrt(1/3) sqrt(2/pi)``,
``sigma sqrt(2/pi)``). So "E[D0] = C / sqrt(K)" is a property of the ball law while ``C >= R sqrt(K)``,
and of any law only while the init spread ``sqrt(K) scale`` is small against C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from overparam_theory.datasets import RegressionData
from overparam_theory.errors import InputError
from overparam_theory.init_laws import INIT_LAW_NAMES
from overparam_theory.lnn_minimiser import Minimiser, check_data, check_scale, check_width, minimiser

if TYPE_CHECKING:
    import mpmath

# scipy.special / scipy.integrate and mpmath are imported inside the functions that need them: together
# they cost ~0.3 s to import, more than the whole default `overparam theory lnn` computation.

__all__ = [
    "DirectDistance",
    "DistanceScaling",
    "expected_direct_distance",
    "direct_distance_expectation",
    "paper_direct_distance",
    "paper_condition_holds",
    "large_width_limit",
    "direct_distance_scaling",
    "ball_abs_mean",
    "ball_norm_mean",
    "cube_abs_mean",
    "cube_norm_mean",
    "gaussian_norm_mean",
    "chi_mean",
]

#: Samples of the seeded Monte Carlo fallback (cube law, rank-deficient vector input).
MC_SAMPLES = 400_000
MC_SEED = 0


def _check_law(law: object) -> str:
    name = getattr(law, "name", law)
    if not isinstance(name, str) or name.strip().lower() not in INIT_LAW_NAMES:
        raise InputError(f"unknown init law {law!r}; valid laws: {', '.join(INIT_LAW_NAMES)}")
    return name.strip().lower()


# --------------------------------------------------------------------------------------------------
# One-law building blocks (public for tests and for the Monte Carlo engineer's cross-checks)
# --------------------------------------------------------------------------------------------------


def chi_mean(r: int) -> float:
    """``E||Z_r|| = sqrt(2) Gamma((r+1)/2) / Gamma(r/2)`` for a standard normal Z in R^r."""
    return math.sqrt(2.0) * math.exp(math.lgamma((r + 1) / 2) - math.lgamma(r / 2))


def gaussian_norm_mean(c_norm: float, sigma: float, r: int) -> float:
    """``E||c - sigma Z_r||`` (noncentral-chi mean) for ``||c|| = c_norm``, exact.

    ``sigma sqrt(2) Gamma((r+1)/2)/Gamma(r/2) 1F1(-1/2; r/2; -lambda**2/2)``, ``lambda = c_norm/sigma``
    (mpmath's 1F1 at 30 digits); r = 1 is the folded-normal mean
    ``sigma sqrt(2/pi) exp(-lambda**2/2) + |c| erf(lambda/sqrt 2)``, evaluated directly.
    """
    if r == 1:  # folded normal: both terms positive, no cancellation, no mpmath needed
        lam = abs(c_norm) / sigma
        density_term = math.sqrt(2.0 / math.pi) * math.exp(-0.5 * lam * lam)
        return sigma * density_term + abs(c_norm) * math.erf(lam / math.sqrt(2.0))
    import mpmath

    lam2 = (c_norm / sigma) ** 2
    with mpmath.workdps(30):
        value = mpmath.hyp1f1(-0.5, mpmath.mpf(r) / 2, -mpmath.mpf(lam2) / 2)
    return sigma * chi_mean(r) * float(value)


def ball_abs_mean(c: float, R: float, n_weights: int | float) -> float:
    """``E|c - u|`` for u the 1-D marginal of the uniform ball of radius R in ``R^n_weights``.

    Density of ``x = u / R``: ``(1 - x**2)**m / B(1/2, m + 1)`` on [-1, 1], ``m = (N - 1)/2``. With
    ``k = |c| / R < 1``: ``E|c - u| = |c| + 2 R [(1 - k**2)**(m+1) / (2 (m+1) B(1/2, m+1))
    - (k/2) (1 - I_{k**2}(1/2, m+1))]``; for ``k >= 1`` it is ``|c|`` (the point lies outside the ball).
    """
    from scipy import special  # imported where needed: keeps `import overparam_theory.lnn` light

    a = abs(c)
    k = a / R
    if k >= 1.0:
        return a
    m1 = (n_weights - 1) / 2 + 1
    log_power = m1 * math.log1p(-k * k) - math.log(2 * m1) - special.betaln(0.5, m1)
    positive_part = math.exp(log_power) - 0.5 * k * special.betaincc(0.5, m1, k * k)
    return a + 2.0 * R * positive_part


def ball_norm_mean(c_norm: float, R: float, n_weights: int, r: int) -> tuple[float, float]:
    """``E||c - u||`` for u the projection on ``R^r`` of the uniform ball of radius R in ``R^n_weights``.

    Returns ``(value, absolute error estimate)``. r = 1: :func:`ball_abs_mean` (error 0). r >= 2:
    ``s = ||u||**2 / R**2 ~ Beta(r/2, (N - r)/2 + 1)`` is integrated through its quantile ``p -> s``
    (bounded integrand, a kink at ``s = (c_norm/R)**2`` passed to quad), the angle theta between u and c
    with weight ``sin(theta)**(r-2)``.
    """
    if r == 1:
        return ball_abs_mean(c_norm, R, n_weights), 0.0
    from scipy import integrate, special

    a, b = r / 2.0, (n_weights - r) / 2.0 + 1.0
    k = c_norm / R
    log_norm = special.betaln(0.5, (r - 1) / 2.0)  # int_0^pi sin^(r-2)

    def angular(s: float) -> float:
        root = math.sqrt(s)

        def integrand(theta: float) -> float:
            sin = math.sin(theta)
            weight = 1.0 if r == 2 else (sin ** (r - 2) if sin > 0 else 0.0)
            return math.sqrt(max(k * k + s - 2.0 * k * root * math.cos(theta), 0.0)) * weight

        value, _ = integrate.quad(integrand, 0.0, math.pi, epsabs=1e-13, epsrel=1e-11, limit=200)
        return value / math.exp(log_norm)

    def outer(p: float) -> float:
        return angular(float(special.betaincinv(a, b, p)))

    points = []
    if 0.0 < k < 1.0:
        p0 = float(special.betainc(a, b, k * k))
        if 0.0 < p0 < 1.0:
            points = [p0]
    value, err = integrate.quad(outer, 0.0, 1.0, points=points or None, epsabs=1e-12, epsrel=1e-10, limit=400)
    return R * value, R * err


def _cube_positive_part_mp(b_prime: mpmath.mpf, K: int) -> mpmath.mpf:
    """``E[(b' - S)_+]`` for S Irwin-Hall(K), ``0 <= b' <= K``, at the current mpmath precision."""
    import mpmath

    total = mpmath.mpf(0)
    for j in range(int(mpmath.floor(b_prime)) + 1):
        term = math.comb(K, j) * (b_prime - j) ** (K + 1)
        total += -term if j % 2 else term
    return total / mpmath.factorial(K + 1)


def cube_abs_mean(a: float, R: float, K: int) -> float:
    """``E|a - s|`` for ``s`` the sum of K i.i.d. ``U(-R, R)`` (a scaled Irwin-Hall), exact.

    ``|a| + 4 R E[(b' - S)_+]`` with ``b' = (K - |a|/R) / 2``: the alternating binomial sum is evaluated
    with mpmath at ``30 + K/2`` significant digits from the exact binary values of the float inputs
    (the terms outgrow the result exponentially in K: in float64 the relative error is 4e-9 at K = 60,
    5 % at K = 100 and the result is garbage at K = 150).
    """
    import mpmath

    K = check_width(K, "K")
    a_abs = abs(a)
    if a_abs >= K * R:
        return a_abs
    with mpmath.workdps(30 + K // 2):
        b_prime = (K - mpmath.mpf(a_abs) / mpmath.mpf(R)) / 2
        positive = _cube_positive_part_mp(b_prime, K)
        return float(mpmath.mpf(a_abs) + 4 * mpmath.mpf(R) * positive)


@lru_cache(maxsize=64)
def _irwin_hall_chebyshev(K: int, n_nodes: int = 32) -> np.ndarray:
    """Per unit piece ``[i, i+1]`` of the Irwin-Hall(K) density, Chebyshev coefficients (K, n_nodes).

    Values at the Chebyshev nodes come from the B-spline recurrence
    ``M_k(x) = (x M_{k-1}(x) + (k - x) M_{k-1}(x - 1)) / (k - 1)`` (positive weights: no cancellation),
    run for all pieces at once because every piece shares the same fractional nodes.
    """
    theta = np.pi * (np.arange(n_nodes) + 0.5) / n_nodes
    frac = (1.0 + np.cos(theta)) / 2.0  # nodes in (0, 1)
    values = np.ones((1, n_nodes))  # M_1 on [0, 1)
    for k in range(2, K + 1):
        new = np.zeros((k, n_nodes))
        i = np.arange(k)[:, None]
        x = frac[None, :] + i
        upper = np.vstack([values, np.zeros((1, n_nodes))])  # M_{k-1}(x), zero on [k-1, k)
        lower = np.vstack([np.zeros((1, n_nodes)), values])  # M_{k-1}(x - 1)
        new = (x * upper + (k - x) * lower) / (k - 1)
        values = new
    # Chebyshev coefficients from values at first-kind nodes (discrete cosine transform).
    j = np.arange(n_nodes)[:, None]
    cos_matrix = np.cos(j * theta[None, :])  # (n_coeff, n_nodes)
    coeffs = values @ cos_matrix.T * (2.0 / n_nodes)
    coeffs[:, 0] /= 2.0
    return coeffs


def _irwin_hall_pdf(x: np.ndarray, K: int) -> np.ndarray:
    """Irwin-Hall(K) density at points x (zero outside [0, K]), via :func:`_irwin_hall_chebyshev`."""
    coeffs = _irwin_hall_chebyshev(K)
    x = np.asarray(x, dtype=np.float64)
    inside = (x >= 0.0) & (x <= K)
    piece = np.clip(np.floor(x), 0, K - 1).astype(np.int64)
    z = 2.0 * (x - piece) - 1.0
    c = coeffs[piece]  # (..., n)
    b1 = np.zeros_like(z)
    b2 = np.zeros_like(z)
    for k in range(c.shape[-1] - 1, 0, -1):
        b1, b2 = 2.0 * z * b1 - b2 + c[..., k], b1
    value = z * b1 - b2 + c[..., 0]
    return np.where(inside, value, 0.0)


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)


def _cube_gaussian_complement(beta: float, tau: float, K: int) -> float:
    """``1 - E exp(-tau (beta - S)**2) = E[-expm1(-tau (beta - S)**2)]`` for S Irwin-Hall(K).

    Computed directly (not as 1 minus the transform) so that small ``tau`` keeps full relative accuracy.
    Gauss-Legendre on sub-intervals cut at the integers (the density is a polynomial between them) and
    at every standard deviation ``1/sqrt(2 tau)`` within 12 of ``beta``, so each piece is smooth and at
    most one sd wide where the Gaussian varies.
    """
    sd = 1.0 / math.sqrt(2.0 * tau)
    k = np.arange(-12, 13)
    # The density is below e^-80 more than 13 of its own sd from K/2 (Irwin-Hall tails are lighter than
    # Gaussian ones): skip those pieces (a large saving for wide networks).
    spread = 13.0 * math.sqrt(K / 12.0)
    lo, hi = max(0.0, math.floor(K / 2 - spread)), min(float(K), math.ceil(K / 2 + spread))
    cuts = np.concatenate([np.arange(lo, hi + 1.0), beta + k * sd])
    cuts = np.unique(cuts[(cuts >= lo) & (cuts <= hi)])
    left, right = cuts[:-1], cuts[1:]
    mid, half_width = (left + right) / 2.0, (right - left) / 2.0
    nodes = mid[:, None] + half_width[:, None] * _GL_NODES[None, :]
    weights = half_width[:, None] * _GL_WEIGHTS[None, :]
    integrand = _irwin_hall_pdf(nodes, K) * -np.expm1(-tau * (beta - nodes) ** 2)
    return float(np.sum(weights * integrand))


def cube_norm_mean(a: np.ndarray, R: float, K: int) -> tuple[float, float]:
    """``E||a - v||`` for v with i.i.d. coordinates, each a sum of K i.i.d. ``U(-R, R)``; (value, error).

    ``||z|| = (1/(2 sqrt pi)) int_0^inf (1 - E exp(-t ||z||**2)) t**(-3/2) dt`` with the expectation a
    product over coordinates; ``1 - prod_j (1 - q_j)`` is formed from the complements ``q_j`` without
    cancellation. The t-integral runs over ``u = log t`` (both tails decay like ``e**(-|u|/2)``).
    """
    from scipy import integrate

    a = np.asarray(a, dtype=np.float64).ravel()
    K = check_width(K, "K")
    betas = (a + K * R) / (2.0 * R)  # coordinates in Irwin-Hall units: a_j - s_j = 2R (beta_j - S_j)
    second = float(a @ a + a.size * K * R * R / 3.0)  # E||z||^2 sets the scale of t

    def integrand(u: float) -> float:
        t = math.exp(u) / second
        tau = 4.0 * R * R * t
        log_product = 0.0
        for beta in betas:
            q = min(_cube_gaussian_complement(float(beta), tau, K), 1.0)
            if q >= 1.0:
                return 1.0 / math.sqrt(t)
            log_product += math.log1p(-q)
        return -math.expm1(log_product) / math.sqrt(t)

    span = 46.0
    value, err = integrate.quad(integrand, -span, span, epsabs=0.0, epsrel=1e-10, limit=500)
    # Tails: above, 1 - prod -> 1 and the integrand is t^(-1/2); below, 1 - prod ~ t E||z||^2 and the
    # integrand is sqrt(t) E||z||^2; both integrate to 2 sqrt(E||z||^2) exp(-span/2).
    tail = 4.0 * math.sqrt(second) * math.exp(-span / 2.0)
    scale = 1.0 / (2.0 * math.sqrt(math.pi))
    return scale * (value + tail), scale * (err + 1e-3 * tail)


def _cube_norm_mean_mc(mini: Minimiser, width: int, R: float) -> tuple[float, float]:
    """Seeded Monte Carlo estimate of ``E||c - U_r^T v0||`` (cube law): (mean, standard error)."""
    rng = np.random.default_rng(MC_SEED)
    d = mini.input_dim
    chunk = max(1, 4_000_000 // (width * d))
    total, total_sq, done = 0.0, 0.0, 0
    while done < MC_SAMPLES:
        m = min(chunk, MC_SAMPLES - done)
        v0 = rng.uniform(-R, R, size=(m, width, d)).sum(axis=1)
        dist = np.linalg.norm((mini.v_star - v0) @ mini.range_basis, axis=1)
        total += dist.sum()
        total_sq += (dist * dist).sum()
        done += m
    mean = total / done
    var = max(total_sq / done - mean * mean, 0.0)
    return mean, math.sqrt(var / done)


# --------------------------------------------------------------------------------------------------
# The public E[D0] functions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectDistance:
    """``E[D0]`` with how it was obtained.

    ``value``: E[D0]; ``method``: 'closed form', 'quadrature' or 'monte carlo estimate (...)';
    ``abs_error``: an error estimate (0 for closed forms, the quadrature estimate, or one standard error);
    ``paper_value``: the paper's ``||c|| / sqrt(K)``; ``paper_condition``: whether E[D0] equals it exactly.
    """

    value: float
    method: str
    abs_error: float
    paper_value: float
    paper_condition: bool
    law: str
    scale: float
    width: int
    notes: tuple[str, ...] = field(default_factory=tuple)


def paper_direct_distance(data: RegressionData, width: int) -> float:
    """The paper's Appendix-B value ``C / sqrt(K)`` (vector input: ``||P v*|| / sqrt(K)``), i.e. D0 from 0."""
    mini = minimiser(check_data(data))
    return float(np.linalg.norm(mini.target)) / math.sqrt(check_width(width))


def paper_condition_holds(data: RegressionData, width: int, law: str, scale: float) -> bool:
    """True iff ``E[D0]`` equals the paper's ``||c|| / sqrt(K)`` exactly for this law, width and scale.

    That happens iff ``c - U_r^T v0`` never changes direction, i.e. r = 1 and the hyperplane misses the
    support of the init: ball ``|C| >= R sqrt(K)`` (scalar; vector r = 1: ``|c| >= R sqrt(K)``); cube
    ``|c| >= K R ||u_1||_1`` (scalar: ``|C| >= K R``); never for the gaussian law (unbounded support) and
    never for r >= 2 (strict Jensen: ``E||c - u|| > ||c||`` for a u with an r-dimensional density).
    """
    mini = minimiser(check_data(data))
    width = check_width(width)
    law = _check_law(law)
    scale = check_scale(scale)
    if law == "gaussian" or mini.rank >= 2:
        return False
    c = abs(float(mini.target[0]))
    if law == "ball":
        return c >= scale * math.sqrt(width)
    return c >= width * scale * float(np.sum(np.abs(mini.range_basis[:, 0])))


def direct_distance_expectation(data: RegressionData, width: int, law: str, scale: float) -> DirectDistance:
    """``E[D0]`` for ``W0`` drawn from ``law`` with ``scale`` (R or sigma), with method and error estimate."""
    mini = minimiser(check_data(data))
    width = check_width(width)
    law = _check_law(law)
    scale = check_scale(scale)
    r, d = mini.rank, mini.input_dim
    c_norm = float(np.linalg.norm(mini.target))
    root_k = math.sqrt(width)
    paper = c_norm / root_k
    condition = paper_condition_holds(data, width, law, scale)
    notes: list[str] = []
    if law == "gaussian":
        value, method, err = gaussian_norm_mean(c_norm / root_k, scale, r), "closed form", 0.0
    elif law == "ball":
        value, err = ball_norm_mean(c_norm / root_k, scale, width * d, r)
        method = "closed form" if r == 1 else "quadrature"
    elif d == 1:
        value, method, err = cube_abs_mean(c_norm, scale, width) / root_k, "closed form", 0.0
    elif condition:  # rank 1 and the hyperplane misses the cube: D0 never changes sign, E[D0] = |c|/sqrt(K)
        value, method, err = paper, "closed form", 0.0
    elif r == d:
        value, err = cube_norm_mean(mini.v_star, scale, width)
        value, err, method = value / root_k, err / root_k, "quadrature"
    else:
        value, err = _cube_norm_mean_mc(mini, width, scale)
        value, err = value / root_k, err / root_k
        method = f"monte carlo estimate (seed {MC_SEED}, {MC_SAMPLES} samples)"
        notes.append("cube law with rank-deficient Sigma_xx: no closed form known to us")
    if condition:
        notes.append("paper's formula exact here")
    return DirectDistance(value, method, err, paper, condition, law, scale, width, tuple(notes))


def expected_direct_distance(data: RegressionData, width: int, law: str, scale: float) -> float:
    """``E[D0]``: the expected distance from ``W0 ~ law(scale)`` to the minimiser set (see module doc)."""
    return direct_distance_expectation(data, width, law, scale).value


def large_width_limit(data: RegressionData, law: str, scale: float) -> tuple[float, float]:
    """``(constant, exponent)`` with ``E[D0] ~ constant * K**exponent`` as ``K -> inf``.

    ball: ``(E||c - (R/sqrt d) Z_r||, -1/2)``; cube: ``((R/sqrt 3) E||Z_r||, 0)``; gaussian:
    ``(sigma E||Z_r||, 0)``.
    """
    mini = minimiser(check_data(data))
    law = _check_law(law)
    scale = check_scale(scale)
    r, d = mini.rank, mini.input_dim
    if law == "ball":
        return gaussian_norm_mean(float(np.linalg.norm(mini.target)), scale / math.sqrt(d), r), -0.5
    if law == "cube":
        return scale / math.sqrt(3.0) * chi_mean(r), 0.0
    return scale * chi_mean(r), 0.0


@dataclass(frozen=True, eq=False)
class DistanceScaling:
    """``E[D0]`` over widths, against the paper's ``C / sqrt(K)``, with local log-log exponents.

    ``local_exponent[i]``: the slope of ``log E[D0]`` vs ``log K`` at ``widths[i]`` (finite differences;
    NaN with a single width). ``paper_exponent`` is -1/2; ``limit_exponent`` the large-K exponent.
    """

    law: str
    scale: float
    widths: np.ndarray
    expected: np.ndarray
    paper_value: np.ndarray
    condition_holds: np.ndarray
    local_exponent: np.ndarray
    limit_constant: float
    limit_exponent: float
    paper_exponent: float = -0.5


def direct_distance_scaling(
    data: RegressionData, law: str, scale: float, widths: list[int] | np.ndarray
) -> DistanceScaling:
    """Tabulate ``E[D0]`` and the regime (paper's condition) over ``widths`` (increasing integers)."""
    ws = [check_width(int(w)) if float(w) == int(w) else check_width(w) for w in np.asarray(widths)]
    if not ws:
        raise InputError("widths must not be empty")
    if any(b <= a for a, b in zip(ws, ws[1:], strict=False)):
        raise InputError("widths must be strictly increasing")
    law = _check_law(law)
    scale = check_scale(scale)
    expected = np.array([expected_direct_distance(data, w, law, scale) for w in ws])
    paper = np.array([paper_direct_distance(data, w) for w in ws])
    holds = np.array([paper_condition_holds(data, w, law, scale) for w in ws])
    if len(ws) >= 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            local = np.gradient(np.log(expected), np.log(np.asarray(ws, dtype=float)))
    else:
        local = np.array([math.nan])
    constant, exponent = large_width_limit(data, law, scale)
    return DistanceScaling(law, scale, np.asarray(ws), expected, paper, holds, local, constant, exponent)
