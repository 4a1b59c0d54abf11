"""Convergence detection on synthetic validation curves, checked against a brute-force reference."""

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from overparam_empirical.convergence import EarlyStopping, analyze_curve
from overparam_theory.errors import InputError

finite_loss = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)


@st.composite
def curves(draw, min_size=1, max_size=40):
    """Strictly increasing eval steps (random gaps) with positive finite losses."""
    n = draw(st.integers(min_size, max_size))
    gaps = draw(st.lists(st.integers(1, 500), min_size=n, max_size=n))
    start = draw(st.integers(0, 3))
    steps = [start]
    for gap in gaps[1:]:
        steps.append(steps[-1] + gap)
    losses = draw(st.lists(finite_loss, min_size=n, max_size=n))
    return steps, losses


def reference(steps, losses, within):
    """Literal reading of the paper's definition: plain loops over the finite prefix."""
    prefix = []
    for s, x in zip(steps, losses, strict=True):
        if not math.isfinite(x):
            break
        prefix.append((s, x))
    if not prefix:
        return None
    best = prefix[0][1]
    for _, x in prefix:
        if x < best:
            best = x
    at_min = [s for s, x in prefix if x == best][0]
    at_within = [s for s, x in prefix if x <= best + within * abs(best)][0]
    return at_min, at_within, best


@given(curves(), st.sampled_from([0.0, 0.01, 0.05, 0.2]))
def test_matches_brute_force_reference(curve, within):
    steps, losses = curve
    result = analyze_curve(steps, losses, within=within)
    at_min, at_within, best = reference(steps, losses, within)
    assert (result.steps_to_min, result.steps_to_within, result.min_loss) == (at_min, at_within, best)
    assert not result.diverged and result.n_evals == len(steps)


@given(curves(min_size=2))
def test_brackets_are_the_previous_and_current_evaluation(curve):
    steps, losses = curve
    result = analyze_curve(steps, losses)
    for event, (lo, hi) in (
        (result.steps_to_min, result.min_bracket),
        (result.steps_to_within, result.within_bracket),
    ):
        assert hi == event
        k = steps.index(event)
        assert lo == (steps[k - 1] if k > 0 else steps[0])
        assert lo < hi or k == 0


@given(curves())
def test_within_comes_no_later_than_the_minimum_and_zero_tolerance_is_the_minimum(curve):
    steps, losses = curve
    assert (
        analyze_curve(steps, losses, within=0.01).steps_to_within <= analyze_curve(steps, losses).steps_to_min
    )
    exact = analyze_curve(steps, losses, within=0.0)
    assert exact.steps_to_within == exact.steps_to_min


@given(curves(), st.floats(0.0, 0.5), st.floats(0.0, 0.5))
def test_a_looser_tolerance_never_takes_longer(curve, a, b):
    steps, losses = curve
    tight, loose = sorted((a, b))
    assert (
        analyze_curve(steps, losses, within=loose).steps_to_within
        <= analyze_curve(steps, losses, within=tight).steps_to_within
    )


@given(curves(), st.floats(0.01, 100.0))
def test_steps_are_invariant_to_rescaling_the_loss(curve, scale):
    steps, losses = curve
    scaled = [x * scale for x in losses]
    # Rounding can merge two losses one ulp apart into a tie (e.g. 495.43559165685390 and ...383 at
    # scale 44.95), which moves the first minimum: the invariance holds for rescalings that keep distinct
    # losses distinct (this test flaked under random exploration before it said so).
    assume(len(set(scaled)) == len(set(losses)))
    a = analyze_curve(steps, losses, within=0.0)
    b = analyze_curve(steps, scaled, within=0.0)
    assert a.steps_to_min == b.steps_to_min


@given(st.integers(2, 60), st.floats(0.1, 10.0), st.floats(1e-3, 0.5))
def test_monotone_decreasing_curve_has_its_minimum_at_the_end(n, scale, rate):
    steps = list(range(0, 100 * n, 100))
    losses = [1.0 + scale * math.exp(-rate * k) for k in range(n)]
    result = analyze_curve(steps, losses)
    assert result.steps_to_min == steps[-1]
    threshold = losses[-1] + 0.01 * losses[-1]
    assert result.steps_to_within == next(s for s, x in zip(steps, losses, strict=True) if x <= threshold)


