"""The full-weight-space Monte Carlo agrees with the closed forms of overparam_theory.lnn.

Expectations are checked against the MC mean within Z_TOL = 4.5 standard errors (lnn_brute_force.Z_TOL: a
false alarm has probability ~6.8e-6 per check; E[D0], the first step and the path length are the same
per-trial D0 times constants, so one event per example); quantities that are exact per trial (halting
time, D0 = dist(W0, set), angles) are checked trial by trial.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lnn_brute_force import Z_TOL

from overparam_theory import lnn
from overparam_theory.datasets import RegressionData, builtin_dataset
from overparam_theory.init_laws import sample
from overparam_theory.montecarlo import (
    CONVERGED,
    DIVERGED,
    HALTING_TOLERANCE,
    run_monte_carlo,
    width_seed_sequence,
)


def initial_weights(result, options, width):
    """The W0 the run drew for ``width`` (same stream as run_monte_carlo)."""
    rng = np.random.default_rng(width_seed_sequence(options["seed"], width))
    return sample(options["init"], options["scale"], options["n_trials"], width, options["input_dim"], rng)


def assert_within_ci(summary, expected, what):
    standard_error = summary.std / math.sqrt(summary.n)
    assert abs(summary.mean - expected) <= Z_TOL * standard_error + 1e-12 * abs(expected), (
        f"{what}: MC {summary.mean} ± {standard_error} vs closed form {expected}"
    )


def scalar_data(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 2.0, n) * rng.choice([-1.0, 1.0], n)
    y = rng.uniform(-1.5, 1.5) * x + 0.3 * rng.normal(size=n)
    return RegressionData(x, y)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 6),
    law=st.sampled_from(["ball", "cube", "gaussian"]),
    scale=st.floats(0.1, 2.0),
    lr_factor=st.floats(0.05, 0.95),
    n_points=st.integers(2, 6),
    seed=st.integers(0, 10_000),
)
def test_scalar_input_monte_carlo_matches_closed_forms(width, law, scale, lr_factor, n_points, seed):
    data = scalar_data(seed, n_points)
    m2 = float(np.mean(data.x**2))
    lr = lr_factor / (width * m2)  # |rho| < 1: converges
    eps = 1e-3
    # where |rho|^T lands on eps to rounding level (rho = ±0.1: T = 3 exactly) the simulated distance,
    # rounded at the size of the weights, may fall on either side: that tie has its own test below
    rho = 1.0 - 2.0 * lr_factor
    assume(rho == 0.0 or abs(math.log(eps) / math.log(abs(rho)) % 1.0 - 0.5) < 0.5 - 1e-9)
    result = run_monte_carlo(data, [width], lr=lr, init=law, scale=scale, n_trials=1500, seed=seed, eps=eps)
    mc = result[width]
    dyn = lnn.lnn_dynamics(data, width, lr)
    assert dyn.converges and mc.converges

    # per trial: the GD limit is the projection, so D0 = dist(W0, set); T is init-independent
    W0 = initial_weights(mc, result.options, width)
    exact_d0 = dyn.minimiser.distance(W0)
    np.testing.assert_allclose(mc.distance, exact_d0, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(mc.halting_time, dyn.halting_time(eps))
    angles = dyn.mean_angles(eps)
    for mine, theirs in (("mean_as", "A_s"), ("mean_ae", "A_e"), ("mean_ae_printed", "paper_A_e")):
        expected = angles[theirs]
        if math.isnan(expected):
            assert np.all(np.isnan(getattr(mc, mine)))
        else:
            # 0 and pi sit where arccos is ill-conditioned: a relative rounding error δ of the cosine
            # shows as √(2δ), larger for a trial whose D0 is small against its weights. Per trial a loose
            # bound (a wrong sign would be off by pi), on average over the trials a tight one.
            deviation = np.abs(getattr(mc, mine) - expected)
            assert deviation.max() < 1e-3 and deviation.mean() < 1e-5, (mine, deviation.max())

    # expectations over the init law
    assert_within_ci(mc.summary("distance"), lnn.expected_direct_distance(data, width, law, scale), "E[D0]")
    first = lnn.expected_first_step(data, width, lr, law, scale)
    assert_within_ci(mc.summary("first_step"), first, "E[first step]")
    path = lnn.expected_path_length(data, width, lr, law, scale, eps)
    assert_within_ci(mc.summary("path_length"), path, "E[path length over the halting window]")


@pytest.mark.parametrize("law", ["ball", "gaussian", "cube"])
def test_vector_input_halting_time_and_distance_per_trial(law):
    data = builtin_dataset(3)  # Sigma_xx = diag(1.875, 1.25, 0.625): three rates
    width, lr, eps = 3, 0.05, 1e-3
    result = run_monte_carlo(data, [width], lr=lr, init=law, scale=0.7, n_trials=3000, seed=4, eps=eps)
    mc = result[width]
    dyn = lnn.lnn_dynamics(data, width, lr)
    W0 = initial_weights(mc, result.options, width)
    np.testing.assert_allclose(mc.distance, dyn.minimiser.distance(W0), rtol=1e-6)
    exact_halting = [dyn.halting_time_for(W0[i], eps) for i in range(200)]
    np.testing.assert_array_equal(mc.halting_time[:200], exact_halting)
    low, high = dyn.halting_time_bounds(eps)
    assert np.all((low <= mc.halting_time) & (mc.halting_time <= high))
    assert_within_ci(mc.summary("distance"), lnn.expected_direct_distance(data, width, law, 0.7), "E[D0]")


def test_divergence_width_and_fastest_width_match_the_simulation():
    data = builtin_dataset()
    lr, max_width = 0.1, 8
    result = run_monte_carlo(data, range(1, max_width + 1), lr=lr, n_trials=300, seed=2)
    first_bad = lnn.divergence_width(data, lr)
    for mc in result.widths:
        if mc.width < first_bad:
            assert mc.count(CONVERGED) == mc.n_trials
        else:
            assert mc.count(DIVERGED) == mc.n_trials
    fastest = lnn.fastest_width(data, lr, max_width)
    halting = {mc.width: mc.summary("halting_time").mean for mc in result.widths if mc.converges}
    assert halting[fastest] == min(halting.values())


def test_inverse_width_learning_rate_removes_the_width_effect_on_halting_time():
    data = builtin_dataset()
    result = run_monte_carlo(data, [1, 2, 4, 8, 16], lr=0.2, lr_scaling="inverse-width", n_trials=200)
    halting = {mc.summary("halting_time").mean for mc in result.widths}
    assert len(halting) == 1
    assert halting.pop() == lnn.lnn_dynamics(data, 1, 0.2).halting_time(1e-3)


def test_halting_slack_is_the_closed_forms():
    assert HALTING_TOLERANCE == lnn.HALTING_TOLERANCE
    # rho = 0.1 exactly halts after 3 steps at eps = 1e-3 in both (not 4 through rounding)
    data = RegressionData(np.array([1.0, 1.0]), np.array([2.0, 2.0]))  # m2 = 1
    result = run_monte_carlo(data, [1], lr=0.45, n_trials=50, eps=1e-3)  # rho = 1 - 0.9 = 0.1
    assert lnn.lnn_dynamics(data, 1, 0.45).halting_time(1e-3) == 3
    assert np.all(result[1].halting_time == 3)
