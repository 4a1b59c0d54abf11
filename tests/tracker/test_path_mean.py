"""Means along the path: the per-step average estimated from (possibly sparse) tracked steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from tracker_reference import RHNLike, loss_of, make_batch

from overparam_empirical.tracker import TraversalTracker
from overparam_empirical.tracker.metrics import path_mean

torch.set_num_threads(1)


def expanded_mean(steps, values, end):
    """Brute force: write every step's value out (a tracked value holds until the next defined one)."""
    per_step = []
    defined = [(t, v) for t, v in zip(steps, values, strict=True) if math.isfinite(v)]
    for i, (t, v) in enumerate(defined):
        stop = defined[i + 1][0] if i + 1 < len(defined) else max(end, t + 1)
        per_step.extend([v] * (stop - t))
    return sum(per_step) / len(per_step) if per_step else math.nan


angle_or_undefined = st.one_of(st.floats(0, math.pi), st.just(math.nan))
tracked_series = st.lists(st.tuples(st.integers(1, 50), angle_or_undefined), min_size=1, max_size=30)


@given(tracked_series, st.integers(0, 100))
def test_path_mean_equals_the_written_out_per_step_mean(series, extra):
    steps = np.cumsum([gap for gap, _ in series]) - series[0][0]  # increasing, from 0
    values = [v for _, v in series]
    end = int(steps[-1]) + extra
    got, want = path_mean(steps, values, end), expanded_mean(list(steps), values, end)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-12)
        finite = [v for v in values if math.isfinite(v)]
        assert min(finite) - 1e-12 <= got <= max(finite) + 1e-12


@given(st.lists(st.floats(-10, 10), min_size=1, max_size=40))
def test_every_step_tracked_gives_the_plain_mean(values):
    steps = np.arange(len(values))
    plain = float(np.mean(values))
    assert path_mean(steps, values, len(values)) == pytest.approx(plain, rel=1e-12, abs=1e-12)


def test_a_log_schedule_does_not_let_the_first_steps_dominate():
    # As = 0.9π for the first 10 steps, 0.5π for the next 990: the path average is ≈ 0.504π
    steps = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 50, 100, 200, 500])
    values = np.where(steps < 10, 0.9, 0.5) * math.pi
    assert path_mean(steps, values, 1000) == pytest.approx((10 * 0.9 + 990 * 0.5) / 1000 * math.pi)
    assert float(np.mean(values)) == pytest.approx(0.75 * math.pi)  # the plain mean of the records is far off


def test_tracker_summary_uses_the_path_mean_for_a_sparse_schedule():
    torch.manual_seed(0)
    model = RHNLike()
    tracker = TraversalTracker(model, schedule="log:3")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    steps = 40
    for t in range(steps):
        optimizer.zero_grad()
        loss_of("rhn", model, make_batch("rhn", torch.Generator().manual_seed(t))).backward()
        optimizer.step()
        tracker.step()
    summary = tracker.finalize()
    for group in ("hidden", "all"):
        records = [r for r in tracker.records() if r["group"] == group]
        assert len(records) < steps  # a sparse schedule
        for key, field in (("mean_as", "as_angle"), ("mean_ae", "ae_angle"), ("mean_grad_norm", "grad_norm")):
            values = [math.nan if r[field] is None else r[field] for r in records]
            want = expanded_mean([r["step"] for r in records], values, steps)
            assert summary[group][key] == pytest.approx(want, rel=1e-12), key