@given(st.integers(3, 50), st.integers(0, 49), st.floats(1e-3, 1.0))
def test_u_shaped_curve_has_its_minimum_at_the_bottom(n, bottom, curvature):
    bottom = bottom % n
    steps = [10 * k for k in range(n)]
    losses = [1.5 + curvature * (k - bottom) ** 2 for k in range(n)]
    result = analyze_curve(steps, losses)
    assert result.steps_to_min == steps[bottom]
    assert result.min_loss == 1.5


@given(curves(), st.integers(1, 10), st.sampled_from([math.nan, math.inf, -math.inf]))
def test_a_non_finite_tail_is_divergence_and_the_prefix_is_analysed(curve, tail, bad):
    steps, losses = curve
    last = steps[-1]
    tail_steps = [last + 10 * (k + 1) for k in range(tail)]
    full = analyze_curve(steps + tail_steps, losses + [bad] + [1e-9] * (tail - 1))
    prefix = analyze_curve(steps, losses)
    assert full.diverged and full.diverged_at == tail_steps[0]
    assert (full.steps_to_min, full.steps_to_within, full.min_loss, full.n_evals) == (
        prefix.steps_to_min,
        prefix.steps_to_within,
        prefix.min_loss,
        prefix.n_evals,
    )


def test_all_non_finite_and_empty_curves_give_no_events():
    result = analyze_curve([0, 10], [math.nan, 1.0])
    assert result.diverged and result.steps_to_min is None and math.isnan(result.min_loss)
    empty = analyze_curve([], [])
    assert not empty.diverged and empty.steps_to_min is None and empty.n_evals == 0


def test_the_paper_definition_on_a_small_example():
    # min 2.0 at step 400; within 1 % means <= 2.02: first reached at step 300 (2.015)
    result = analyze_curve([0, 100, 200, 300, 400, 500], [4.0, 3.0, 2.5, 2.015, 2.0, 2.1])
    assert result.steps_to_min == 400 and result.min_bracket == (300, 400)
    assert result.steps_to_within == 300 and result.within_bracket == (200, 300)


@pytest.mark.parametrize(
    ("steps", "losses", "within"),
    [
        ([0, 0], [1.0, 1.0], 0.01),
        ([5, 3], [1.0, 1.0], 0.01),
        ([0, 1], [1.0], 0.01),
        ([0], [1.0], -0.1),
        ([-1], [1.0], 0),
    ],
)
def test_bad_curves_are_input_errors(steps, losses, within):
    with pytest.raises(InputError):
        analyze_curve(steps, losses, within=within)


# ---- early stopping ------------------------------------------------------------------------------


def run_stopper(losses, patience, min_delta=0.0):
    stopper = EarlyStopping(patience=patience, min_delta=min_delta)
    for k, x in enumerate(losses):
        if stopper.update(k, x):
            return stopper, k
    return stopper, None


@given(st.integers(3, 40), st.integers(0, 39), st.integers(1, 8))
def test_stops_exactly_patience_evaluations_after_the_bottom_of_a_u(n, bottom, patience):
    bottom = bottom % n
    losses = [1.0 + 0.01 * (k - bottom) ** 2 for k in range(n)]
    stopper, stopped_at = run_stopper(losses, patience)
    assert stopper.best_step == bottom or (stopped_at is not None and stopped_at < bottom)
    expected = bottom + patience if bottom + patience < n else None
    assert stopped_at == expected
    if stopped_at is not None:
        assert stopper.reason == "patience"


@given(st.lists(finite_loss, min_size=1, max_size=40), st.integers(1, 6), st.floats(0.0, 0.2))
def test_best_is_the_plain_minimum_and_never_stops_before_patience(losses, patience, min_delta):
    stopper, stopped_at = run_stopper(losses, patience, min_delta)
    seen = losses[: (stopped_at + 1) if stopped_at is not None else len(losses)]
    assert stopper.best_loss == min(seen)
    assert stopper.best_step == seen.index(min(seen))
    if stopped_at is not None:
        assert stopped_at >= patience


