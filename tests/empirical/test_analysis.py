"""Analysis of study stores: planted laws are recovered within their CIs; exclusions, notes and verdicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from char_lm_synthetic import GROUPS, Plant, build_store
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from overparam_empirical import analysis as A

N_BOOT = 200


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A paper-like study: k = 0.5 per fraction, steps ∝ D, distances shrink, step sizes grow, As = π/2."""
    folder = build_store(tmp_path_factory.mktemp("planted"), Plant())
    rows = A.StudyRows.from_store(folder)
    return rows, A.analyze(rows, n_boot=N_BOOT)


def _rows(tmp_path, **plant) -> A.StudyRows:
    return A.StudyRows.from_store(build_store(tmp_path, Plant(**plant)))


def test_planted_k_lies_in_every_fractions_bootstrap_ci(planted):
    _, result = planted
    assert [c.fraction for c in result.convergence] == [0.5, 1.0]
    for c in result.convergence:
        assert c.fit is not None and c.fit.k_ci is not None
        assert c.fit.k_ci[0] <= 0.5 <= c.fit.k_ci[1]
        assert c.fit.k_ci[1] - c.fit.k_ci[0] < 0.3  # 5 seeds at 5% noise pin k down
        assert c.n_widths == 5 and len(c.points) == 25
        assert c.train_tokens == int(100_000 * c.fraction)


def test_planted_linear_dataset_size_law_is_recovered(planted):
    _, result = planted
    (ds,) = result.dataset_size
    assert ds.fit is not None and ds.fit.alpha_ci[0] <= 1.0 <= ds.fit.alpha_ci[1]
    assert ds.fractions == (0.5, 1.0) and ds.n_points == 50


@pytest.mark.parametrize(
    "quantity, planted_attr",
    [("distance_init_to_star", "distance_exponent"), ("mean_step_size_to_star", "step_exponent")],
)
def test_planted_group_exponents_lie_in_their_cis(planted, quantity, planted_attr):
    _, result = planted
    truth = getattr(Plant(), planted_attr)
    found = [e for e in result.exponents if e.quantity == quantity]
    assert {e.group for e in found} == set(GROUPS)
    # 95 % intervals from 5 seeds miss now and then: require most to cover the truth and none to be far off
    covered = 0
    for e in found:
        low, high = e.exponent_ci
        covered += low <= truth[e.group] <= high
        assert abs(e.exponent - truth[e.group]) <= 2 * (high - low), (e.group, e.exponent, e.exponent_ci)
    assert covered >= 0.75 * len(found)


def test_exponent_equals_brute_force_log_log_slope(planted):
    rows, result = planted
    by_run = rows.summaries_by_run()
    cond, fraction = result.primary
    runs = [r for r in rows.runs if A.condition_of(r) == cond and r["fraction"] == fraction]
    x = np.log([r["width"] for r in runs])
    y = np.log([by_run[r["run_id"]]["softmax"]["distance_init_to_star"] for r in runs])
    slope = np.polyfit(x, y, 1)[0]
    (e,) = [
        e
        for e in result.exponents
        if (e.condition, e.fraction, e.group, e.quantity)
        == (cond, fraction, "softmax", "distance_init_to_star")
    ]
    assert e.exponent == pytest.approx(slope, rel=1e-9)
    widths = sorted({r["width"] for r in runs})
    first = np.mean(
        [by_run[r["run_id"]]["softmax"]["distance_init_to_star"] for r in runs if r["width"] == widths[0]]
    )
    last = np.mean(
        [by_run[r["run_id"]]["softmax"]["distance_init_to_star"] for r in runs if r["width"] == widths[-1]]
    )
    assert e.change == pytest.approx(last / first - 1)


