"""The vectorised Monte Carlo against a brute-force per-trial loop, determinism, outcomes and input errors."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from overparam_theory.datasets import RegressionData, builtin_dataset
from overparam_theory.errors import InputError
from overparam_theory.init_laws import sample
from overparam_theory.montecarlo import (
    CONVERGED,
    DIVERGED,
    NOT_CONVERGED,
    LossMoments,
    mean_confidence_interval,
    reference_trial,
    run_monte_carlo,
    simulate_width,
)

ANGLES = ("mean_as", "mean_ae", "mean_ae_printed")
VALUES = ("distance", "initial_distance", "first_step", "path_length", "mean_step", "final_loss")


def assert_matches_reference(result, W0, data, lr, a0=None, **kwargs):
    """Every per-trial output of the vectorised run equals the plain loop's, to float precision."""
    for i in range(W0.shape[0]):
        ref = reference_trial(W0[i], data, lr, a0=None if a0 is None else a0[i], **kwargs)
        assert result.status[i] == ref["status"]
        assert result.steps[i] == ref["steps"]
        got = result.halting_time[i]
        assert (math.isnan(got) and math.isnan(ref["halting_time"])) or got == ref["halting_time"]
        for name in VALUES:
            np.testing.assert_allclose(
                getattr(result, name)[i], ref[name], rtol=1e-9, atol=1e-12, err_msg=name
            )
        for name in ANGLES:
            # arccos near ±1 turns a relative error δ of the cosine into √(2δ); at the end of the halting
            # window the vectors are ~eps shorter than the weights, so δ ~ 1e-16/eps: compare to 1e-5 rad
            np.testing.assert_allclose(getattr(result, name)[i], ref[name], rtol=0, atol=1e-5, err_msg=name)


def random_data(rng, n, d):
    x = rng.normal(size=(n, d)) if d > 1 else rng.normal(size=n)
    y = (x @ rng.normal(size=d) if d > 1 else 1.3 * x) + 0.3 * rng.normal(size=n)
    return RegressionData(x, y)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 5),
    input_dim=st.integers(1, 3),
    n_points=st.integers(1, 6),
    law=st.sampled_from(["ball", "cube", "gaussian"]),
    scale=st.floats(0.05, 2.0),
    lr_factor=st.floats(0.05, 1.4),
    seed=st.integers(0, 10_000),
)
def test_fixed_second_layer_matches_the_plain_loop(width, input_dim, n_points, law, scale, lr_factor, seed):
    # |rho| = 1 exactly (lr_factor 1) oscillates forever: W_t returns to W_0 up to rounding, so A_s is
    # the angle of a rounding-noise vector and no two implementations agree on it
    assume(abs(lr_factor - 1.0) > 1e-3)
    # the slowest mode contracts by rho = 1 - 2 lr_factor; where |rho|^t lands on a threshold (eps = 1e-3,
    # final tolerance 1e-8) to rounding level, e.g. rho = 0.1, which side a run stops on is decided by
    # rounding, differently in the two implementations
    # (a diverging run stops where the distance has grown 1e6-fold: the same for log10 = 6)
    log_rho = math.log10(abs(1.0 - 2.0 * lr_factor)) if lr_factor != 0.5 else -math.inf
    levels = (-3.0, -8.0, 6.0)
    assume(all(abs(t * log_rho - level) > 1e-9 for t in range(1, 3001) for level in levels))
    rng = np.random.default_rng(seed)
    data = random_data(rng, n_points, input_dim)
    lam = LossMoments.from_data(data).largest_eigenvalue
    lr = lr_factor / (width * lam)  # converges for lr_factor < 1, diverges above (rho = 1 - 2 lr K lam)
    W0 = sample(law, scale, 3, width, input_dim, rng)
    result = simulate_width(W0, data, lr, max_steps=3000, chunk_elements=2 * width * input_dim)
    assert_matches_reference(result, W0, data, lr, max_steps=3000)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 4),
    input_dim=st.integers(1, 2),
    ones=st.booleans(),
    lr_factor=st.floats(0.02, 0.4),
    seed=st.integers(0, 10_000),
)
def test_trainable_second_layer_matches_the_plain_loop(width, input_dim, ones, lr_factor, seed):
    rng = np.random.default_rng(seed)
    data = random_data(rng, 5, input_dim)
    lr = lr_factor / (LossMoments.from_data(data).largest_eigenvalue * (width + 1))
    W0 = sample("gaussian", 0.5, 2, width, input_dim, rng)
    a0 = np.ones((2, width)) if ones else rng.normal(size=(2, width))
    result = simulate_width(W0, data, lr, a0=a0, train_second_layer=True, max_steps=1500)
    # a run that neither converges nor diverges within the cap may be chaotic (the loss is not
    # quadratic in (W, a)): rounding differences then grow and no two implementations agree
    assume(np.all(result.status != NOT_CONVERGED))
    assert_matches_reference(result, W0, data, lr, a0=a0, train_second_layer=True, max_steps=1500)


