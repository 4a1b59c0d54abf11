"""E[D0] per init law (closed forms / quadrature) against brute-force simulation, plus invariants."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lnn_brute_force import distance, hessian, mean_with_ci
from scipy import stats

from overparam_theory.datasets import RegressionData, builtin_dataset
from overparam_theory.errors import InputError
from overparam_theory.init_laws import sample
from overparam_theory.lnn import (
    direct_distance_expectation,
    direct_distance_scaling,
    expected_direct_distance,
    expected_first_step,
    expected_path_length,
    large_width_limit,
    lnn_dynamics,
    paper_condition_holds,
    paper_direct_distance,
)
from overparam_theory.lnn_distance import (
    ball_abs_mean,
    ball_norm_mean,
    cube_abs_mean,
    cube_norm_mean,
    gaussian_norm_mean,
)


def scalar_data_with_C(C, x=(0.5, 1.0, 1.5, 2.0)):
    x = np.array(x)
    return RegressionData(x, C * x)


def brute_d0(data, law, scale, K, n=20_000, seed=0):
    """D0 for n inits: the distance to the nearest minimiser from the numerical Hessian (no closed form)."""
    W0 = sample(law, scale, n, K, data.input_dim, seed)
    H_pinv = np.linalg.pinv(hessian(data.x, data.y, K), rcond=1e-10)
    return distance(data.x, data.y, W0, H_pinv)


@pytest.mark.parametrize("law", ["ball", "cube", "gaussian"])
@pytest.mark.parametrize(("C", "K", "scale"), [(1.1, 1, 0.5), (1.1, 5, 0.5), (0.3, 3, 1.0), (2.0, 12, 0.4)])
def test_scalar_expected_distance_matches_simulation(law, C, K, scale):
    data = scalar_data_with_C(C)
    mean, half = mean_with_ci(brute_d0(data, law, scale, K))
    assert expected_direct_distance(data, K, law, scale) == pytest.approx(mean, abs=half)


@pytest.mark.parametrize("law", ["ball", "cube", "gaussian"])
@pytest.mark.parametrize("seed", [1, 2])
def test_vector_expected_distance_matches_simulation(law, seed):
    rng = np.random.default_rng(seed)
    d = 2 + seed % 2
    X = rng.normal(size=(6, d))
    data = RegressionData(X, X @ rng.normal(size=d) * 0.5 + 0.1 * rng.normal(size=6))
    K = 3 + seed
    result = direct_distance_expectation(data, K, law, 0.7)
    assert result.method in ("closed form", "quadrature")
    mean, half = mean_with_ci(brute_d0(data, law, 0.7, K))
    assert result.value == pytest.approx(mean, abs=half + result.abs_error)


def test_cube_rank_deficient_is_a_labelled_estimate():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(5, 3))
    X[:, 2] = X[:, 0] - X[:, 1]
    data = RegressionData(X, rng.normal(size=5))
    result = direct_distance_expectation(data, 4, "cube", 0.5)
    assert result.method.startswith("monte carlo estimate") and result.abs_error > 0
    assert any("no closed form" in note for note in result.notes)
    mean, half = mean_with_ci(brute_d0(data, "cube", 0.5, 4, seed=11))
    assert result.value == pytest.approx(mean, abs=half + 4 * result.abs_error)
    # ball and gaussian stay exact on the rank-2 range
    assert direct_distance_expectation(data, 4, "ball", 0.5).method == "quadrature"
    assert direct_distance_expectation(data, 4, "gaussian", 0.5).method == "closed form"


def _cube_exact_fraction(a, R, K):
    a, R = abs(Fraction(a)), Fraction(R)
    if a >= K * R:
        return float(a)
    b = (K - a / R) / 2
    total = sum((-1) ** j * math.comb(K, j) * (b - j) ** (K + 1) for j in range(math.floor(b) + 1))
    return float(a + 4 * R * total / math.factorial(K + 1))


def _cube_naive_float(a, R, K):
    b = (K - abs(a) / R) / 2
    total = sum((-1) ** j * math.comb(K, j) * (b - j) ** (K + 1) for j in range(math.floor(b) + 1))
    return abs(a) + 4 * R * total / math.factorial(K + 1)


@pytest.mark.parametrize("K", [1, 2, 3, 7, 20, 64, 150])
@pytest.mark.parametrize("a", [0.0, 0.37, 2.9])
def test_cube_mpmath_equals_exact_rational_arithmetic(K, a):
    assert cube_abs_mean(a, 0.3, K) == pytest.approx(_cube_exact_fraction(a, 0.3, K), rel=1e-14, abs=1e-300)


def test_naive_float_cube_formula_cancels_catastrophically():
    # Measured: relative error 3e-13 at K = 40, 4e-9 at 60, 1e-6 at 80, 5 % at 100, garbage at 150.
    exact = cube_abs_mean(0.37, 0.3, 150)
    assert abs(_cube_naive_float(0.37, 0.3, 150) - exact) > exact
    assert _cube_naive_float(0.37, 0.3, 5) == pytest.approx(cube_abs_mean(0.37, 0.3, 5), rel=1e-12)


@pytest.mark.parametrize("K", [32, 256])
def test_cube_large_width_against_simulation(K):
    rng = np.random.default_rng(K)
    s0 = np.zeros(20_000)
    for _ in range(K):  # sum of K uniforms, accumulated plainly
        s0 += rng.uniform(-0.3, 0.3, size=s0.size)
    mean, half = mean_with_ci(np.abs(1.3 - s0) / math.sqrt(K))
    data = scalar_data_with_C(1.3)
    assert expected_direct_distance(data, K, "cube", 0.3) == pytest.approx(mean, abs=half)


@pytest.mark.parametrize("K", [1, 2, 7, 40, 200])
@pytest.mark.parametrize("a", [0.0, 0.6, 4.0])
def test_cube_vector_quadrature_reduces_to_the_exact_scalar(K, a):
    value, err = cube_norm_mean(np.array([a]), 0.3, K)
    assert value == pytest.approx(cube_abs_mean(a, 0.3, K), rel=1e-9)
    assert err < 1e-8


def test_gaussian_r1_is_the_folded_normal_and_higher_r_matches_known_means():
    c, s = 0.8, 0.6
    folded = s * math.sqrt(2 / math.pi) * math.exp(-(c**2) / (2 * s * s))
    folded += c * math.erf(c / (s * math.sqrt(2)))
    assert gaussian_norm_mean(c, s, 1) == pytest.approx(folded, rel=1e-14)
    for c, s in ((0.8, 0.6), (0.0, 1.0), (1e-3, 2.0), (7.0, 0.5), (30.0, 1.0)):  # r = 1 is evaluated
        # directly; the general noncentral-chi formula (1F1) and scipy's folded normal must agree with it
        import mpmath

        general = s * math.sqrt(2 / math.pi) * float(mpmath.hyp1f1(-0.5, 0.5, -((c / s) ** 2) / 2))
        assert gaussian_norm_mean(c, s, 1) == pytest.approx(general, rel=1e-13)
        assert gaussian_norm_mean(c, s, 1) == pytest.approx(stats.foldnorm(c / s, scale=s).mean(), rel=1e-9)
    for r in (1, 2, 3, 10):  # c = 0: chi mean
        assert gaussian_norm_mean(0.0, 1.0, r) == pytest.approx(stats.chi(r).mean(), rel=1e-12)
    # far away: E||c - Z_r|| ~ ||c|| + (r - 1) / (2 ||c||)
    assert gaussian_norm_mean(50.0, 1.0, 3) == pytest.approx(50.0 + 1.0 / 50.0, rel=1e-6)


def test_ball_r3_matches_the_shell_formula():
    # For r = N = 3 (uniform 3-ball), E||c - u|| over a sphere of radius rho is max + min^2 / (3 max).
    R, c = 1.0, 0.4

    def shell(rho):
        big, small = max(c, rho), min(c, rho)
        return big + small * small / (3 * big)

    from scipy.integrate import quad

    expected = quad(lambda rho: shell(rho) * 3 * rho**2, 0, R, points=[c])[0]
    assert ball_norm_mean(c, R, 3, 3)[0] == pytest.approx(expected, rel=1e-9)


def test_paper_appendix_b_values_and_corrections():
    from overparam_theory.lnn_appendix_b import appendix_b_integrals

    ab = appendix_b_integrals()
    C, R, k = ab.C, ab.R, ab.k
    assert ab.k1_paper == C
    assert (ab.k1_inside - (C**2 + R**2) / (2 * R)).simplify() == 0
    assert (ab.k2_paper - C / 2**0.5).evalf(subs={C: 1.0}) == pytest.approx(0, abs=1e-15)
    assert float(ab.k2_printed.subs(C, 1.0)) == pytest.approx(math.pi / math.sqrt(2))
    # K = 1 and K = 2 from the general ball formula, under and outside the paper's conditions.
    assert ball_abs_mean(1.5, 1.0, 1) == 1.5  # C >= R: C
    assert ball_abs_mean(0.4, 1.0, 1) == pytest.approx((0.4**2 + 1) / 2)  # C < R: (C^2 + R^2)/(2R)
    assert ball_abs_mean(0.4, 1.0, 1) == pytest.approx(float(ab.k1_inside.subs({C: 0.4, R: 1.0})))
    for Cv in (1.6, 3.0):  # C >= R sqrt 2: C / sqrt 2
        data = scalar_data_with_C(Cv)
        assert expected_direct_distance(data, 2, "ball", 1.0) == pytest.approx(Cv / math.sqrt(2), rel=1e-12)
        assert paper_condition_holds(data, 2, "ball", 1.0)
    for Cv in (0.2, 1.0, 1.4):
        data = scalar_data_with_C(Cv)
        inside = float(ab.k2_inside.subs({k: Cv / math.sqrt(2), R: 1.0}))
        assert expected_direct_distance(data, 2, "ball", 1.0) == pytest.approx(inside, rel=1e-12)
        assert inside > Cv / math.sqrt(2) and not paper_condition_holds(data, 2, "ball", 1.0)


@settings(max_examples=40, deadline=None)
@given(
    C=st.floats(-5, 5),
    K=st.integers(1, 300),
    R=st.floats(0.01, 5),
    law=st.sampled_from(["ball", "cube", "gaussian"]),
)
def test_invariants(C, K, R, law):
    data = scalar_data_with_C(C) if abs(C) > 1e-9 else scalar_data_with_C(1e-9)
    value = expected_direct_distance(data, K, law, R)
    paper = paper_direct_distance(data, K)
    assert value >= 0.0
    assert value >= paper * (1 - 1e-12)  # Jensen: E||c - u|| >= ||c - E u|| = ||c||
    holds = paper_condition_holds(data, K, law, R)
    if holds:  # (when it fails the excess can be below float resolution, e.g. gaussian far from the set)
        assert value == pytest.approx(paper, rel=1e-12)
    # Bigger init spread never brings the init closer on average (E|c - R u| is convex and even in R).
    assert expected_direct_distance(data, K, law, 1.5 * R) >= value * (1 - 1e-10)
    if law == "ball":
        Cabs = abs(float(data.cross_moment / data.second_moment))
        root = math.sqrt(K)
        assert Cabs * (1 - 1e-12) <= root * value <= math.sqrt(Cabs**2 + R * R * K / (K + 2)) * (1 + 1e-12)


@pytest.mark.parametrize("K", [1, 3, 10, 100])
def test_ball_is_continuous_across_the_paper_boundary(K):
    R = 0.7
    boundary = R * math.sqrt(K)
    below = expected_direct_distance(scalar_data_with_C(boundary * (1 - 1e-9)), K, "ball", R)
    at = expected_direct_distance(scalar_data_with_C(boundary), K, "ball", R)
    assert below == pytest.approx(at, rel=1e-7)
    assert at == pytest.approx(boundary / math.sqrt(K), rel=1e-15)


def test_vector_ball_never_meets_the_paper_formula_for_rank_two():
    data = builtin_dataset(2)  # c far outside the ball: the hyperplane misses it, still E[D0] > ||c||/sqrt(K)
    result = direct_distance_expectation(data, 2, "ball", 0.05)
    assert result.value > result.paper_value and not result.paper_condition
    assert result.value == pytest.approx(result.paper_value, rel=1e-2)


def test_large_width_limits():
    data = scalar_data_with_C(1.1)
    C, R = 1.1, 0.5
    const, exponent = large_width_limit(data, "ball", R)
    assert exponent == -0.5
    brute = stats.norm.expect(lambda z: abs(C - R * z))
    assert const == pytest.approx(brute, rel=1e-9)
    K = 20_000
    assert math.sqrt(K) * expected_direct_distance(data, K, "ball", R) == pytest.approx(const, rel=1e-3)
    const, exponent = large_width_limit(data, "cube", R)
    assert exponent == 0 and const == pytest.approx(R * math.sqrt(1 / 3) * math.sqrt(2 / math.pi))
    # K = 2000: s0 / sqrt(K) is nearly N(0, R^2/3); C / sqrt(K) still shifts the mean by ~0.4 %.
    clt = gaussian_norm_mean(C / math.sqrt(2000), R / math.sqrt(3), 1)
    assert expected_direct_distance(data, 2000, "cube", R) == pytest.approx(clt, rel=1e-3)
    assert clt == pytest.approx(const, rel=5e-3)
    const, _ = large_width_limit(data, "gaussian", R)
    assert const == pytest.approx(R * math.sqrt(2 / math.pi))
    assert expected_direct_distance(data, 10**6, "gaussian", R) == pytest.approx(const, rel=1e-3)


def test_scaling_table_reports_regimes_and_exponents():
    data = builtin_dataset()  # C = 1.1
    table = direct_distance_scaling(data, "ball", 0.5, [1, 2, 3, 4, 5, 6, 7, 8])
    assert list(table.condition_holds) == [True] * 4 + [False] * 4
    np.testing.assert_allclose(table.local_exponent[:3], -0.5, atol=1e-12)
    assert np.all(table.expected[4:] > table.paper_value[4:])
    gauss = direct_distance_scaling(data, "gaussian", 0.5, [1, 10, 100, 1000, 10000])
    assert not gauss.condition_holds.any()
    assert gauss.local_exponent[-1] > -0.05  # flattens towards the constant sigma sqrt(2/pi)
    with pytest.raises(InputError, match="increasing"):
        direct_distance_scaling(data, "ball", 0.5, [3, 2])


@pytest.mark.parametrize("law", ["ball", "cube", "gaussian"])
def test_expected_first_step_and_path_length_match_simulation(law):
    data = builtin_dataset()
    K, lr, scale = 4, 0.1, 0.5  # rho = -0.5: GD overshoots, path = 3 D0
    rng_W0 = sample(law, scale, 1500, K, 1, 9)
    dyn = lnn_dynamics(data, K, lr)
    first, paths, truncated = [], [], []
    T = dyn.halting_time(1e-3)
    for W0 in rng_W0:
        W = W0.copy()
        path = 0.0
        for t in range(40):  # 0.5**40: the rest of the path is below 1e-12 D0
            grad = np.full_like(W, 2.0 / data.n * float(np.sum((W.sum() * data.x - data.y) * data.x)))
            step = lr * grad
            if t == 0:
                first.append(np.linalg.norm(step))
            path += np.linalg.norm(step)
            if t == T - 1:
                truncated.append(path)
            W = W - step
        paths.append(path)
    for values, expected in [
        (first, expected_first_step(data, K, lr, law, scale)),
        (paths, expected_path_length(data, K, lr, law, scale)),
        (truncated, expected_path_length(data, K, lr, law, scale, eps=1e-3)),
    ]:
        mean, half = mean_with_ci(values)
        assert expected == pytest.approx(mean, abs=half)
    assert expected_path_length(data, 6, lr, law, scale) == math.inf


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: expected_direct_distance(d, 2, "uniform", 1.0), "valid laws: ball, cube, gaussian"),
        (lambda d: expected_direct_distance(d, 2, "ball", 0.0), "scale"),
        (lambda d: expected_direct_distance(d, 0, "ball", 1.0), "width"),
        (lambda d: expected_first_step(builtin_dataset(3), 2, 0.1, "ball", 1.0), "single rate"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(InputError, match=message):
        call(builtin_dataset())


def test_cube_rank_one_vector_input_is_exact_inside_the_paper_condition():
    """Rank-1 vector input, cube law, hyperplane outside the cube (|c| >= K R ||u_1||_1): D0 never changes
    sign, so E[D0] = |c|/sqrt(K) exactly. Before the fix this case fell through to the seeded Monte Carlo
    estimate (0.94853 vs the exact 0.94868), labelled 'no closed form' next to 'paper's formula exact'."""
    x = np.array([0.5, 1.0, 1.5, 2.0])
    data = RegressionData(np.column_stack([x, 2 * x]), 3 * x)  # rank 1, u_1 = (1, 2)/sqrt 5
    result = direct_distance_expectation(data, 2, "cube", 0.3)
    assert result.paper_condition and result.method == "closed form" and result.abs_error == 0.0
    assert result.value == result.paper_value
    mean, half = mean_with_ci(brute_d0(data, "cube", 0.3, 2))
    assert result.value == pytest.approx(mean, abs=half)
    outside = direct_distance_expectation(data, 6, "cube", 0.3)  # 6 * 0.3 * 3/sqrt 5 > |c|
    assert not outside.paper_condition and outside.method.startswith("monte carlo estimate")