def test_direct_distance_is_the_way_to_w_star_and_the_stop_is_secondary(planted):
    # The store plants ‖W_T − W_0‖ = 1.2·width^0.1·‖W* − W_0‖: its slope is exactly 0.1 higher, so a
    # figure, table or comparison reading the wrong column would show it.
    _, result = planted
    cond, fraction = result.primary

    def exponent(quantity, group):
        (e,) = [
            e
            for e in result.exponents
            if (e.condition, e.fraction, e.group, e.quantity) == (cond, fraction, group, quantity)
        ]
        return e

    for group in GROUPS:
        star, stop = exponent("distance_init_to_star", group), exponent("final_distance", group)
        assert stop.exponent == pytest.approx(star.exponent + 0.1, abs=1e-9)
        assert all(c.measured[group][0] == star.exponent for c in result.lnn)
        (row,) = [
            c
            for c in result.comparison
            if c.finding == f"direct distance shrinks with width: {group} (Fig. 6)"
        ]
        assert row.ours.startswith(f"width^{star.exponent:.3g} ")
    steps = exponent("mean_step_size_to_star", "softmax")
    (row,) = [c for c in result.comparison if c.finding == "step size grows with width: softmax (Fig. 7)"]
    assert row.ours.startswith(f"width^{steps.exponent:.3g} ")


def test_width_table_matches_brute_force_means_and_t_intervals(planted):
    rows, result = planted
    row = result.widths[3]
    runs = [
        r
        for r in rows.runs
        if A.condition_of(r) == row.condition and r["fraction"] == row.fraction and r["width"] == row.width
    ]
    steps = np.array([r["steps_to_within"] for r in runs], dtype=float)
    low, high = stats.t.interval(0.95, len(steps) - 1, loc=steps.mean(), scale=stats.sem(steps))
    assert row.steps.mean == pytest.approx(steps.mean())
    assert (row.steps.low, row.steps.high) == pytest.approx((low, high))
    by_run = rows.summaries_by_run()
    as_pi = [by_run[r["run_id"]]["hidden"]["mean_as_to_star"] / math.pi for r in runs]
    assert row.groups["hidden"]["as_pi"].mean == pytest.approx(np.mean(as_pi))
    distance = [by_run[r["run_id"]]["hidden"]["distance_init_to_star"] for r in runs]
    assert row.groups["hidden"]["distance"].mean == pytest.approx(np.mean(distance))
    to_stop = [by_run[r["run_id"]]["hidden"]["final_distance"] for r in runs]
    assert row.groups["hidden"]["distance_to_stop"].mean == pytest.approx(np.mean(to_stop))
    assert row.n_params == runs[0]["n_params"] and row.n_runs == 5


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30))
def test_mean_ci_equals_scipy_t_interval(values):
    result = A.mean_ci(values)
    data = np.array(values)
    assert result.mean == pytest.approx(data.mean(), abs=1e-6)
    if data.std() > 1e-6:
        low, high = stats.t.interval(0.95, len(data) - 1, loc=data.mean(), scale=stats.sem(data))
        assert (result.low, result.high) == pytest.approx((low, high), rel=1e-6, abs=1e-6)


def test_mean_ci_of_one_or_no_values_has_no_interval():
    assert A.mean_ci([3.0]).low is None and A.mean_ci([3.0]).mean == 3.0
    assert A.mean_ci([math.nan, None]).n == 0


def test_planted_paper_like_study_agrees_with_the_paper(planted):
    _, result = planted
    verdicts = {c.finding: c.verdict for c in result.comparison}
    agree = [f for f, v in verdicts.items() if v == "agree"]
    assert any("power law of model size" in f for f in agree)
    assert any("linearly with dataset size" in f for f in agree)
    assert sum("direct distance shrinks" in f for f in agree) == 4
    assert any("step size grows with width: softmax" in f for f in agree)
    assert any("step size grows with width: hidden" in f for f in agree)
    assert sum("orthogonal" in f for f in agree) == 4
    # one optimizer and one learning rate: the Fig. 2 findings cannot be judged
    assert verdicts["Adam changes both a and k relative to SGD (Fig. 2b)"] == "inconclusive"
    for c in result.comparison:
        assert c.rule and c.paper and c.ours


