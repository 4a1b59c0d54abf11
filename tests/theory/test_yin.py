"""The Yin et al. recursion: symbolic derivation, numeric identity on real trajectories, the bound."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overparam_theory.datasets import builtin_dataset
from overparam_theory.errors import InputError
from overparam_theory.lnn import lnn_dynamics, minimiser
from overparam_theory.yin import derive_yin, halting_time_bound, yin_identity_residual


@pytest.fixture(scope="module")
def derivation():
    return derive_yin()


def test_every_symbolic_step_is_verified(derivation):
    assert set(derivation.checks) >= {
        "one_step",
        "any_update",
        "any_update_reduces_to_gd",
        "telescoping",
        "induction_base",
        "induction_step",
        "any_update_telescoped",
        "bound_reaches_eps",
    }
    assert all(derivation.checks.values())
    import sympy as sp

    latex = [sp.latex(expr) for _, expr, _ in derivation.steps]
    assert any(r"\sum_{t=0}^{T - 1}" in text and r"\eta^{2}" in text for text in latex)
    assert any(r"\geq" in text for text in latex)


def _gd_on_quadratic(seed, dim, steps, lr_scale):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(dim, dim))
    H = M @ M.T / dim + 0.1 * np.eye(dim)
    b = rng.normal(size=dim)
    lr = lr_scale / np.linalg.eigvalsh(H).max()
    W = [rng.normal(size=dim)]
    G = []
    for _ in range(steps):
        G.append(H @ W[-1] - b)
        W.append(W[-1] - lr * G[-1])
    return W, G, lr, np.linalg.solve(H, b)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    dim=st.integers(1, 12),
    steps=st.integers(1, 60),
    lr_scale=st.floats(0.01, 2.5),
    arbitrary_star=st.booleans(),
)
def test_identity_holds_on_gd_for_random_quadratics(seed, dim, steps, lr_scale, arbitrary_star):
    W, G, lr, w_min = _gd_on_quadratic(seed, dim, steps, lr_scale)
    # The identity holds for any reference point, not only the minimiser.
    star = np.random.default_rng(seed + 1).normal(size=dim) if arbitrary_star else w_min
    result = yin_identity_residual(W, star, G, lr)
    assert result.steps == steps
    assert result.relative < 1e-12
    assert result.gd_relative < 1e-12


def _tanh_net(params, X, y):
    """Loss and hand-written gradient of a 2-layer tanh net: yhat = V tanh(U x + c), MSE without 1/2."""
    U, c, V = params
    Z = X @ U.T + c  # (n, h)
    Hd = np.tanh(Z)
    yhat = Hd @ V
    r = yhat - y
    n = len(y)
    loss = float(np.mean(r**2))
    gV = 2.0 / n * Hd.T @ r
    dZ = 2.0 / n * np.outer(r, V) * (1 - Hd**2)
    return loss, (dZ.T @ X, dZ.sum(axis=0), gV)


def _flat(params):
    return np.concatenate([p.ravel() for p in params])


def _unflat(vector, shapes):
    out, i = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(vector[i : i + size].reshape(shape))
        i += size
    return out


def test_tanh_net_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(7, 3)), rng.normal(size=7)
    params = [rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=4)]
    shapes = [p.shape for p in params]
    _, grads = _tanh_net(params, X, y)
    flat = _flat(params)
    numeric = np.zeros_like(flat)
    h = 1e-6
    for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = h
        numeric[i] = (
            _tanh_net(_unflat(flat + e, shapes), X, y)[0] - _tanh_net(_unflat(flat - e, shapes), X, y)[0]
        ) / (2 * h)
    np.testing.assert_allclose(_flat(grads), numeric, rtol=1e-6, atol=1e-8)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), lr=st.floats(0.01, 0.5), steps=st.integers(1, 80))
def test_identity_holds_on_gd_for_a_nonlinear_net(seed, lr, steps):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(10, 3)), rng.normal(size=10)
    params = [0.5 * rng.normal(size=(5, 3)), 0.1 * rng.normal(size=5), 0.5 * rng.normal(size=5)]
    shapes = [p.shape for p in params]
    W, G = [_flat(params)], []
    for _ in range(steps):
        _, grads = _tanh_net(_unflat(W[-1], shapes), X, y)
        G.append(_flat(grads))
        W.append(W[-1] - lr * G[-1])
    result = yin_identity_residual(W, W[-1], G, lr)  # W* = the last iterate
    assert result.final_sq == 0.0
    assert result.relative < 1e-12 and result.gd_relative < 1e-12
    # The squared-gradient term needs lr**2: with lr (or 1) instead, the identity breaks.
    for wrong in (lr, 1.0):
        predicted = result.initial_sq + wrong * result.grad_sq_sum - 2 * lr * result.grad_alignment_sum
        broken = result.final_sq - predicted
        assert abs(broken) > 1e-6 * result.initial_sq


def test_any_update_form_holds_for_adam_but_the_gd_form_does_not():
    W, G, lr, w_min = _gd_on_quadratic(3, 5, 1, 0.5)
    rng = np.random.default_rng(4)
    M = rng.normal(size=(5, 5))
    H = M @ M.T / 5 + 0.1 * np.eye(5)
    b = rng.normal(size=5)
    w = rng.normal(size=5)
    m = np.zeros(5)
    v = np.zeros(5)
    traj, grads = [w.copy()], []
    for t in range(1, 50):  # Adam, written out
        g = H @ w - b
        grads.append(g)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        traj.append(w.copy())
    result = yin_identity_residual(traj, np.linalg.solve(H, b), grads, 0.05)
    assert result.relative < 1e-12
    assert result.gd_relative > 1e-3


def test_bound_is_tight_when_eps_is_the_reached_squared_distance():
    W, G, lr, w_min = _gd_on_quadratic(7, 6, 40, 0.8)
    result = yin_identity_residual(W, w_min, G, lr)
    T = result.steps
    A, S = result.grad_alignment_sum / T, result.grad_sq_sum / T
    bound = halting_time_bound(math.sqrt(result.initial_sq), lr, A, S, result.final_sq)
    assert bound.applies and bound.bound == pytest.approx(T, rel=1e-9)
    assert bound.steps == T


def test_bound_on_the_linear_network_matches_its_exact_halting_time():
    data = builtin_dataset()
    dyn = lnn_dynamics(data, 2, 0.1)
    W0 = np.array([[0.3], [-0.2]])
    T = dyn.halting_time(1e-3)
    traj = dyn.trajectory(W0, T)
    w_star = minimiser(data).project(W0)
    grads = [(traj[t] - traj[t + 1]) / 0.1 for t in range(T)]
    result = yin_identity_residual(traj, w_star, grads, 0.1)
    A, S = result.grad_alignment_sum / T, result.grad_sq_sum / T
    bound = halting_time_bound(minimiser(data).distance(W0), 0.1, A, S, result.final_sq)
    assert bound.steps == T


def test_bound_cases():
    ok = halting_time_bound(2.0, 0.1, 1.0, 3.0, 0.01)
    assert ok.applies and ok.bound == pytest.approx((4 - 0.01) / (0.2 - 0.03)) and ok.steps == 24
    inside = halting_time_bound(0.05, 0.1, 1.0, 3.0, 0.01)
    assert inside.applies and inside.bound == 0.0 and inside.steps == 0 and "already" in inside.reason
    never = halting_time_bound(2.0, 0.1, 0.1, 3.0, 0.01)  # A = 0.1 < lr S / 2 = 0.15
    assert not never.applies and never.bound is None and never.denominator < 0
    assert "does not apply" in never.reason and "\n" not in never.reason
    edge = halting_time_bound(2.0, 0.1, 0.15, 3.0, 0.01)  # denominator exactly 0 (up to rounding)
    assert not edge.applies or edge.bound > 1e12
    negative = halting_time_bound(2.0, 0.1, -1.0, 0.0, 0.01)
    assert not negative.applies


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1.0, 0.1, 1.0, 1.0, 0.1), "d0"),
        ((1.0, 0.0, 1.0, 1.0, 0.1), "lr"),
        ((1.0, 0.1, float("nan"), 1.0, 0.1), "alignment"),
        ((1.0, 0.1, 1.0, -1.0, 0.1), "grad_sq"),
        ((1.0, 0.1, 1.0, 1.0, 0.0), "eps"),
        ((1.0, 0.1, 1.0, 1.0, "x"), "eps"),
    ],
)
def test_bound_validates(args, message):
    with pytest.raises(InputError, match=message):
        halting_time_bound(*args)


def test_residual_validates():
    with pytest.raises(InputError, match="w_star"):
        yin_identity_residual([np.zeros(3), np.ones(3)], np.zeros(2))
    with pytest.raises(InputError, match="together"):
        yin_identity_residual([np.zeros(3), np.ones(3)], np.zeros(3), gradients=[np.ones(3)])
    with pytest.raises(InputError, match="gradients"):
        yin_identity_residual([np.zeros(3), np.ones(3)], np.zeros(3), [np.ones(3)] * 2, 0.1)
    with pytest.raises(InputError, match="finite"):
        yin_identity_residual([np.zeros(3), np.full(3, np.inf)], np.zeros(3))
    single = yin_identity_residual([np.ones(2)], np.zeros(2))
    assert single.steps == 0 and single.residual == 0.0