def test_creeping_improvements_below_min_delta_do_not_keep_a_run_alive():
    losses = [2.0, 1.0] + [1.0 - 1e-4 * k for k in range(1, 20)]
    stopper, stopped_at = run_stopper(losses, patience=3, min_delta=0.01)
    assert stopped_at == 4  # three evaluations after the last significant improvement (index 1)
    assert stopper.best_step == 4  # W* still follows the plain minimum


# ---- the early-stopping guard, on real curves -------------------------------------------------------
# (step, validation loss, training loss at that step) of two real small-preset runs (H=32, 1 % of
# Shakespeare, seed 0, evaluated every 100 steps, no early stopping), rounded to 4 digits: at lr 0.3 the
# model sits on the unigram plateau (≈ 3.33 nats, train ≈ validation) until step ~800; at lr 2.0 (the
# preset's) it overfits and passes its minimum at step 2500 with a 13 % generalization gap.
# lr 0.3:
PLATEAU_LR_0_3 = [
    (100, 3.3672, 3.3777),
    (200, 3.3413, 3.3367),
    (300, 3.3343, 3.3321),
    (400, 3.3309, 3.3179),
    (500, 3.3293, 3.3216),
    (600, 3.3283, 3.3154),
    (700, 3.3232, 3.3192),
    (800, 3.3107, 3.3093),
    (900, 3.259, 3.2673),
    (1000, 3.1913, 3.1888),
    (1100, 3.1086, 3.0901),
    (1200, 3.0263, 3.0106),
    (1300, 2.9444, 2.9155),
    (1400, 2.8685, 2.839),
    (1500, 2.8091, 2.7823),
    (1600, 2.7537, 2.722),
    (1700, 2.7067, 2.6848),
    (1800, 2.6821, 2.6335),
    (1900, 2.6533, 2.6093),
    (2000, 2.6347, 2.5751),
    (2100, 2.6186, 2.5619),
    (2200, 2.585, 2.5478),
    (2300, 2.5666, 2.5289),
    (2400, 2.5531, 2.5203),
    (2500, 2.5499, 2.4881),
    (2600, 2.5488, 2.482),
    (2700, 2.515, 2.47),
    (2800, 2.505, 2.4594),
    (2900, 2.5123, 2.457),
    (3000, 2.4872, 2.4452),
    (3100, 2.4834, 2.4372),
]
# lr 2.0:
OVERFIT_LR_2 = [
    (100, 3.338, 3.3467),
    (200, 3.1257, 3.2125),
    (300, 2.7181, 2.7118),
    (400, 2.5496, 2.5005),
    (500, 2.4073, 2.385),
    (600, 2.3319, 2.3004),
    (700, 2.2774, 2.2466),
    (800, 2.2355, 2.1896),
    (900, 2.2199, 2.1495),
    (1000, 2.1967, 2.1107),
    (1100, 2.1589, 2.0701),
    (1200, 2.1573, 2.0574),
    (1300, 2.1506, 2.0139),
    (1400, 2.1315, 1.9928),
    (1500, 2.115, 1.9764),
    (1600, 2.111, 1.956),
    (1700, 2.0972, 1.941),
    (1800, 2.0932, 1.9043),
    (1900, 2.089, 1.8975),
    (2000, 2.092, 1.8758),
    (2100, 2.0866, 1.8571),
    (2200, 2.0838, 1.8522),
    (2300, 2.0916, 1.8338),
    (2400, 2.0828, 1.8334),
    (2500, 2.0785, 1.8024),
    (2600, 2.0927, 1.7933),
    (2700, 2.0997, 1.7838),
    (2800, 2.0855, 1.7774),
    (2900, 2.1125, 1.7678),
    (3000, 2.1002, 1.7548),
    (3100, 2.0967, 1.7452),
]


def stop_on(curve, **rule):
    stopper = EarlyStopping(**rule)
    for step, valid, train in curve:
        if stopper.update(step, valid, train):
            return step, stopper
    return None, stopper


