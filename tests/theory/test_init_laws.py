"""Sampling of the initialisation laws against their distributions (fixed seeds + Hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from overparam_theory.errors import InputError
from overparam_theory.init_laws import INIT_LAW_NAMES, InitLaw, get_init_law, sample


@settings(max_examples=30, deadline=None)
@given(
    law=st.sampled_from(INIT_LAW_NAMES),
    scale=st.floats(1e-3, 1e3),
    n=st.integers(1, 20),
    width=st.integers(1, 9),
    dim=st.integers(1, 4),
    seed=st.integers(0, 2**32),
)
def test_shape_support_and_determinism(law, scale, n, width, dim, seed):
    w = sample(law, scale, n, width, dim, seed)
    assert w.shape == (n, width, dim) and w.dtype == np.float64 and np.all(np.isfinite(w))
    assert np.array_equal(w, sample(law, scale, n, width, dim, np.random.default_rng(seed)))
    if law == "ball":
        assert np.all(np.linalg.norm(w.reshape(n, -1), axis=1) <= scale * (1 + 1e-12))
    if law == "cube":
        assert np.all(np.abs(w) <= scale)


@pytest.mark.parametrize("law", INIT_LAW_NAMES)
@pytest.mark.parametrize(("width", "dim"), [(1, 1), (3, 2), (40, 1)])
def test_coordinate_moments(law, width, dim):
    scale = 1.7
    w = sample(law, scale, 40_000, width, dim, 12345).reshape(40_000, -1)
    var = InitLaw(law, scale).coordinate_variance(width, dim)
    # Means: 5 standard errors; variances: 5 standard errors of the sample variance (4th moment bound).
    se_mean = np.sqrt(var / w.shape[0])
    assert np.all(np.abs(w.mean(axis=0)) < 5 * se_mean)
    emp_var = (w**2).mean(axis=0)
    se_var = np.sqrt(((w**2 - var) ** 2).mean(axis=0) / w.shape[0])
    assert np.all(np.abs(emp_var - var) < 5 * se_var + 1e-15)
    if w.shape[1] > 1:  # coordinates uncorrelated (ball: exchangeable and sign-symmetric)
        cov = (w[:, 0] * w[:, 1]).mean()
        assert abs(cov) < 5 * var / np.sqrt(w.shape[0])


@pytest.mark.parametrize("n_weights", [1, 2, 5, 64])
def test_ball_radius_and_direction_laws(n_weights):
    R = 0.3
    w = sample("ball", R, 20_000, n_weights, 1, 7).reshape(20_000, -1)
    radius = np.linalg.norm(w, axis=1) / R
    # P(|W| <= rR) = r^N  =>  (|W|/R)^N ~ U(0, 1)
    assert stats.kstest(radius**n_weights, "uniform").pvalue > 1e-3
    if n_weights >= 2:
        # Direction uniform on the sphere: the first coordinate of the unit vector, squared, is
        # Beta(1/2, (N-1)/2).
        u1 = (w[:, 0] / np.linalg.norm(w, axis=1)) ** 2
        assert stats.kstest(u1, stats.beta(0.5, (n_weights - 1) / 2).cdf).pvalue > 1e-3


def test_cube_and_gaussian_marginals_are_the_named_laws():
    w = sample("cube", 2.0, 5000, 3, 1, 3).ravel()
    assert stats.kstest(w, stats.uniform(-2.0, 4.0).cdf).pvalue > 1e-3
    g = sample("gaussian", 0.5, 5000, 3, 1, 3).ravel()
    assert stats.kstest(g, stats.norm(0, 0.5).cdf).pvalue > 1e-3


def test_unknown_law_lists_valid_names():
    with pytest.raises(InputError, match="valid laws: ball, cube, gaussian"):
        get_init_law("uniform")
    assert get_init_law(" Ball ", 2.0) == InitLaw("ball", 2.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale": 0.0},
        {"scale": -1.0},
        {"scale": float("nan")},
        {"n_trials": 0},
        {"width": 1.5},
        {"input_dim": 0},
        {"rng": None},
        {"rng": -3},
    ],
)
def test_sample_validates(kwargs):
    args = {"law": "ball", "scale": 1.0, "n_trials": 2, "width": 2, "input_dim": 1, "rng": 0} | kwargs
    with pytest.raises(InputError):
        sample(**args)