def test_fixed_steps_mode_matches_the_plain_loop_and_runs_every_step():
    # rates 1 - 2 lr K lambda = 0.94 and 0.98: after 60 steps the iterate is still far above rounding level
    # (past it, A_e would be the angle between rounding-noise vectors, different in any two implementations)
    data = builtin_dataset(2)
    W0 = sample("ball", 0.5, 4, 3, 2, 5)
    result = simulate_width(W0, data, 0.005, fixed_steps=60)
    assert np.all(result.steps == 60)
    assert_matches_reference(result, W0, data, 0.005, fixed_steps=60)


def test_same_seed_gives_identical_numbers_and_widths_are_independent_streams():
    data = builtin_dataset()
    first = run_monte_carlo(data, [1, 2, 3, 4], n_trials=500, seed=11)
    again = run_monte_carlo(data, [1, 2, 3, 4], n_trials=500, seed=11)
    alone = run_monte_carlo(data, [3], n_trials=500, seed=11)
    other = run_monte_carlo(data, [3], n_trials=500, seed=12)
    for name in ("distance", "halting_time", "path_length", "mean_as", "mean_ae", "status", "steps"):
        for a, b in zip(first.widths, again.widths, strict=True):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        np.testing.assert_array_equal(getattr(first[3], name), getattr(alone[3], name))
    assert not np.array_equal(first[3].distance, other[3].distance)


def test_chunking_does_not_change_the_results():
    data = builtin_dataset(3)
    W0 = sample("gaussian", 0.4, 300, 4, 3, 2)
    whole = simulate_width(W0, data, 0.04, chunk_elements=10**9)
    pieces = simulate_width(W0, data, 0.04, chunk_elements=7 * 12)
    np.testing.assert_array_equal(whole.status, pieces.status)
    np.testing.assert_array_equal(whole.halting_time, pieces.halting_time)
    np.testing.assert_allclose(whole.distance, pieces.distance, rtol=1e-12)
    np.testing.assert_allclose(whole.mean_ae_printed, pieces.mean_ae_printed, rtol=1e-9)


def test_divergence_is_recorded_not_raised():
    data = builtin_dataset()  # m2 = 1.875: at lr 0.1 widths >= 6 diverge (rho = 1 - 0.375 K)
    result = run_monte_carlo(data, [5, 6], n_trials=200, seed=0)
    assert result[5].converges and result[5].count(CONVERGED) == 200
    wide = result[6]
    assert wide.count(DIVERGED) == 200 and not wide.converges
    assert np.all(np.isnan(wide.halting_time))
    assert math.isnan(wide.summary("distance").mean) and wide.summary("distance").n_excluded == 200
    huge = simulate_width(sample("ball", 0.5, 5, 2, 1, 0), data, 1e6)
    assert np.all(huge.status == DIVERGED)


def test_step_cap_gives_not_converged_status():
    data = builtin_dataset()
    result = run_monte_carlo(data, [1], n_trials=50, lr=1e-4, max_steps=100)
    assert np.all(result[1].status == NOT_CONVERGED) and np.all(result[1].steps == 100)
    assert np.all(np.isnan(result[1].halting_time))
    assert math.isnan(result[1].summary("halting_time").mean)


def test_a_start_on_the_minimiser_set_halts_at_zero():
    data = builtin_dataset()  # C = 1.1: w = (0.5, 0.6) lies on w1 + w2 = C
    result = simulate_width(np.array([[[0.5], [0.6]]]), data, 0.1)
    assert result.status[0] == CONVERGED and result.halting_time[0] == 0
    assert result.distance[0] < 1e-12 and math.isnan(result.mean_step[0])


def test_scalar_fixed_net_angles_and_path_are_those_of_a_straight_line():
    """Scalar input, rho in (0, 1): GD runs straight to the projection: A_s = pi, A_e = 0."""
    data = builtin_dataset()
    W0 = sample("ball", 0.5, 100, 2, 1, 3)  # rho = 1 - 0.75 = 0.25
    result = simulate_width(W0, data, 0.1, eps=1e-6)
    np.testing.assert_allclose(result.mean_as, math.pi, atol=1e-5)  # arccos conditioning, see above
    np.testing.assert_allclose(result.mean_ae, 0.0, atol=1e-5)
    # the halting window stops short of the limit: path = D0 (1 - rho^T)
    np.testing.assert_allclose(
        result.path_length, result.distance * (1 - 0.25**result.halting_time), rtol=1e-9
    )
    np.testing.assert_allclose(result.distance, result.initial_distance, rtol=1e-9)