def test_plain_patience_stops_on_the_early_plateau_the_gap_guard_does_not():
    # With patience 3 (0.2 %), the plain rule takes the plateau for the minimum: W* at step 600 with a
    # loss of 3.33 nats, where the real minimum is below 2.49. The generalization gap there is < 0.5 %.
    stopped, plain = stop_on(PLATEAU_LR_0_3, patience=3, min_delta=0.002)
    assert stopped == 600 and plain.best_loss > 3.3
    stopped, guarded = stop_on(PLATEAU_LR_0_3, patience=3, min_delta=0.002, min_gap=0.02)
    assert stopped is None and guarded.best_step == 3100  # still learning at the end of the record


def test_the_gap_guard_stops_a_real_overfitting_run_exactly_where_plain_patience_does():
    plain_stop, plain = stop_on(OVERFIT_LR_2, patience=5, min_delta=0.002)
    guarded_stop, guarded = stop_on(OVERFIT_LR_2, patience=5, min_delta=0.002, min_gap=0.02)
    assert plain_stop == guarded_stop == 3000 and guarded.reason == "patience"
    assert plain.best_step == guarded.best_step == 2500


def test_without_a_gap_a_flat_curve_stops_after_stall_factor_times_patience():
    flat = [(100 * k, 2.0, 2.0) for k in range(1, 40)]  # flattened without overfitting
    stopped, stopper = stop_on(flat, patience=4, min_gap=0.02, stall_factor=3)
    assert stopped == 100 * (1 + 12) and stopper.reason == "stall"
    gap = [(100 * k, 2.0, 1.5) for k in range(1, 40)]
    stopped, stopper = stop_on(gap, patience=4, min_gap=0.02, stall_factor=3)
    assert stopped == 100 * (1 + 4) and stopper.reason == "patience"


@given(
    st.lists(st.tuples(finite_loss, finite_loss), min_size=1, max_size=40),
    st.integers(1, 6),
    st.floats(0.0, 0.5),
    st.integers(1, 4),
)
def test_the_gap_guard_only_ever_delays_a_stop_and_never_moves_w_star(pairs, patience, gap, factor):
    curve = [(k, valid, train) for k, (valid, train) in enumerate(pairs)]
    plain_stop, plain = stop_on(curve, patience=patience)
    guarded_stop, guarded = stop_on(curve, patience=patience, min_gap=gap, stall_factor=factor)
    if guarded_stop is not None:  # the guard delays a stop (an improvement meanwhile may delay it more)
        assert plain_stop is not None and plain_stop <= guarded_stop
        if guarded.reason == "stall":
            assert guarded.evals_since_improvement == factor * patience
    seen = [v for _, v, _ in curve[: (guarded_stop + 1) if guarded_stop is not None else len(curve)]]
    assert guarded.best_loss == min(seen) and guarded.best_step == seen.index(min(seen))


@settings(max_examples=30)
@given(st.lists(finite_loss, min_size=0, max_size=10), st.sampled_from([math.nan, math.inf]))
def test_non_finite_loss_stops_at_once(losses, bad):
    stopper, stopped_at = run_stopper([*losses, bad], patience=100)
    assert stopped_at == len(losses) and stopper.reason == "non-finite"


def test_state_dict_round_trip_continues_identically():
    a = EarlyStopping(patience=3, min_delta=0.01)
    for k, x in enumerate([3.0, 2.0, 1.99, 1.5]):
        a.update(k, x)
    b = EarlyStopping(patience=3, min_delta=0.01)
    b.load_state_dict(a.state_dict())
    for k, x in enumerate([1.6, 1.6, 1.6], start=4):
        assert a.update(k, x) == b.update(k, x)
    assert a.state_dict() == b.state_dict() and a.stopped


@pytest.mark.parametrize(
    "kwargs", [{"patience": 0}, {"patience": 1.5}, {"min_delta": -0.1}, {"min_delta": 1.0}]
)
def test_bad_early_stopping_settings_are_input_errors(kwargs):
    with pytest.raises(InputError):
        EarlyStopping(**kwargs)