def test_contrary_study_disagrees(tmp_path):
    rows = _rows(
        tmp_path,
        k=-0.3,
        b=0.0,
        a=50.0,
        fractions=(1.0,),
        distance_exponent={"embedding": 0.3, "hidden": 0.3, "softmax": 0.3, "all": 0.3},
        step_exponent={"embedding": -0.2, "hidden": 0.6, "softmax": 0.1, "all": 0.2},
        as_over_pi=0.75,
    )
    result = A.analyze(rows, n_boot=N_BOOT)
    verdicts = {c.finding: c.verdict for c in result.comparison}
    assert verdicts["steps to converge fall as a power law of model size (Fig. 1a)"] == "disagree"
    assert all(v == "disagree" for f, v in verdicts.items() if "direct distance shrinks" in f)
    assert verdicts["step size grows with width: softmax (Fig. 7)"] == "disagree"
    assert verdicts["step size grows with width: hidden (Fig. 7)"] == "disagree"
    assert verdicts["step size grows with width: embedding (Fig. 7)"] == "disagree"
    assert all(v == "disagree" for f, v in verdicts.items() if "orthogonal" in f)
    assert "dataset size" in " ".join(f for f, v in verdicts.items() if v == "inconclusive")


def test_learning_rate_and_adam_findings(tmp_path):
    rows = _rows(
        tmp_path,
        fractions=(1.0,),
        seeds=(0, 1, 2),
        conditions=(("sgd", 0.3), ("sgd", 0.8), ("adam", 0.003)),
        a_by_condition={("sgd", 0.3): 8.0e5, ("sgd", 0.8): 3.0e5, ("adam", 0.003): 4.0e3},
        k_by_condition={("adam", 0.003): 0.1},
        b=0.0,
    )
    conv = A.convergence_fits(rows, n_boot=100)
    verdicts = {c.finding: c.verdict for c in A.paper_comparison(rows, conv, [], [], [])}
    assert verdicts["a larger learning rate shifts the curve down without changing k (Fig. 2a)"] == "agree"
    assert verdicts["Adam changes both a and k relative to SGD (Fig. 2b)"] == "agree"
    assert A.primary_slice(rows)[0].optimizer == "sgd"


def test_learning_rates_with_different_k_disagree(tmp_path):
    rows = _rows(
        tmp_path,
        fractions=(1.0,),
        seeds=(0, 1, 2),
        conditions=(("sgd", 0.3), ("sgd", 0.8)),
        k_by_condition={("sgd", 0.3): 0.2, ("sgd", 0.8): 0.8},
        a_by_condition={("sgd", 0.3): 2.0e4, ("sgd", 0.8): 4.0e6},
        b=0.0,
    )
    conv = A.convergence_fits(rows, n_boot=100)
    (lr_row,) = [c for c in A.paper_comparison(rows, conv, [], [], []) if "learning rate" in c.finding]
    assert lr_row.verdict == "disagree"


def test_diverged_and_failed_runs_are_excluded_and_counted_capped_flagged(tmp_path):
    statuses = {(16, 0): "diverged", (32, 1): "diverged", (64, 2): "capped", (128, 3): "failed"}
    rows = _rows(tmp_path, fractions=(1.0,), statuses=statuses)
    result = A.analyze(rows, n_boot=100)
    assert result.accounting.by_status == {"converged": 21, "capped": 1, "diverged": 2, "failed": 1}
    (fit,) = result.convergence
    assert (fit.n_diverged, fit.n_failed, fit.n_capped) == (2, 1, 1)
    assert len(fit.points) == 22  # 25 runs minus 2 diverged minus 1 failed
    assert sum(p[4] for p in fit.points) == 1
    assert "capped" in fit.note
    row16 = next(w for w in result.widths if w.width == 16)
    assert (row16.n_runs, row16.n_diverged, row16.steps.n) == (5, 1, 4)
    for e in result.exponents:
        assert e.n_runs <= 22