def test_rank_deficient_data_distance_ignores_the_null_space():
    x = np.array([[1.0, 2.0], [2.0, 4.0], [-1.0, -2.0]])  # rank 1: second column = 2 x first
    data = RegressionData(x, np.array([1.0, 2.2, -0.9]))
    W0 = sample("gaussian", 1.0, 20, 3, 2, 1)
    result = simulate_width(W0, data, 0.02)
    assert np.all(result.status == CONVERGED)
    assert_matches_reference(result, W0[:3], data, 0.02)
    np.testing.assert_allclose(result.distance, result.initial_distance, rtol=1e-7)


def test_trainable_second_layer_reaches_the_least_squares_loss():
    data = builtin_dataset()
    result = run_monte_carlo(
        data, [1, 3], n_trials=200, lr=0.05, train_second_layer=True, second_layer_init="law"
    )
    minimum = LossMoments.from_data(data).loss_min
    for width_result in result.widths:
        converged = width_result.status == CONVERGED
        assert converged.mean() > 0.9
        np.testing.assert_allclose(width_result.final_loss[converged], minimum, rtol=1e-6)


def test_confidence_interval_is_the_student_t_interval():
    from scipy import stats

    values = np.random.default_rng(0).exponential(size=40)
    summary = mean_confidence_interval(np.append(values, [np.nan, np.inf]))
    low, high = stats.t.interval(0.95, 39, loc=values.mean(), scale=stats.sem(values))
    assert summary.n == 40 and summary.n_excluded == 2
    assert summary.low == pytest.approx(low, rel=1e-12) and summary.high == pytest.approx(high, rel=1e-12)
    single = mean_confidence_interval(np.array([1.0]))
    assert single.mean == 1.0 and math.isnan(single.low)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": [0]}, "width"),
        ({"widths": [2, 2]}, "distinct"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"n_trials": 0}, "n_trials"),
        ({"init": "foo"}, "init law"),
        ({"scale": -1.0}, "scale"),
        ({"eps": 1.5}, "eps"),
        ({"seed": -1}, "seed"),
        ({"lr_scaling": "sqrt"}, "lr scaling"),
        ({"second_layer_init": "zeros"}, "second-layer init"),
        ({"max_steps": 0}, "max_steps"),
    ],
)
def test_run_monte_carlo_rejects_bad_input(kwargs, message):
    arguments = {"widths": [1, 2], "n_trials": 10} | kwargs
    widths = arguments.pop("widths")
    with pytest.raises(InputError, match=message) as info:
        run_monte_carlo(builtin_dataset(), widths, **arguments)
    assert "\n" not in str(info.value)


def test_simulate_width_rejects_bad_weights():
    data = builtin_dataset()
    with pytest.raises(InputError, match="shape"):
        simulate_width(np.zeros((3, 2)), data, 0.1)
    with pytest.raises(InputError, match="input_dim"):
        simulate_width(np.zeros((3, 2, 2)), data, 0.1)
    with pytest.raises(InputError, match="finite"):
        simulate_width(np.full((3, 2, 1), np.nan), data, 0.1)
    with pytest.raises(InputError, match="train_second_layer"):
        simulate_width(np.zeros((3, 2, 1)), data, 0.1, a0=np.ones((3, 2)))


def test_rank_rule_is_the_closed_forms_for_nearly_collinear_inputs():
    """Columns collinear up to 1e-9: Sigma_xx has eigenvalues ~0.29 and ~4e-19, a resolved (if useless)
    direction by the rank rule of the closed forms and of the reference loop (singular values of X above
    s_max·max(n, d)·machine eps). The simulator must use the same minimiser set, or its distances (and
    verdicts) contradict theirs. Before the fix it dropped the direction (an eigenvalue threshold on
    Sigma_xx, which squares the condition number): D0 ~ 1 instead of ~2.6e8."""
    from overparam_theory.lnn import lnn_dynamics, minimiser

    rng = np.random.default_rng(0)
    x1 = rng.normal(size=6)
    data = RegressionData(np.column_stack([x1, x1 + 1e-9 * rng.normal(size=6)]), rng.normal(size=6))
    mini = minimiser(data)
    assert mini.rank == 2
    W0 = sample("gaussian", 1.0, 3, 2, 2, 0)
    result = simulate_width(W0, data, 0.05, max_steps=50)
    np.testing.assert_allclose(result.initial_distance, mini.distance(W0), rtol=1e-9)
    # rho of the tiny mode rounds to 1: neither the closed form nor the simulation converges
    assert not lnn_dynamics(data, 2, 0.05).converges
    assert np.all(result.status == NOT_CONVERGED)
    for i in range(2):  # its own solver (lstsq): least squares at condition ~1e9 agree to ~cond·eps
        reference = reference_trial(W0[i], data, 0.05, max_steps=50)
        assert reference["initial_distance"] == pytest.approx(result.initial_distance[i], rel=1e-5)
        assert reference["status"] == NOT_CONVERGED
