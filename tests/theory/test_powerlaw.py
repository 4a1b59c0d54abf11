"""Power-law fits: recovery of planted parameters, optimality, bootstrap intervals, input errors."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overparam_theory.errors import InputError
from overparam_theory.powerlaw import (
    bootstrap_power_law,
    fit_dataset_size_law,
    fit_power_law,
    student_t_quantile,
)

SIZES = np.geomspace(1e2, 1e7, 11)


def log_rss(M, y, a, k, b):
    return float(np.sum((np.log(y) - np.log(a * M ** (-k) + b)) ** 2))


def planted(a, k, b_ratio, noise, seed, repeats=3):
    """Points of a·M^-k + b with b = b_ratio·(power term at the largest M), log-normal noise."""
    M = np.repeat(SIZES, repeats)
    b = b_ratio * a * SIZES[-1] ** (-k)
    rng = np.random.default_rng(seed)
    y = (a * M ** (-k) + b) * np.exp(noise * rng.standard_normal(len(M)))
    return M, y, b


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=st.floats(1e-2, 1e5),
    k=st.floats(0.15, 1.5),
    b_ratio=st.sampled_from([0.0, 0.3, 1.0, 3.0]),
)
def test_offset_fit_recovers_noise_free_parameters(a, k, b_ratio):
    M, y, b = planted(a, k, b_ratio, noise=0.0, seed=0, repeats=1)
    fit = fit_power_law(M, y)
    assert fit.rss_log < 1e-12
    assert fit.k == pytest.approx(k, rel=1e-4, abs=1e-5)
    assert fit.a == pytest.approx(a, rel=1e-3)
    assert fit.b == pytest.approx(b, rel=1e-3, abs=1e-6 * float(y.min()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=st.floats(1e-1, 1e4),
    k=st.floats(0.2, 1.2),
    b_ratio=st.sampled_from([0.0, 0.5, 2.0]),
    noise=st.floats(0.001, 0.05),
    seed=st.integers(0, 2**16),
)
def test_offset_fit_is_at_least_as_good_as_the_truth_and_close_to_it(a, k, b_ratio, noise, seed):
    M, y, b = planted(a, k, b_ratio, noise, seed)
    fit = fit_power_law(M, y)
    # the optimiser must not stop at a worse point than the planted parameters
    assert fit.rss_log <= log_rss(M, y, a, k, b) * (1 + 1e-9) + 1e-14
    assert fit.b >= 0 and fit.a > 0
    # noise is small relative to the curve's 5-decade range: the exponent is well determined
    assert abs(fit.k - k) < 0.15


@settings(max_examples=30, deadline=None)
@given(a=st.floats(1e-3, 1e6), k=st.floats(-1.0, 2.0), noise=st.floats(0.0, 0.1), seed=st.integers(0, 999))
def test_pure_power_law_is_the_log_log_regression_line(a, k, noise, seed):
    M, y, _ = planted(a, k, 0.0, noise, seed)
    fit = fit_power_law(M, y, offset=False)
    slope, intercept = np.polyfit(np.log(M), np.log(y), 1)
    assert fit.b == 0.0
    assert fit.k == pytest.approx(-slope, rel=1e-9, abs=1e-9)
    assert math.log(fit.a) == pytest.approx(intercept, rel=1e-9, abs=1e-8)
    if noise == 0.0:
        assert fit.k == pytest.approx(k, abs=1e-9)


def test_predict_evaluates_the_fitted_curve():
    M, y, _ = planted(5.0, 0.5, 1.0, 0.0, 0)
    fit = fit_power_law(M, y)
    np.testing.assert_allclose(fit.predict(M), y, rtol=1e-6)


def test_non_finite_and_non_positive_points_are_dropped_and_counted():
    M, y, _ = planted(5.0, 0.5, 0.0, 0.0, 0, repeats=1)
    M_bad = np.concatenate([M, [np.nan, 1e3, 1e4, -5.0]])
    y_bad = np.concatenate([y, [1.0, np.inf, 0.0, 2.0]])
    fit = fit_power_law(M_bad, y_bad, offset=False)
    assert fit.n_dropped == 4 and fit.n_points == len(M)
    assert fit.k == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize(
    ("M", "y", "offset", "message"),
    [
        ([1.0, 2.0], [1.0, 0.5], True, "at least 3"),
        ([1.0, np.nan, 3.0], [1.0, 0.5, 0.2], True, "at least 3"),
        ([1.0], [1.0], False, "at least 2"),
        ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], True, "distinct"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], True, "same length"),
        ("abc", [1.0], True, "numbers"),
    ],
)
def test_bad_input_raises_one_line_input_error(M, y, offset, message):
    with pytest.raises(InputError, match=message) as info:
        fit_power_law(M, y, offset=offset)
    assert "\n" not in str(info.value)


def test_bootstrap_is_deterministic_and_covers_the_truth():
    M, y, b = planted(200.0, 0.6, 1.0, 0.03, seed=7, repeats=6)
    first = bootstrap_power_law(M, y, n_boot=300, seed=3)
    second = bootstrap_power_law(M, y, n_boot=300, seed=3)
    assert first == second
    assert first.bootstrap_method == "within-group"
    assert first.k_ci[0] <= 0.6 <= first.k_ci[1]
    assert first.a_ci[0] <= 200.0 <= first.a_ci[1]
    assert first.b_ci[0] <= b <= first.b_ci[1]
    assert first.k_ci[0] <= first.k <= first.k_ci[1]
    other_seed = bootstrap_power_law(M, y, n_boot=300, seed=4)
    assert other_seed.k_ci != first.k_ci


def test_bootstrap_interval_coverage_is_near_nominal():
    """Over independent noisy data sets, the 90% interval of k contains the truth most of the time."""
    hits = 0
    for seed in range(40):
        M, y, _ = planted(50.0, 0.4, 0.0, 0.05, seed=seed, repeats=5)
        fit = bootstrap_power_law(M, y, n_boot=200, seed=seed, level=0.9, offset=False)
        hits += fit.k_ci[0] <= 0.4 <= fit.k_ci[1]
    assert 28 <= hits <= 40  # binomial(40, 0.9): 28 is below the 0.1% quantile


def test_bootstrap_groups_resample_within_each_group():
    M, y, _ = planted(10.0, 0.5, 0.0, 0.05, seed=1, repeats=4)
    groups = np.arange(len(M)) % 4  # groups that span all sizes: each replicate keeps 11 sizes per group
    fit = bootstrap_power_law(M, y, groups=groups, n_boot=50, offset=False)
    assert fit.bootstrap_method == "within-group" and fit.n_boot == 50
    with pytest.raises(InputError, match="one label per point"):
        bootstrap_power_law(M, y, groups=groups[:-1], n_boot=50)


def test_bootstrap_without_repeats_falls_back_to_pairs():
    M, y, _ = planted(10.0, 0.5, 0.0, 0.05, seed=1, repeats=1)
    fit = bootstrap_power_law(M, y, n_boot=100, offset=False)
    assert fit.bootstrap_method == "pairs"
    assert fit.n_boot + fit.n_boot_failed == 100


@pytest.mark.parametrize("kwargs", [{"n_boot": 1}, {"level": 1.0}, {"level": 0.0}])
def test_bootstrap_rejects_bad_settings(kwargs):
    M, y, _ = planted(10.0, 0.5, 0.0, 0.05, seed=1)
    with pytest.raises(InputError):
        bootstrap_power_law(M, y, **kwargs)


@settings(max_examples=25, deadline=None)
@given(
    c=st.floats(1e-3, 1e3),
    alpha=st.floats(0.3, 1.7),
    k=st.floats(0.0, 1.0),
    noise=st.floats(0.0, 0.05),
    seed=st.integers(0, 999),
)
def test_dataset_size_law_recovers_alpha_and_k(c, alpha, k, noise, seed):
    D = np.repeat([1e5, 3e5, 1e6, 3e6], 6)
    M = np.tile(np.geomspace(1e3, 1e7, 6), 4)
    rng = np.random.default_rng(seed)
    steps = c * D**alpha / M**k * np.exp(noise * rng.standard_normal(len(D)))
    fit = fit_dataset_size_law(D, M, steps)
    tolerance = 1e-8 + 10 * noise
    assert fit.alpha == pytest.approx(alpha, abs=tolerance)
    assert fit.k == pytest.approx(k, abs=tolerance)
    if noise > 0:
        # <=: with noise at rounding level (Hypothesis tries 5e-324) the interval is a few ulps wide
        assert fit.alpha_ci[0] <= fit.alpha <= fit.alpha_ci[1]
    np.testing.assert_allclose(fit.predict(D, M), steps, rtol=0.5 if noise else 1e-8)


def test_dataset_size_law_says_whether_linear_in_d_holds():
    D = np.repeat([1e5, 1e6, 1e7], 5)
    M = np.tile(np.geomspace(1e3, 1e6, 5), 3)
    noise = np.exp(0.01 * np.random.default_rng(0).standard_normal(len(D)))
    linear = fit_dataset_size_law(D, M, 3 * D / M**0.5 * noise)
    assert linear.linear_in_d_consistent is True
    assert linear.paper_k == pytest.approx(0.5, abs=0.02)
    assert linear.rss_log <= linear.paper_rss_log < 2 * linear.rss_log
    sublinear = fit_dataset_size_law(D, M, 3 * D**0.6 / M**0.5 * noise)
    assert sublinear.linear_in_d_consistent is False
    assert sublinear.alpha == pytest.approx(0.6, abs=0.02)
    assert sublinear.paper_rss_log > 100 * sublinear.rss_log


def test_dataset_size_law_input_errors():
    with pytest.raises(InputError, match="dataset sizes"):
        fit_dataset_size_law([1e5] * 4, [1e3, 1e4, 1e5, 1e6], [4.0, 3.0, 2.0, 1.0])
    with pytest.raises(InputError, match="together"):
        fit_dataset_size_law([1e5, 1e6, 1e7], [1e3, 1e4, 1e5], [4.0, 3.0, 2.0])
    three = fit_dataset_size_law([1e5, 1e6, 1e5], [1e3, 1e4, 1e4], [4.0, 3.0, 2.0])
    assert three.alpha_ci is None and three.linear_in_d_consistent is None and three.notes


def test_student_t_quantile_matches_known_values():
    assert student_t_quantile(0.975, 10) == pytest.approx(2.228138852, rel=1e-8)
    assert student_t_quantile(0.975, math.inf) == pytest.approx(1.959963985, rel=1e-8)


@pytest.fixture(scope="module")
def flat_fit():
    """Bootstrap of flat, noisy data (no trend in M), computed with warnings as errors (before the fix:
    overflow / invalid-value RuntimeWarnings). Some replicates fit a step with k ~ 20-150, where
    a = exp(log a) overflows: seed 1 gives 17 such replicates of 60 (found by a scan of seeds)."""
    M = np.repeat([1e4, 3e4, 1e5, 3e5, 1e6, 3e6], 3)
    y = 1000 * np.exp(0.2 * np.random.default_rng(1).standard_normal(len(M)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return bootstrap_power_law(M, y, n_boot=60, seed=0)


def test_bootstrap_drops_non_finite_replicates_without_warnings(flat_fit):
    fit = flat_fit
    assert fit.n_boot_nonfinite > 0  # the scenario is really exercised
    assert fit.n_boot + fit.n_boot_failed == 60 and fit.n_boot_nonfinite <= fit.n_boot_failed
    for ci in (fit.a_ci, fit.k_ci, fit.b_ci):  # before the fix: a_ci = (778, nan), 18 RuntimeWarnings
        assert all(math.isfinite(v) for v in ci)
    reps = fit.replicate_array()
    assert reps.shape == (fit.n_boot, 3) and np.all(np.isfinite(reps))
    assert fit.k_ci == pytest.approx(tuple(np.percentile(reps[:, 1], [2.5, 97.5])), rel=1e-12)
    # far outside the data a runaway replicate overflows: inf, not NaN, and no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = fit.band([1.0, 1e5])
        far = fit.predict(1e-30)
    assert np.all(~np.isnan(low)) and np.all(~np.isnan(high)) and not np.isnan(far)


def test_bootstrap_band_is_the_percentile_band_of_the_replicate_curves():
    M, y, _ = planted(200.0, 0.6, 1.0, 0.03, seed=7, repeats=4)
    fit = bootstrap_power_law(M, y, n_boot=100, seed=1)
    grid = np.geomspace(1e2, 1e7, 5)
    low, high = fit.band(grid)
    curves = np.array([a * grid ** (-k) + b for a, k, b in fit.replicates])
    np.testing.assert_allclose(low, np.percentile(curves, 2.5, axis=0), rtol=1e-10)
    np.testing.assert_allclose(high, np.percentile(curves, 97.5, axis=0), rtol=1e-10)
    assert np.all(low <= fit.predict(grid) * (1 + 1e-9)) and np.all(fit.predict(grid) <= high * (1 + 1e-9))
    wider = fit.band(grid, level=0.99)
    assert np.all(wider[0] <= low) and np.all(wider[1] >= high)
    assert fit_power_law(M, y).band(grid) is None  # a plain fit has no replicates