@pytest.mark.parametrize("widths", [(16,), (16, 32), (16, 32, 64)])
def test_too_few_widths_give_not_enough_data_not_a_crash(tmp_path, widths):
    rows = _rows(tmp_path, widths=widths, seeds=(0, 1), fractions=(1.0,))
    result = A.analyze(rows, n_boot=N_BOOT)
    (fit,) = result.convergence
    assert fit.fit is None and fit.note.startswith("not enough data")
    slopes_possible = len(widths) >= 3
    for e in result.exponents:
        assert (e.exponent is not None) == slopes_possible
        if not slopes_possible:
            assert e.note.startswith("not enough data")
    (ds,) = result.dataset_size
    assert ds.fit is None and ds.note.startswith("not enough data")
    assert any(c.verdict == "inconclusive" for c in result.comparison)
    json.dumps(result.as_dict(), allow_nan=False)


def test_one_seed_per_width_still_fits_and_says_how_the_ci_was_made(tmp_path):
    rows = _rows(tmp_path, seeds=(0,), fractions=(1.0,), widths=(16, 32, 64, 128, 256, 512))
    (fit,) = A.convergence_fits(rows, n_boot=N_BOOT)
    assert fit.fit is not None and fit.fit.bootstrap_method == "pairs"
    assert "one seed per width" in fit.note


def test_empty_study_analyses_to_empty_results(tmp_path):
    rows = _rows(tmp_path, widths=())
    result = A.analyze(rows, n_boot=N_BOOT)
    assert result.accounting.total == 0 and result.primary is None
    assert result.convergence == () and result.comparison == () and result.lnn == ()
    json.dumps(result.as_dict(), allow_nan=False)


def test_angle_summary_in_units_of_pi(tmp_path):
    rows = _rows(tmp_path, fractions=(1.0,), as_over_pi=0.6)
    for a in A.angle_summary(rows):
        assert a.as_pi.mean == pytest.approx(0.6, abs=0.01)
        assert a.ae_pi.mean == pytest.approx(0.4, abs=0.01)


def test_yin_residuals_equal_brute_force_median_and_max(planted):
    rows, result = planted
    for y in result.yin:
        values = [s["yin_rel_residual"] for s in rows.summaries if s["group_name"] == y.group]
        assert y.max_rel == max(values) and y.median_rel == float(np.median(values))
        assert y.ok and y.n_runs == 50


def test_yin_residual_above_tolerance_is_not_ok(planted):
    rows, _ = planted
    broken = [dict(s) for s in rows.summaries]
    broken[0]["yin_rel_residual"] = 1e-3
    rows2 = A.StudyRows(runs=rows.runs, summaries=tuple(broken))
    bad = {y.group: y for y in A.yin_residuals(rows2)}[broken[0]["group_name"]]
    assert not bad.ok and bad.worst_run == broken[0]["run_id"]


def test_lnn_comparison_predicts_minus_one_half_for_the_models_init(tmp_path):
    rows = _rows(
        tmp_path,
        fractions=(1.0,),
        widths=(32, 64, 128, 256, 512),
        distance_exponent={"embedding": -0.5, "hidden": -0.5, "softmax": 0.0, "all": -0.5},
    )
    result = A.analyze(rows, n_boot=N_BOOT)
    laws = {(c.init_law, c.scale_rule): c for c in result.lnn}
    fan_in = laws[("cube", "fan-in")]
    assert fan_in.matches_model and fan_in.limit_exponent == -0.5
    assert fan_in.predicted_exponent == pytest.approx(-0.5, abs=0.01)
    assert fan_in.verdicts["hidden"] == "consistent" and fan_in.verdicts["softmax"] == "inconsistent"
    fixed = laws[("gaussian", "fixed")]
    assert fixed.limit_exponent == 0.0 and -0.1 < fixed.predicted_exponent < 0.0
    assert fixed.verdicts["softmax"] == "consistent" and fixed.verdicts["hidden"] == "inconsistent"
    assert laws[("ball", "fixed")].predicted_exponent == pytest.approx(-0.5, abs=0.05)


