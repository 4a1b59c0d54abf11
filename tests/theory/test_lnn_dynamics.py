"""Exact LNN dynamics (lnn.py) against plain-loop GD in the full weight space."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lnn_brute_force import angle, as_columns, distance, gd, gradient, gradient_batch, hessian, loss

from overparam_theory.datasets import RegressionData, builtin_dataset
from overparam_theory.errors import InputError
from overparam_theory.lnn import (
    HALTING_TOLERANCE,
    divergence_width,
    fastest_width,
    lnn_dynamics,
    minimiser,
    scaled_lr,
)

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def scalar_data(draw, n_max=5):
    n = draw(st.integers(1, n_max))
    x = draw(st.lists(st.floats(-2, 2).filter(lambda v: abs(v) > 0.05), min_size=n, max_size=n))
    y = draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n))
    return RegressionData(np.array(x), np.array(y))


@st.composite
def vector_data(draw):
    d = draw(st.integers(2, 3))
    n = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if draw(st.booleans()) and d >= 2:  # a rank-deficient design now and then
        X[:, -1] = X[:, 0]
    return RegressionData(X, rng.normal(size=n))


def test_hessian_and_minimiser_match_brute_force():
    data = builtin_dataset(3)
    K = 4
    H = hessian(data.x, data.y, K)
    dyn = lnn_dynamics(data, K, 0.05)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(H))[::-1], dyn.hessian_eigenvalues, atol=1e-9)
    data1 = builtin_dataset()
    H1 = hessian(data1.x, data1.y, 5)
    eig = np.sort(np.linalg.eigvalsh(H1))[::-1]
    assert eig[0] == pytest.approx(2 * 1.875 * 5) and np.allclose(eig[1:], 0, atol=1e-9)


@FAST
@given(data=st.one_of(scalar_data(), vector_data()), K=st.integers(1, 5), seed=st.integers(0, 2**31))
def test_distance_and_projection_match_brute_force(data, K, seed):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(K, data.input_dim))
    mini = minimiser(data)
    H_pinv = np.linalg.pinv(hessian(data.x, data.y, K), rcond=1e-10)
    assert mini.distance(W) == pytest.approx(distance(data.x, data.y, W, H_pinv), rel=1e-7, abs=1e-9)
    P = mini.project(W)
    # The projection minimises the loss and is the nearest such point.
    best = loss(data.x, data.y, W - (H_pinv @ gradient(data.x, data.y, W).ravel()).reshape(W.shape))
    assert loss(data.x, data.y, P) == pytest.approx(best, rel=1e-8, abs=1e-10)
    assert np.linalg.norm(gradient(data.x, data.y, P)) < 1e-8 * (1 + np.linalg.norm(W))
    if data.is_scalar:
        assert mini.C == pytest.approx(np.dot(data.x, data.y) / np.dot(data.x, data.x))
        assert mini.distance(W[:, 0]) == pytest.approx(abs(mini.C - W.sum()) / math.sqrt(K))


@FAST
@given(
    data=st.one_of(scalar_data(), vector_data()),
    K=st.integers(1, 6),
    lr_scale=st.floats(0.05, 1.2),
    seed=st.integers(0, 2**31),
)
def test_closed_form_trajectory_equals_plain_gd(data, K, lr_scale, seed):
    mini = minimiser(data)
    lr = lr_scale / (K * float(mini.eigenvalues[0]))  # covers rho in (-1.4, 0.9)
    W0 = np.random.default_rng(seed).normal(size=(K, data.input_dim))
    steps = 12
    brute = np.array(gd(data.x, data.y, W0, lr, steps))
    exact = lnn_dynamics(data, K, lr).trajectory(W0, steps)
    scale = 1 + np.abs(brute).max()
    np.testing.assert_allclose(exact, brute, atol=1e-9 * scale)


def test_trajectory_accepts_1d_scalar_weights():
    data = builtin_dataset()
    w0 = np.array([0.1, -0.2, 0.3])
    out = lnn_dynamics(data, 3, 0.1).trajectory(w0, 4)
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out, np.array(gd(data.x, data.y, w0[:, None], 0.1, 4))[..., 0], atol=1e-12)


def _brute_halting(data, W0, lr, eps, max_steps=3000):
    K = W0.shape[0]
    H_pinv = np.linalg.pinv(hessian(data.x, data.y, K), rcond=1e-10)
    d0 = distance(data.x, data.y, W0, H_pinv)
    W = W0.copy()
    dists = [d0]
    for t in range(1, max_steps + 1):
        W = W - lr * gradient_batch(data.x, data.y, W[None])[0]
        dists.append(distance(data.x, data.y, W, H_pinv))
        if dists[-1] <= eps * d0:
            return t, np.array(dists)
    return None, np.array(dists)


@FAST
@given(
    data=scalar_data(),
    K=st.integers(1, 8),
    lr_scale=st.floats(0.02, 0.98),
    log_eps=st.floats(-8, -0.5),
    seed=st.integers(0, 2**31),
)
def test_scalar_halting_time_matches_simulation(data, K, lr_scale, log_eps, seed):
    m2 = data.second_moment
    lr = lr_scale / (K * m2)  # rho = 1 - 2 lr_scale in (-0.96, 0.96)
    eps = 10.0**log_eps
    dyn = lnn_dynamics(data, K, lr)
    ratio = math.log(eps) / math.log(abs(dyn.rho)) if dyn.rho != 0 else 0.0
    assume(abs(ratio - round(ratio)) > 1e-6)  # the simulation cannot decide exact ties
    W0 = np.random.default_rng(seed).normal(size=(K, 1))
    assume(minimiser(data).distance(W0) > 1e-6)
    brute, dists = _brute_halting(data, W0, lr, eps)
    assert dyn.halting_time(eps) == brute == dyn.halting_time_for(W0, eps)
    assert dyn.halting_time_for(W0[:, 0], eps) == brute
    # distance |rho|^t D0, step (1 - rho)|rho|^t D0, both every t
    t = np.arange(len(dists))
    np.testing.assert_allclose(dists, dyn.distance(t, dists[0]), rtol=1e-6, atol=1e-12)


def test_halting_time_edge_cases():
    data = builtin_dataset()
    m2 = data.second_moment
    dyn0 = lnn_dynamics(data, 2, 1 / (4 * m2))  # rho = 0: one step
    assert dyn0.rho == 0.0 and dyn0.halting_time(1e-9) == 1
    exact = lnn_dynamics(data, 1, 0.45 / m2)  # rho = 0.1: ratio exactly 3 for eps = 1e-3
    assert exact.rho == pytest.approx(0.1)
    assert exact.halting_time(1e-3) == 3
    on_set = np.full((1,), minimiser(data).C)
    assert exact.halting_time_for(on_set, 1e-3) == 0
    assert lnn_dynamics(data, 6, 0.1).halting_time(1e-3) is None
    assert 0 < HALTING_TOLERANCE < 1e-9


@FAST
@given(data=vector_data(), K=st.integers(1, 4), lr_scale=st.floats(0.05, 0.95), seed=st.integers(0, 2**31))
def test_vector_halting_time_per_sample_and_bounds(data, K, lr_scale, seed):
    mini = minimiser(data)
    assume(mini.eigenvalues[-1] > 0.05 * mini.eigenvalues[0])  # keep the slowest mode simulable
    lr = lr_scale / (K * float(mini.eigenvalues[0]))
    dyn = lnn_dynamics(data, K, lr)
    assert dyn.converges
    eps = 1e-3
    W0 = np.random.default_rng(seed).normal(size=(K, data.input_dim))
    assume(mini.distance(W0) > 1e-6)
    brute, dists = _brute_halting(data, W0, lr, eps)
    exact = dyn.halting_time_for(W0, eps)
    # Rounding may only matter at a near-tie: then the brute distance sits at eps * D0.
    if exact != brute:
        assert abs(dists[min(exact, brute)] / dists[0] - eps) < 1e-7 * eps
    low, high = dyn.halting_time_bounds(eps)
    assert low <= exact <= high
    if mini.rank >= 2:
        with pytest.raises(InputError, match="single rate"):
            dyn.halting_time(eps)


@FAST
@given(data=scalar_data(), lr=st.floats(0.01, 2.0))
def test_divergence_and_fastest_width_match_brute_force(data, lr):
    # Brute force: convergence iff lr * (largest Hessian eigenvalue) < 2, rates from simulated ratios.
    max_width = 12
    div = None
    contraction = {}
    for K in range(1, max_width + 1):
        h_max = np.linalg.eigvalsh(hessian(data.x, data.y, K)).max()
        if div is None and not lr * h_max < 2:
            div = K
        contraction[K] = abs(1 - lr * h_max)
    # The simulation cannot decide exact ties (rho = -1, or two widths with equal |rho|): tested below.
    assume(all(abs(c - 1) > 1e-9 for c in contraction.values()))  # lr h_max = 2: rho = -1
    ordered = sorted(contraction.values())
    assume(ordered[1] - ordered[0] > 1e-9)
    if div is not None:
        assert divergence_width(data, lr) == div
    else:
        assert divergence_width(data, lr) > max_width
    best = min(range(1, max_width + 1), key=lambda K: (round(contraction[K], 9), K))
    expected = best if contraction[best] < 1 else None
    assert fastest_width(data, lr, max_width) == expected


def test_exact_ties():
    data = RegressionData(np.array([0.5]), np.array([1.0]))  # m2 = 0.25
    assert divergence_width(data, 1.0) == 4  # K = 4: rho = -1 exactly, oscillation
    assert not lnn_dynamics(data, 4, 1.0).converges and lnn_dynamics(data, 3, 1.0).converges
    tie = RegressionData(np.array([1.0]), np.array([1.0]))  # m2 = 1, lr = 1/3: rho(1) = 1/3, rho(2) = -1/3
    assert fastest_width(tie, 1 / 3, 5) == 1


def test_builtin_defaults_give_the_documented_table():
    data = builtin_dataset()
    assert divergence_width(data, 0.1) == 6
    assert fastest_width(data, 0.1, 8) == 3
    assert fastest_width(data, 0.1, 2) == 2
    assert fastest_width(data, 100.0, 8) is None


def test_vector_fastest_width_minimises_the_slowest_mode():
    data = builtin_dataset(3)  # eigenvalues 1.875, 1.25, 0.625
    lr = 0.01
    best = fastest_width(data, lr, 100)
    values = {K: lnn_dynamics(data, K, lr).contraction for K in range(1, 101)}
    assert values[best] == min(values.values())
    assert best == round(1 / (lr * (1.875 + 0.625)))
    assert divergence_width(data, lr) == math.ceil(1 / (lr * 1.875))


@FAST
@given(data=scalar_data(), K=st.integers(1, 6), lr_scale=st.floats(0.05, 0.95), seed=st.integers(0, 2**31))
def test_steps_path_and_angles_match_brute_force(data, K, lr_scale, seed):
    lr = lr_scale / (K * data.second_moment)
    dyn = lnn_dynamics(data, K, lr)
    eps = 1e-2
    T = dyn.halting_time(eps)
    W0 = np.random.default_rng(seed).normal(size=(K, 1))
    assume(minimiser(data).distance(W0) > 1e-3)
    traj = gd(data.x, data.y, W0, lr, T + 1)
    H_pinv = np.linalg.pinv(hessian(data.x, data.y, K), rcond=1e-10)
    d0 = distance(data.x, data.y, W0, H_pinv)
    steps = [np.linalg.norm(traj[t + 1] - traj[t]) for t in range(T)]
    np.testing.assert_allclose(steps, dyn.step_length(np.arange(T), d0), rtol=1e-6, atol=1e-12)
    assert sum(steps) == pytest.approx(dyn.path_length(d0, eps), rel=1e-6)
    long = gd(data.x, data.y, W0, lr, 400)
    total = sum(np.linalg.norm(long[t + 1] - long[t]) for t in range(400))
    if abs(dyn.rho) ** 400 < 1e-12:
        assert total == pytest.approx(dyn.path_length(d0), rel=1e-6)
    w_star = long[-1] if abs(dyn.rho) ** 400 < 1e-14 else minimiser(data).project(W0)
    brute_as, brute_ae, brute_paper = [], [], []
    for t in range(1, T):
        g = gradient(data.x, data.y, traj[t])
        brute_as.append(angle(g, traj[t] - traj[0]))
        brute_ae.append(angle(g, traj[t] - w_star))
        cos = np.vdot(traj[t] - w_star, g) / (np.linalg.norm(w_star - traj[0]) * np.linalg.norm(g))
        brute_paper.append(math.acos(max(-1.0, min(1.0, cos))))
        assert dyn.angle_s(t) == pytest.approx(brute_as[-1], abs=2e-6)
        assert dyn.angle_e(t) == pytest.approx(brute_ae[-1], abs=2e-4)
        assert dyn.paper_angle_e(t) == pytest.approx(brute_paper[-1], abs=2e-4)
    means = dyn.mean_angles(eps)
    if T > 1:
        assert means["A_s"] == pytest.approx(np.mean(brute_as), abs=2e-6)
        assert means["paper_A_e"] == pytest.approx(np.mean(brute_paper), abs=2e-4)
        if dyn.rho > 0:
            assert means["A_s"] == pytest.approx(math.pi)
        else:
            assert means["A_s"] == pytest.approx(math.pi * ((T - 1) // 2) / (T - 1))
    else:
        assert math.isnan(means["A_s"])


def test_angles_at_special_rates():
    data = builtin_dataset()
    m2 = data.second_moment
    dyn = lnn_dynamics(data, 1, 0.1)
    assert math.isnan(dyn.angle_s(0)) and dyn.angle_e(0) == 0.0 and dyn.paper_angle_e(0) == 0.0
    zero = lnn_dynamics(data, 2, 1 / (4 * m2))
    assert math.isnan(zero.angle_s(1)) and math.isnan(zero.angle_e(1))
    div = lnn_dynamics(data, 8, 0.1)  # rho = -2: W_t - W_0 and grad F always point the same way
    assert [div.angle_s(t) for t in (1, 2, 3)] == [0.0, 0.0, 0.0]
    assert math.isnan(div.paper_angle_e(2))
    osc = lnn_dynamics(data, 1, 1 / m2)  # rho = -1: back at W_0 every even step
    assert osc.rho == -1.0 and not osc.converges
    assert osc.angle_s(1) == 0.0 and math.isnan(osc.angle_s(2))


def test_width_acts_as_a_learning_rate_multiplier():
    data = builtin_dataset()
    eps = 1e-4
    fixed = [lnn_dynamics(data, K, 0.02).halting_time(eps) for K in range(1, 9)]
    assert len(set(fixed)) > 1 and fixed == sorted(fixed, reverse=True)  # wider halts sooner here
    scaled = [lnn_dynamics(data, K, scaled_lr(0.1, K)) for K in range(1, 17)]
    assert len({d.halting_time(eps) for d in scaled}) == 1
    assert len({round(d.rho, 12) for d in scaled}) == 1
    assert len({round(d.path_factor, 12) for d in scaled}) == 1
    assert all(d.effective_lr == pytest.approx(0.1) for d in scaled)
    # ...and plain GD agrees: the same number of steps at every width.
    rng = np.random.default_rng(3)
    for K in (1, 4, 9):
        W0 = rng.normal(size=(K, 1))
        brute, _ = _brute_halting(data, W0, scaled_lr(0.1, K), eps)
        assert brute == scaled[0].halting_time(eps)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: lnn_dynamics(d, 0, 0.1), "width"),
        (lambda d: lnn_dynamics(d, 2.5, 0.1), "width"),
        (lambda d: lnn_dynamics(d, True, 0.1), "width"),
        (lambda d: lnn_dynamics(d, 2, -0.1), "lr"),
        (lambda d: lnn_dynamics(d, 2, float("inf")), "lr"),
        (lambda d: lnn_dynamics(d, 2, 0.1).halting_time(1.0), "eps"),
        (lambda d: lnn_dynamics(d, 2, 0.1).halting_time(0.0), "eps"),
        (lambda d: lnn_dynamics(d, 2, 0.1).trajectory(np.zeros((3, 1)), 2), "shape"),
        (lambda d: lnn_dynamics(d, 2, 0.1).trajectory(np.zeros((2, 1)), -1), "steps"),
        (lambda d: lnn_dynamics([1, 2], 2, 0.1), "RegressionData"),
        (lambda d: fastest_width(d, 0.1, 0), "max_width"),
        (lambda d: minimiser(builtin_dataset(2)).C, "scalar"),
    ],
)
def test_bad_input_raises_input_error(call, message):
    with pytest.raises(InputError, match=message) as info:
        call(builtin_dataset())
    assert "\n" not in str(info.value)


def test_brute_force_references_agree():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 2)), rng.normal(size=4)
    Ws = rng.normal(size=(3, 5, 2))
    np.testing.assert_allclose(gradient_batch(x, y, Ws), [gradient(x, y, W) for W in Ws], atol=1e-12)
    assert as_columns(np.ones(3)).shape == (3, 1)