def test_prediction_band_brackets_the_fit(planted):
    _, result = planted
    fit = result.convergence[0]
    grid = np.geomspace(3e3, 5e5, 7)
    low, high = A.prediction_band(fit, grid, n_boot=60)
    middle = fit.fit.predict(grid)
    assert np.all(low <= high) and np.all(low <= middle * 1.05) and np.all(high >= middle * 0.95)


def test_analysis_is_deterministic_and_json_clean(planted):
    rows, result = planted
    json.dumps(result.as_dict(), allow_nan=False)
    once, again = ([c.as_dict() for c in A.convergence_fits(rows, n_boot=50, seed=3)] for _ in range(2))
    assert once == again


@given(st.floats(-5, 5), st.floats(0, 5), st.sampled_from([1, -1]))
def test_sign_verdict_is_antisymmetric(low, width, expected):
    ci = (low, low + width)
    mirrored = (-(low + width), -low)
    flip = {"agree": "disagree", "disagree": "agree", "inconclusive": "inconclusive"}
    assert A.verdict_sign(mirrored, -expected) == A.verdict_sign(ci, expected)
    assert A.verdict_sign(ci, -expected) == flip[A.verdict_sign(ci, expected)]


def test_value_and_band_verdicts():
    assert A.verdict_value((0.3, 0.7), 0.5) == "agree"
    assert A.verdict_value((-0.1, 0.7), 0.5) == "inconclusive"  # the effect itself is not established
    assert A.verdict_value((0.6, 0.7), 0.5) == "disagree"
    assert A.verdict_value(None, 0.5) == "inconclusive"
    assert A.verdict_band((0.46, 0.52), (0.45, 0.55)) == "agree"
    assert A.verdict_band((0.56, 0.6), (0.45, 0.55)) == "disagree"
    assert A.verdict_band((0.5, 0.6), (0.45, 0.55)) == "inconclusive"


def test_bad_arguments_raise_input_error(planted):
    rows, _ = planted
    with pytest.raises(A.InputError, match="steps metric"):
        A.convergence_fits(rows, metric="steps")
    with pytest.raises(A.InputError, match="x must be"):
        A.group_exponents(rows, x="depth")
    with pytest.raises(A.InputError, match="traversal quantity"):
        A.group_exponents(rows, quantities=("speed",))


def test_steps_fall_finding_uses_the_pure_power_law_slope(planted):
    _, result = planted
    (row,) = [c for c in result.comparison if "power law of model size" in c.finding]
    assert row.ours.startswith("log-log slope") and "pure power law" in row.rule and row.verdict == "agree"
    for pure in result.convergence_pure:
        assert pure.fit is not None and not pure.fit.offset and pure.fit.b == 0.0


def test_non_finite_bounds_are_shown_as_such():
    assert A.format_ci(1.0, (math.nan, math.inf)) == "1 [n/a, ∞]"
    assert A.format_ci(1.0, (-math.inf, 2.0)) == "1 [−∞, 2]"
    assert A.format_ci(None, (0.0, 1.0)) == "–"


def test_stalled_runs_are_counted_in_the_accounting():
    runs = (
        {"run_id": "a", "status": "converged", "stop_reason": "stall"},
        {"run_id": "b", "status": "converged", "stop_reason": "patience"},
        {"run_id": "c", "status": "capped", "stop_reason": None},
    )
    accounting = A.run_accounting(A.StudyRows(runs=runs))
    assert accounting.stalled_runs == ("a",) and accounting.capped_runs == ("c",)
    assert "1 of the converged ended flat without overfitting" in accounting.describe()
