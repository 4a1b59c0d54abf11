"""Analysis of a study: power-law fits of steps vs model size, traversal exponents, checks against the paper.

Pure functions over the rows of a study store (schema: docs/architecture.md, "Results store"); no torch.
Load the rows once with :meth:`StudyRows.from_store` (or build them by hand in tests), then

* :func:`convergence_fits` — per condition and data fraction, ``steps ≈ a·M^(−k) + b`` against the
  parameter count ``M`` (Fig. 1a), with percentile-bootstrap CIs over seeds (seeds are resampled *within*
  each model size by :func:`overparam_theory.powerlaw.bootstrap_power_law`);
* :func:`dataset_size_fit` — ``steps ≈ c·D^α / M^k`` jointly over fractions (Section 3.2; the paper says
  "almost linear in D", i.e. α ≈ 1), ``D`` = training-split size in tokens (characters for char-lm);
* :func:`group_exponents` — per layer group, the log-log slope ``e`` of ``quantity ≈ c·width^e`` (direct
  distance ‖W* − W_0‖, mean step size ‖Δ_t‖ and mean As over the steps to W*) with a bootstrap CI
  (Figs. 6–8);
* :func:`angle_summary` — mean As per width and group, in units of π, with a t-interval over seeds (Fig. 8);
* :func:`yin_residuals` — how exactly the tracker's sums satisfy Yin et al.'s identity (paper eq. 3);
* :func:`width_table` — the per-width summary table printed at the end of a study;
* :func:`paper_comparison` / :func:`lnn_comparison` — our numbers against the paper's findings and against
  the width-K linear network's prediction for the distance exponent.

Conventions. A *condition* is one (optimizer, learning rate, lr scaling, depth) of the study; fits never
mix conditions. Runs with status ``diverged`` or ``failed`` are excluded from every fit and counted;
``capped`` runs (the step budget ran out before the stopping rule fired) are included and flagged, since
their step counts are lower bounds. Where there are too few widths or seeds a result carries ``fit=None``
and a ``note`` beginning "not enough data" instead of raising.

The traversal is the way from W_0 to W* (the minimum-validation-loss weights, reached after
``steps_to_min`` updates): the paper's "direct distance from initial weights to final (converged)
weights", and Yin's identity (paper eq. 3-4) with T = the steps to reach W*. A run goes on ``patience``
evaluations past W* before early stopping ends it at W_T; the quantities of that whole run
(‖W_T − W_0‖, step size and As over all T steps) are kept as secondary quantities (see QUANTITIES).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from overparam_theory.errors import InputError
from overparam_theory.powerlaw import (
    DatasetSizeFit,
    PowerLawFit,
    bootstrap_power_law,
    fit_dataset_size_law,
    student_t_quantile,
)

__all__ = [
    "ANGLE",
    "DISTANCE",
    "GROUP_ORDER",
    "METRICS",
    "PATH_LENGTH",
    "PRIMARY_QUANTITIES",
    "QUANTITIES",
    "SECONDARY_QUANTITIES",
    "STEP_SIZE",
    "AngleRow",
    "Comparison",
    "Condition",
    "ConvergenceFit",
    "DatasetSizeResult",
    "GroupExponent",
    "LNNComparison",
    "MeanCI",
    "RunAccounting",
    "StudyAnalysis",
    "StudyRows",
    "WidthRow",
    "YinRow",
    "analyze",
    "angle_summary",
    "convergence_fits",
    "dataset_size_fit",
    "group_exponents",
    "lnn_comparison",
    "mean_ci",
    "paper_comparison",
    "prediction_band",
    "primary_slice",
    "run_accounting",
    "width_table",
    "yin_residuals",
]

GROUP_ORDER = ("embedding", "hidden", "softmax", "all")
# steps metric -> human label. "within" is the paper's definition of time to convergence (Section 3.1:
# first evaluation within 1 % of the minimum validation loss); "min" is the step of the minimum (Fig. 1 axis).
METRICS = {
    "steps_to_within": "steps to within 1 % of min. validation loss",
    "steps_to_min": "steps to min. validation loss",
}
USABLE = ("converged", "capped")
NOT_ENOUGH = "not enough data"
# Angles are "roughly π/2" in the paper; we call mean As/π agreeing when its CI lies in this band.
ANGLE_BAND = (0.45, 0.55)
# Yin identity: a relative residual above this means the tracker's sums do not add up.
YIN_TOLERANCE = 1e-6


# --------------------------------------------------------------------------------------------------
# rows


@dataclass(frozen=True)
class StudyRows:
    """The rows of one study store: ``runs`` and ``summaries`` (traversal_summary) are what the fits use;
    ``traversal`` (per tracked step) and ``curves`` (``{run_id: {"train"|"valid": [(step, loss)]}}``) feed
    the trajectory and curve figures and may be empty."""

    runs: tuple[Mapping[str, Any], ...]
    summaries: tuple[Mapping[str, Any], ...] = ()
    traversal: tuple[Mapping[str, Any], ...] = ()
    curves: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_store(cls, store, *, with_traversal: bool = True, with_curves: bool = True) -> StudyRows:
        """Read a :class:`~overparam_empirical.store.StudyStore` (or a path to one / to its folder)."""
        from overparam_empirical.store import StudyStore

        own = not isinstance(store, StudyStore)
        db = StudyStore.open(store) if own else store
        try:
            runs = tuple(db.runs())
            curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
            if with_curves:
                for run in runs:
                    per_split: dict[str, list[tuple[int, float]]] = defaultdict(list)
                    for row in db.curves(run["run_id"]):
                        per_split[row["split"]].append((int(row["step"]), float(row["loss"])))
                    curves[run["run_id"]] = dict(per_split)
            return cls(
                runs=runs,
                summaries=tuple(db.traversal_summary()),
                traversal=tuple(db.traversal()) if with_traversal else (),
                curves=curves,
                metadata=db.metadata(),
            )
        finally:
            if own:
                db.close()

    def summaries_by_run(self) -> dict[str, dict[str, Mapping[str, Any]]]:
        """``{run_id: {group: summary row}}``."""
        out: dict[str, dict[str, Mapping[str, Any]]] = defaultdict(dict)
        for row in self.summaries:
            out[row["run_id"]][row["group_name"]] = row
        return dict(out)

    def groups(self) -> list[str]:
        """Layer groups present, in the paper's order (embedding, hidden, softmax, all), others after."""
        present = {row["group_name"] for row in self.summaries}
        return [g for g in GROUP_ORDER if g in present] + sorted(present - set(GROUP_ORDER))


@dataclass(frozen=True, order=True)
class Condition:
    """The optimisation setting shared by the runs of one fit."""

    optimizer: str
    lr: float
    lr_scaling: str = "none"
    depth: int | None = None

    @property
    def label(self) -> str:
        text = f"{self.optimizer} lr={self.lr:g}"
        if self.lr_scaling != "none":
            text += f" ({self.lr_scaling})"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "lr": self.lr,
            "lr_scaling": self.lr_scaling,
            "depth": self.depth,
        }


def condition_of(run: Mapping[str, Any]) -> Condition:
    depth = run.get("depth")
    return Condition(
        optimizer=str(run["optimizer"]),
        lr=float(run["lr"]),
        lr_scaling=str(run.get("lr_scaling") or "none"),
        depth=None if depth is None else int(depth),
    )


def _quiet():
    """Silence floating-point warnings of ill-conditioned bootstrap replicates (exp overflow of a
    runaway offset fit): such replicates show up as wide or non-finite CI bounds, which we report."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def _finite(value: Any) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _finite(value) and value > 0


# --------------------------------------------------------------------------------------------------
# small statistics


@dataclass(frozen=True)
class MeanCI:
    """Mean of ``n`` values with a two-sided Student-t interval at ``level`` (no interval when n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    level: float = 0.95

    @property
    def half_width(self) -> float | None:
        return None if self.low is None or self.high is None else (self.high - self.low) / 2.0

    def describe(self, fmt: str = ".4g") -> str:
        if self.n == 0 or not math.isfinite(self.mean):
            return "–"
        text = format(self.mean, fmt)
        if self.half_width is not None:
            text += f" ± {format(self.half_width, fmt)}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"mean": _json(self.mean), "low": _json(self.low), "high": _json(self.high), "n": self.n}


def mean_ci(values: Iterable[float], level: float = 0.95) -> MeanCI:
    """Mean and t-interval ``mean ± t_{(1+level)/2, n−1}·s/√n`` of the finite values (NaN mean if none)."""
    data = np.array([v for v in values if _finite(v)], dtype=float)
    n = len(data)
    if n == 0:
        return MeanCI(math.nan, None, None, 0, level)
    mean = float(data.mean())
    if n < 2:
        return MeanCI(mean, None, None, 1, level)
    half = student_t_quantile(0.5 + level / 2.0, n - 1) * float(data.std(ddof=1)) / math.sqrt(n)
    return MeanCI(mean, mean - half, mean + half, n, level)


def _json(value: Any) -> Any:
    """A JSON-safe number (NaN / inf -> None)."""
    if value is None:
        return None
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# --------------------------------------------------------------------------------------------------
# run accounting


@dataclass(frozen=True)
class RunAccounting:
    """How many runs the study holds per status; ``capped`` runs enter fits, flagged. ``stalled_runs``
    are converged runs that early stopping ended on a flat curve without a generalization gap (see
    :class:`~overparam_empirical.convergence.EarlyStopping`)."""

    total: int
    by_status: Mapping[str, int]
    diverged_runs: tuple[str, ...]
    failed_runs: tuple[str, ...]
    capped_runs: tuple[str, ...]
    stalled_runs: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"{self.total} runs"] + [f"{n} {s}" for s, n in self.by_status.items() if n]
        if self.stalled_runs:
            parts.append(f"{len(self.stalled_runs)} of the converged ended flat without overfitting (stall)")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_status": dict(self.by_status),
            "diverged_runs": list(self.diverged_runs),
            "failed_runs": list(self.failed_runs),
            "capped_runs": list(self.capped_runs),
            "stalled_runs": list(self.stalled_runs),
        }


def run_accounting(rows: StudyRows) -> RunAccounting:
    counts = {s: 0 for s in ("converged", "capped", "diverged", "failed")}
    for run in rows.runs:
        counts[run["status"]] = counts.get(run["status"], 0) + 1

    def ids(status: str) -> tuple[str, ...]:
        return tuple(r["run_id"] for r in rows.runs if r["status"] == status)

    stalled = tuple(
        r["run_id"] for r in rows.runs if r["status"] == "converged" and r.get("stop_reason") == "stall"
    )
    return RunAccounting(len(rows.runs), counts, ids("diverged"), ids("failed"), ids("capped"), stalled)


def _slices(rows: StudyRows) -> dict[tuple[Condition, float], list[Mapping[str, Any]]]:
    """Runs grouped by (condition, fraction), in sorted order."""
    out: dict[tuple[Condition, float], list[Mapping[str, Any]]] = defaultdict(list)
    for run in rows.runs:
        out[(condition_of(run), float(run["fraction"]))].append(run)
    return dict(sorted(out.items(), key=lambda kv: (kv[0][0], kv[0][1])))


def _status_counts(runs: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    """(diverged, failed, capped) among ``runs``."""
    statuses = [r["status"] for r in runs]
    return statuses.count("diverged"), statuses.count("failed"), statuses.count("capped")


def primary_slice(rows: StudyRows) -> tuple[Condition, float] | None:
    """The (condition, fraction) that the paper comparison uses.

    The paper's Section 4.3 is SGD without lr scaling, so such a condition is preferred; among the
    candidates the one with the most usable runs, then the largest data fraction (closest to the paper's
    data regime), then the smallest learning rate.
    """
    slices = _slices(rows)
    if not slices:
        return None

    def score(item):
        (cond, fraction), runs = item
        usable = sum(r["status"] in USABLE for r in runs)
        return (cond.optimizer == "sgd", cond.lr_scaling == "none", usable, fraction, -cond.lr)

    return max(slices.items(), key=score)[0]


# --------------------------------------------------------------------------------------------------
# Fig. 1a: steps vs parameter count


@dataclass(frozen=True)
class ConvergenceFit:
    """``steps ≈ a·M^(−k) + b`` for one condition and data fraction (``fit`` is None when impossible).

    ``points`` are the runs that entered the fit: ``(width, n_params, seed, steps, capped)``.
    """

    condition: Condition
    fraction: float
    metric: str
    fit: PowerLawFit | None
    note: str
    points: tuple[tuple[int, int, int, float, bool], ...]
    n_diverged: int
    n_failed: int
    n_capped: int
    train_tokens: int | None = None

    @property
    def n_widths(self) -> int:
        return len({p[0] for p in self.points})

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.condition.as_dict(),
            "fraction": self.fraction,
            "metric": self.metric,
            "train_tokens": self.train_tokens,
            **_fit_dict(self.fit),
            "note": self.note,
            "n_points": len(self.points),
            "n_widths": self.n_widths,
            "n_diverged_excluded": self.n_diverged,
            "n_failed_excluded": self.n_failed,
            "n_capped_included": self.n_capped,
        }


def _fit_dict(fit: PowerLawFit | None) -> dict[str, Any]:
    if fit is None:
        return {"a": None, "k": None, "b": None, "a_ci": None, "k_ci": None, "b_ci": None}
    return {
        "a": _json(fit.a),
        "k": _json(fit.k),
        "b": _json(fit.b),
        "a_ci": _json(fit.a_ci),
        "k_ci": _json(fit.k_ci),
        "b_ci": _json(fit.b_ci),
        "offset": fit.offset,
        "n_boot": fit.n_boot,
        "bootstrap_method": fit.bootstrap_method,
    }


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise InputError(f"unknown steps metric {metric!r}; choose from {', '.join(METRICS)}")
    return metric


def _min_widths_for_offset_fit() -> int:
    # a·M^-k + b has 3 parameters: with 3 widths it interpolates; a 4th width is the first real check.
    return 4


def convergence_fits(
    rows: StudyRows,
    *,
    metric: str = "steps_to_within",
    offset: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[ConvergenceFit]:
    """Fit ``steps ≈ a·M^(−k) + b`` per (condition, fraction) over the usable runs' parameter counts.

    ``offset=True`` is the paper's form (the offset ``b`` is the "minimum data" floor of Fig. 4); it needs
    4 widths, the pure power law (``offset=False``) 3. With fewer the result says "not enough data".
    CIs: percentile bootstrap over seeds within each width (:func:`bootstrap_power_law`).
    """
    metric = _check_metric(metric)
    results = []
    needed = _min_widths_for_offset_fit() if offset else 3
    for (cond, fraction), runs in _slices(rows).items():
        diverged, failed, capped = _status_counts(runs)
        points = tuple(
            (int(r["width"]), int(r["n_params"]), int(r["seed"]), float(r[metric]), r["status"] == "capped")
            for r in runs
            if r["status"] in USABLE and _positive(r.get(metric)) and _positive(r.get("n_params"))
        )
        tokens = [int(r["train_tokens"]) for r in runs if r.get("train_tokens")]
        fit, notes = None, []
        n_widths = len({p[0] for p in points})
        if n_widths < needed:
            notes.append(f"{NOT_ENOUGH}: {n_widths} width(s) with usable runs, the fit needs {needed}")
        else:
            m = np.array([p[1] for p in points], dtype=float)
            y = np.array([p[3] for p in points], dtype=float)
            try:
                with _quiet():
                    fit = bootstrap_power_law(m, y, n_boot=n_boot, seed=seed, level=level, offset=offset)
            except InputError as exc:
                notes.append(f"{NOT_ENOUGH}: {exc}")
            else:
                if max(np.bincount(np.unique(m, return_inverse=True)[1])) < 2:
                    notes.append("one seed per width: the CI resamples points, not seeds")
        if capped:
            notes.append(f"{capped} capped run(s) included: their step counts are lower bounds")
        note = "; ".join(notes)
        results.append(
            ConvergenceFit(
                cond,
                fraction,
                metric,
                fit,
                note,
                points,
                diverged,
                failed,
                capped,
                train_tokens=max(tokens) if tokens else None,
            )
        )
    return results


def prediction_band(
    result: ConvergenceFit, grid: Sequence[float], *, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray] | None:
    """Pointwise percentile band of the fitted curve ``a·M^(−k) + b`` at the sizes ``grid``.

    The same resampling as the fit's CIs (seeds drawn with replacement within each width), refitting with
    :func:`overparam_theory.powerlaw.fit_power_law`; the band is what the figures shade. ``None`` when the
    result has no fit or no width holds two seeds (nothing to resample).
    """
    from overparam_theory.powerlaw import fit_power_law

    if result.fit is None:
        return None
    m = np.array([p[1] for p in result.points], dtype=float)
    y = np.array([p[3] for p in result.points], dtype=float)
    members = [np.flatnonzero(m == value) for value in np.unique(m)]
    if max(len(idx) for idx in members) < 2:
        return None
    rng = np.random.default_rng(seed)
    grid_array = np.asarray(grid, dtype=float)
    curves = []
    for _ in range(int(n_boot)):
        picks = np.concatenate([idx[rng.integers(0, len(idx), len(idx))] for idx in members])
        try:
            with _quiet():
                fit = fit_power_law(m[picks], y[picks], offset=result.fit.offset, n_starts=2)
                curve = fit.predict(grid_array)
        except InputError:
            continue
        if np.all(np.isfinite(curve)):  # a replicate whose optimiser ran off to infinity says nothing
            curves.append(curve)
    if len(curves) < 2:
        return None
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(np.array(curves), [tail, 100.0 - tail], axis=0)
    return low, high


# --------------------------------------------------------------------------------------------------
# Section 3.2: steps vs dataset size


@dataclass(frozen=True)
class DatasetSizeResult:
    """``steps ≈ c·D^α / M^k`` over the fractions of one condition (``fit`` None when impossible)."""

    condition: Condition
    metric: str
    fit: DatasetSizeFit | None
    note: str
    fractions: tuple[float, ...]
    n_points: int

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.condition.as_dict(), "metric": self.metric, "note": self.note}
        out["fractions"] = list(self.fractions)
        out["n_points"] = self.n_points
        fit = self.fit
        if fit is None:
            out.update(c=None, alpha=None, k=None, alpha_ci=None, k_ci=None)
        else:
            out.update(
                c=_json(fit.c),
                alpha=_json(fit.alpha),
                k=_json(fit.k),
                c_ci=_json(fit.c_ci),
                alpha_ci=_json(fit.alpha_ci),
                k_ci=_json(fit.k_ci),
                linear_in_d_consistent=fit.linear_in_d_consistent,
                paper_form_k=_json(fit.paper_k),
                rss_log=_json(fit.rss_log),
                paper_form_rss_log=_json(fit.paper_rss_log),
            )
        return out


def dataset_size_fit(
    rows: StudyRows, *, metric: str = "steps_to_within", level: float = 0.95
) -> list[DatasetSizeResult]:
    """Per condition, fit ``steps ≈ c·D^α / M^k`` with ``D = train_tokens`` over all usable runs.

    Needs 2+ fractions and 2+ widths (and 4+ runs for intervals); otherwise "not enough data".
    """
    metric = _check_metric(metric)
    by_condition: dict[Condition, list[Mapping[str, Any]]] = defaultdict(list)
    for run in rows.runs:
        by_condition[condition_of(run)].append(run)
    results = []
    for cond in sorted(by_condition):
        usable = [
            r
            for r in by_condition[cond]
            if r["status"] in USABLE
            and _positive(r.get(metric))
            and _positive(r.get("n_params"))
            and _positive(r.get("train_tokens"))
        ]
        fractions = tuple(sorted({float(r["fraction"]) for r in usable}))
        widths = {int(r["width"]) for r in usable}
        fit, note = None, ""
        if len(fractions) < 2 or len(widths) < 2:
            note = (
                f"{NOT_ENOUGH}: {len(fractions)} fraction(s) and {len(widths)} width(s) with usable runs; "
                "the dataset-size law needs 2 of each"
            )
        else:
            try:
                fit = fit_dataset_size_law(
                    [r["train_tokens"] for r in usable],
                    [r["n_params"] for r in usable],
                    [r[metric] for r in usable],
                    level=level,
                )
            except InputError as exc:
                note = f"{NOT_ENOUGH}: {exc}"
            else:
                note = "; ".join(fit.notes)
        results.append(DatasetSizeResult(cond, metric, fit, note, fractions, len(usable)))
    return results


# --------------------------------------------------------------------------------------------------
# Figs. 6-8: traversal quantities vs width per layer group

QUANTITIES = {
    # primary: the way from W_0 to W* (traversal_summary columns *_to_star)
    "distance_init_to_star": "direct distance ‖W* − W_0‖",
    "mean_step_size_to_star": "mean step size ‖Δ_t‖ over the steps to W*",
    "path_length_to_star": "path length Σ‖Δ_t‖ to W*",
    "mean_as_to_star": "mean As over the steps to W* (radians)",
    # secondary: the whole run, to W_T where early stopping ended it
    "final_distance": "distance ‖W_T − W_0‖ to the weights where the run stopped",
    "mean_step_size": "mean step size ‖Δ_t‖ over the whole run",
    "path_length": "path length Σ‖Δ_t‖ of the whole run",
    "mean_as": "mean As over the whole run (radians)",
}
PRIMARY_QUANTITIES = (
    "distance_init_to_star",
    "mean_step_size_to_star",
    "path_length_to_star",
    "mean_as_to_star",
)
SECONDARY_QUANTITIES = ("final_distance", "mean_step_size", "path_length", "mean_as")
DISTANCE, STEP_SIZE, PATH_LENGTH, ANGLE = PRIMARY_QUANTITIES


@dataclass(frozen=True)
class GroupExponent:
    """``quantity ≈ c·x^exponent`` for one layer group (x = width or parameter count) in one slice.

    ``exponent_ci`` is the percentile-bootstrap interval (seeds resampled within each width);
    ``change`` is the relative change of the per-width mean from the narrowest to the widest model
    (the paper quotes e.g. "25 % reduction for softmax").
    """

    condition: Condition
    fraction: float
    group: str
    quantity: str
    x: str
    exponent: float | None
    exponent_ci: tuple[float, float] | None
    prefactor: float | None
    change: float | None
    n_widths: int
    n_runs: int
    note: str
    points: tuple[tuple[int, int, float], ...] = ()  # (width, n_params, value)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.condition.as_dict(),
            "fraction": self.fraction,
            "group": self.group,
            "quantity": self.quantity,
            "x": self.x,
            "exponent": _json(self.exponent),
            "exponent_ci": _json(self.exponent_ci),
            "prefactor": _json(self.prefactor),
            "relative_change_narrowest_to_widest": _json(self.change),
            "n_widths": self.n_widths,
            "n_runs": self.n_runs,
            "note": self.note,
        }


def _usable_with_summaries(runs, summaries_by_run):
    return [r for r in runs if r["status"] in USABLE and r["run_id"] in summaries_by_run]


def group_exponents(
    rows: StudyRows,
    *,
    quantities: Sequence[str] = (DISTANCE, STEP_SIZE),
    x: str = "width",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[GroupExponent]:
    """Log-log slope of each traversal ``quantity`` against ``x`` ("width" or "n_params") per group.

    ``exponent`` is the OLS slope of ``log quantity`` on ``log x`` over all usable runs (the pure power law
    of :func:`bootstrap_power_law` with ``offset=False``; its ``k`` is ``−exponent``). Needs 3 widths.
    """
    if x not in ("width", "n_params"):
        raise InputError(f"x must be 'width' or 'n_params', got {x!r}")
    unknown = [q for q in quantities if q not in QUANTITIES]
    if unknown:
        raise InputError(f"unknown traversal quantity {unknown[0]!r}; choose from {', '.join(QUANTITIES)}")
    by_run = rows.summaries_by_run()
    groups = rows.groups()
    results = []
    for (cond, fraction), runs in _slices(rows).items():
        usable = _usable_with_summaries(runs, by_run)
        for group in groups:
            for quantity in quantities:
                points = tuple(
                    (int(r["width"]), int(r["n_params"]), float(by_run[r["run_id"]][group][quantity]))
                    for r in usable
                    if group in by_run[r["run_id"]] and _positive(by_run[r["run_id"]][group].get(quantity))
                )
                results.append(_exponent(cond, fraction, group, quantity, x, points, n_boot, seed, level))
    return results


def _exponent(cond, fraction, group, quantity, x, points, n_boot, seed, level) -> GroupExponent:
    widths = sorted({p[0] for p in points})
    change = None
    if len(widths) >= 2:
        first = np.mean([p[2] for p in points if p[0] == widths[0]])
        last = np.mean([p[2] for p in points if p[0] == widths[-1]])
        change = float(last / first - 1.0)
    base = dict(
        condition=cond,
        fraction=fraction,
        group=group,
        quantity=quantity,
        x=x,
        change=change,
        n_widths=len(widths),
        n_runs=len(points),
        points=points,
    )
    if len(widths) < 3:
        note = f"{NOT_ENOUGH}: {len(widths)} width(s) with usable runs, a slope needs 3"
        return GroupExponent(exponent=None, exponent_ci=None, prefactor=None, note=note, **base)
    xs = np.array([p[0] if x == "width" else p[1] for p in points], dtype=float)
    ys = np.array([p[2] for p in points], dtype=float)
    try:
        with _quiet():
            fit = bootstrap_power_law(xs, ys, n_boot=n_boot, seed=seed, level=level, offset=False)
    except InputError as exc:
        return GroupExponent(
            exponent=None, exponent_ci=None, prefactor=None, note=f"{NOT_ENOUGH}: {exc}", **base
        )
    ci = None if fit.k_ci is None else (-fit.k_ci[1], -fit.k_ci[0])
    note = "" if fit.bootstrap_method == "within-group" else "one run per width: CI from resampling points"
    return GroupExponent(exponent=-fit.k, exponent_ci=ci, prefactor=fit.a, note=note, **base)


# --------------------------------------------------------------------------------------------------
# Fig. 8: angles, and the per-width table


@dataclass(frozen=True)
class AngleRow:
    """Mean As and Ae (each run's per-step average over the updates before W*) at one width, in units of π."""

    condition: Condition
    fraction: float
    group: str
    width: int
    n_params: int
    as_pi: MeanCI
    ae_pi: MeanCI

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.condition.as_dict(),
            "fraction": self.fraction,
            "group": self.group,
            "width": self.width,
            "n_params": self.n_params,
            "mean_as_over_pi": self.as_pi.as_dict(),
            "mean_ae_over_pi": self.ae_pi.as_dict(),
        }


def _by_width(runs) -> dict[int, list[Mapping[str, Any]]]:
    out: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for run in runs:
        out[int(run["width"])].append(run)
    return dict(sorted(out.items()))


def angle_summary(rows: StudyRows, level: float = 0.95) -> list[AngleRow]:
    """Per slice, width and group: mean over seeds of each run's mean As (and Ae), divided by π."""
    by_run = rows.summaries_by_run()
    out = []
    for (cond, fraction), runs in _slices(rows).items():
        for width, width_runs in _by_width(_usable_with_summaries(runs, by_run)).items():
            for group in rows.groups():
                summaries = [by_run[r["run_id"]][group] for r in width_runs if group in by_run[r["run_id"]]]
                if not summaries:
                    continue
                out.append(
                    AngleRow(
                        cond,
                        fraction,
                        group,
                        width,
                        int(width_runs[0]["n_params"]),
                        mean_ci([s.get(ANGLE, math.nan) / math.pi for s in summaries], level),
                        mean_ci([s.get("mean_ae_to_star", math.nan) / math.pi for s in summaries], level),
                    )
                )
    return out


@dataclass(frozen=True)
class WidthRow:
    """One line of the end-of-study table: one width in one slice, statistics over its seeds."""

    condition: Condition
    fraction: float
    width: int
    n_params: int
    n_runs: int
    n_diverged: int
    n_failed: int
    n_capped: int
    steps: MeanCI
    steps_to_min: MeanCI
    min_val_loss: MeanCI
    wall_seconds: MeanCI
    # group -> {"distance" ‖W*−W_0‖, "step_size" and "as_pi" to W*, "distance_to_stop" ‖W_T−W_0‖}
    groups: Mapping[str, Mapping[str, MeanCI]]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.condition.as_dict(),
            "fraction": self.fraction,
            "width": self.width,
            "n_params": self.n_params,
            "n_runs": self.n_runs,
            "n_diverged": self.n_diverged,
            "n_failed": self.n_failed,
            "n_capped": self.n_capped,
            "steps": self.steps.as_dict(),
            "steps_to_min": self.steps_to_min.as_dict(),
            "min_val_loss": self.min_val_loss.as_dict(),
            "wall_seconds": self.wall_seconds.as_dict(),
            "groups": {g: {k: v.as_dict() for k, v in q.items()} for g, q in self.groups.items()},
        }


def width_table(rows: StudyRows, *, metric: str = "steps_to_within", level: float = 0.95) -> list[WidthRow]:
    """Per slice and width: params, steps (``metric`` and steps to min) and min validation loss as
    mean ± t-interval over the usable seeds, plus per group distance, step size and As/π."""
    metric = _check_metric(metric)
    by_run = rows.summaries_by_run()
    out = []
    for (cond, fraction), runs in _slices(rows).items():
        for width, width_runs in _by_width(runs).items():
            usable = [r for r in width_runs if r["status"] in USABLE]
            diverged, failed, capped = _status_counts(width_runs)
            groups: dict[str, dict[str, MeanCI]] = {}
            for group in rows.groups():
                sums = [by_run[r["run_id"]][group] for r in usable if group in by_run.get(r["run_id"], {})]
                if sums:
                    groups[group] = {
                        "distance": mean_ci([s.get(DISTANCE) for s in sums], level),
                        "step_size": mean_ci([s.get(STEP_SIZE) for s in sums], level),
                        "as_pi": mean_ci([s.get(ANGLE, math.nan) / math.pi for s in sums], level),
                        "distance_to_stop": mean_ci([s.get("final_distance") for s in sums], level),
                    }
            n_params = [int(r["n_params"]) for r in width_runs if r.get("n_params")]
            out.append(
                WidthRow(
                    cond,
                    fraction,
                    width,
                    n_params[0] if n_params else 0,
                    len(width_runs),
                    diverged,
                    failed,
                    capped,
                    mean_ci([r.get(metric) for r in usable], level),
                    mean_ci([r.get("steps_to_min") for r in usable], level),
                    mean_ci([r.get("min_val_loss") for r in usable], level),
                    mean_ci([r.get("wall_seconds") for r in width_runs], level),
                    groups,
                )
            )
    return out


# --------------------------------------------------------------------------------------------------
# Yin identity


@dataclass(frozen=True)
class YinRow:
    """Relative residuals of ‖W_T−W*‖² = ‖W_0−W*‖² + Σ‖Δ_t‖² + 2Σ⟨W_t−W*, Δ_t⟩ over the runs of a group.

    (With Δ_t = −η∇F(W_t) this is the paper's eq. 3; the tracker uses the update actually applied, for
    which the identity is exact algebra, so residuals measure floating-point accumulation only.)
    """

    group: str
    n_runs: int
    median_rel: float
    max_rel: float
    max_abs: float
    worst_run: str | None
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.n_runs > 0 and self.max_rel <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "n_runs": self.n_runs,
            "median_rel_residual": _json(self.median_rel),
            "max_rel_residual": _json(self.max_rel),
            "max_abs_residual": _json(self.max_abs),
            "worst_run": self.worst_run,
            "tolerance": self.tolerance,
            "ok": self.ok,
        }


def yin_residuals(rows: StudyRows, tolerance: float = YIN_TOLERANCE) -> list[YinRow]:
    """Per group, median and max of the runs' relative Yin residuals (usable runs with a finite value)."""
    usable = {r["run_id"] for r in rows.runs if r["status"] in USABLE}
    out = []
    for group in rows.groups():
        found = [
            (s["yin_rel_residual"], s.get("yin_abs_residual", math.nan), s["run_id"])
            for s in rows.summaries
            if s["group_name"] == group and s["run_id"] in usable and _finite(s.get("yin_rel_residual"))
        ]
        if not found:
            out.append(YinRow(group, 0, math.nan, math.nan, math.nan, None, tolerance))
            continue
        rel = np.array([f[0] for f in found])
        worst = int(np.argmax(rel))
        abs_values = [f[1] for f in found if _finite(f[1])]
        out.append(
            YinRow(
                group,
                len(found),
                float(np.median(rel)),
                float(rel[worst]),
                float(max(abs_values)) if abs_values else math.nan,
                found[worst][2],
                tolerance,
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# comparison with the paper


@dataclass(frozen=True)
class Comparison:
    """One finding of the paper next to ours: ``verdict`` is "agree", "disagree" or "inconclusive"
    according to ``rule`` (stated in words so that a reader can check it)."""

    finding: str
    paper: str
    ours: str
    verdict: str
    rule: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "finding": self.finding,
            "paper": self.paper,
            "ours": self.ours,
            "verdict": self.verdict,
            "rule": self.rule,
        }


def format_bound(value: float, fmt: str = ".3g") -> str:
    """A CI bound for display: non-finite bounds (runaway bootstrap replicates) read "∞", "−∞" or "n/a"."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return format(value, fmt)


def format_count(n: float) -> str:
    """A parameter or token count for tables and axis labels: 13.9k, 13.2M."""
    if n >= 1e6:
        return f"{n / 1e6:.3g}M"
    if n >= 1e3:
        return f"{n / 1e3:.3g}k"
    return f"{n:.0f}"


def format_ci(value: float | None, ci: Sequence[float] | None, fmt: str = ".3g") -> str:
    """``value [low, high]`` (or ``–`` when there is no value)."""
    if value is None or not math.isfinite(value):
        return "–"
    text = format(value, fmt)
    if ci is not None:
        text += f" [{format_bound(ci[0], fmt)}, {format_bound(ci[1], fmt)}]"
    return text


_fmt_ci = format_ci


def verdict_sign(ci: tuple[float, float] | None, expected: int) -> str:
    """``expected`` = +1 or −1: agree if the whole CI has that sign, disagree if it all has the other."""
    if ci is None:
        return "inconclusive"
    low, high = ci
    if (expected > 0 and low > 0) or (expected < 0 and high < 0):
        return "agree"
    if (expected > 0 and high < 0) or (expected < 0 and low > 0):
        return "disagree"
    return "inconclusive"


def verdict_value(ci: tuple[float, float] | None, value: float) -> str:
    """Agree if ``value`` lies in the CI *and* the CI excludes 0 (so the effect itself is established);
    disagree if ``value`` lies outside the CI; inconclusive otherwise (CI contains both 0 and ``value``)."""
    if ci is None:
        return "inconclusive"
    low, high = ci
    if not low <= value <= high:
        return "disagree"
    return "inconclusive" if low <= 0.0 <= high else "agree"


def verdict_band(ci: tuple[float, float] | None, band: tuple[float, float]) -> str:
    """Agree if the CI lies inside ``band``, disagree if it lies entirely outside, else inconclusive."""
    if ci is None:
        return "inconclusive"
    low, high = ci
    if band[0] <= low and high <= band[1]:
        return "agree"
    if high < band[0] or low > band[1]:
        return "disagree"
    return "inconclusive"


def _overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool | None:
    if a is None or b is None:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def _find(exponents, cond, fraction, group, quantity, x="width") -> GroupExponent | None:
    for e in exponents:
        if (e.condition, e.fraction, e.group, e.quantity, e.x) == (cond, fraction, group, quantity, x):
            return e
    return None


def _largest_fraction_fit(conv: Sequence[ConvergenceFit], cond: Condition) -> ConvergenceFit | None:
    fitted = [c for c in conv if c.condition == cond and c.fit is not None]
    return max(fitted, key=lambda c: c.fraction) if fitted else None


def paper_comparison(
    rows: StudyRows,
    conv: Sequence[ConvergenceFit],
    datasize: Sequence[DatasetSizeResult],
    exponents: Sequence[GroupExponent],
    angles: Sequence[AngleRow],
    level: float = 0.95,
    conv_pure: Sequence[ConvergenceFit] | None = None,
) -> list[Comparison]:
    """The paper's findings (Sections 3.2 and 4.3) against this study, on :func:`primary_slice`.

    With ``conv_pure`` (fits with ``offset=False``) the questions about k — do steps fall with size, does
    the learning rate or the optimizer change k — use the log-log slope of the pure power law: with few
    widths the offset form's k trades off against b and is barely identifiable. Each row states its rule.
    Findings whose data are absent (no Adam runs, one learning rate, one fraction) are listed as
    "inconclusive" with the reason, so the table always shows the whole list.
    """
    out: list[Comparison] = []
    primary = primary_slice(rows)
    if primary is None:
        return out
    cond, fraction = primary
    sign_rule = "sign of the CI: agree if the whole CI is on the paper's side, disagree if on the other"

    # 1. steps fall with model size (k > 0) in every fitted fraction
    slopes = conv_pure is not None
    fits = [c for c in (conv_pure if slopes else conv) if c.condition == cond]
    fitted = [c for c in fits if c.fit is not None]
    if fitted:
        verdicts = [verdict_sign(c.fit.k_ci, +1) for c in fitted]
        verdict = (
            "agree"
            if all(v == "agree" for v in verdicts)
            else ("disagree" if any(v == "disagree" for v in verdicts) else "inconclusive")
        )
        ours = "; ".join(f"{c.fraction * 100:.3g} %: k={_fmt_ci(c.fit.k, c.fit.k_ci)}" for c in fitted)
    else:
        verdict, ours = "inconclusive", (fits[0].note if fits else "no runs")
    out.append(
        Comparison(
            "steps to converge fall as a power law of model size (Fig. 1a)",
            "k > 0 for every data fraction",
            ("log-log slope " if slopes else "") + ours,
            verdict,
            sign_rule
            + " (all fractions must agree)"
            + ("; k of the pure power law steps ≈ a·M^(−k)" if slopes else "; k of a·M^(−k) + b"),
        )
    )

    # 2. larger data set → more steps; linear in D (alpha ≈ 1)
    ds = next((d for d in datasize if d.condition == cond), None)
    if ds is None or ds.fit is None:
        out.append(
            Comparison(
                "steps grow linearly with dataset size: steps ≈ D/M^k (Fig. 3b)",
                "α ≈ 1",
                ds.note if ds else "no runs",
                "inconclusive",
                "α's CI contains 1 and excludes 0",
            )
        )
    else:
        fit = ds.fit
        ours = f"α={_fmt_ci(fit.alpha, fit.alpha_ci)}, k={_fmt_ci(fit.k, fit.k_ci)}"
        out.append(
            Comparison(
                "steps grow linearly with dataset size: steps ≈ D/M^k (Fig. 3b)",
                "α ≈ 1",
                ours,
                verdict_value(fit.alpha_ci, 1.0),
                "agree if α's CI contains 1 and excludes 0; disagree if it excludes 1",
            )
        )

    # 3. direct distance shrinks with width, per group
    for group in rows.groups():
        e = _find(exponents, cond, fraction, group, DISTANCE)
        if e is None:
            continue
        paper = {
            "softmax": "shrinks (−25 % over the range)",
            "hidden": "shrinks (−15 %)",
            "embedding": "shrinks (−13 %)",
        }.get(group, "shrinks")
        out.append(
            Comparison(
                f"direct distance shrinks with width: {group} (Fig. 6)",
                paper,
                _describe_exponent(e),
                verdict_sign(e.exponent_ci, -1),
                sign_rule + " (exponent of ‖W* − W_0‖ vs width, W* = min. validation loss weights)",
            )
        )

    # 4. step size grows: softmax ≈ width^0.5, hidden ≈ width^0.21, embedding barely
    for group, value in (("softmax", 0.5), ("hidden", 0.21)):
        e = _find(exponents, cond, fraction, group, STEP_SIZE)
        if e is None:
            continue
        out.append(
            Comparison(
                f"step size grows with width: {group} (Fig. 7)",
                f"∝ width^{value}",
                _describe_exponent(e),
                verdict_value(e.exponent_ci, value),
                f"agree if the exponent's CI contains {value} and excludes 0; "
                f"disagree if it excludes {value} (mean ‖Δ_t‖ over the steps to W*)",
            )
        )
    for group in ("embedding", "all"):
        e = _find(exponents, cond, fraction, group, STEP_SIZE)
        if e is None:
            continue
        out.append(
            Comparison(
                f"step size grows with width: {group} (Fig. 7)",
                "grows" if group == "all" else "grows little (+10 % over 16.5× params)",
                _describe_exponent(e),
                verdict_sign(e.exponent_ci, +1),
                sign_rule + " (exponent of the mean ‖Δ_t‖ over the steps to W* vs width)",
            )
        )

    # 5. angles ≈ π/2
    for group in rows.groups():
        values = [a for a in angles if (a.condition, a.fraction, a.group) == (cond, fraction, group)]
        if not values:
            continue
        pooled = mean_ci([a.as_pi.mean for a in values], level)
        ci = (pooled.low, pooled.high) if pooled.low is not None else None
        out.append(
            Comparison(
                f"gradients ~ orthogonal to W_t − W_0: mean As, {group} (Fig. 8)",
                "≈ 0.5 π, opening slowly with width",
                f"{_fmt_ci(pooled.mean, ci)} π (mean over {len(values)} widths)",
                verdict_band(ci, ANGLE_BAND),
                f"agree if the CI of the mean over widths lies in [{ANGLE_BAND[0]}, {ANGLE_BAND[1]}] π; "
                "disagree if it lies outside (As averaged per step over the updates before W*)",
            )
        )

    # 6. Fig. 2: learning rate shifts a but keeps k; Adam changes k
    out.extend(_optimizer_findings(conv_pure if slopes else conv, cond))
    return out


def _describe_exponent(e: GroupExponent) -> str:
    if e.exponent is None:
        return e.note
    text = f"width^{_fmt_ci(e.exponent, e.exponent_ci)}"
    if e.change is not None:
        text += f" ({e.change:+.0%} narrowest→widest)"
    return text


def _optimizer_findings(conv: Sequence[ConvergenceFit], cond: Condition) -> list[Comparison]:
    out = []
    same_opt = sorted(
        {
            c.condition
            for c in conv
            if c.condition.optimizer == cond.optimizer
            and c.condition.lr_scaling == cond.lr_scaling
            and c.condition.depth == cond.depth
        }
    )
    finding = "a larger learning rate shifts the curve down without changing k (Fig. 2a)"
    rule = (
        "agree if the k CIs of the learning rates overlap and the fitted steps fall with lr; "
        "disagree if the k CIs are disjoint"
    )
    fits = [f for f in (_largest_fraction_fit(conv, c) for c in same_opt) if f is not None]
    if len(fits) < 2:
        out.append(
            Comparison(finding, "same k, smaller a", f"{NOT_ENOUGH}: one learning rate", "inconclusive", rule)
        )
    else:
        fits.sort(key=lambda f: f.condition.lr)
        ours = "; ".join(
            f"lr={f.condition.lr:g}: k={_fmt_ci(f.fit.k, f.fit.k_ci)}, a={f.fit.a:.3g}" for f in fits
        )
        overlaps = [_overlap(fits[i].fit.k_ci, fits[i + 1].fit.k_ci) for i in range(len(fits) - 1)]
        # a alone is not comparable across different k; compare the fitted steps at the middle size
        mid = float(np.exp(np.mean([math.log(p[1]) for f in fits for p in f.points])))
        steps_at_mid = [float(f.fit.predict(mid)) for f in fits]
        falls = all(steps_at_mid[i + 1] < steps_at_mid[i] for i in range(len(fits) - 1))
        if None in overlaps:
            verdict = "inconclusive"
        elif not all(overlaps):
            verdict = "disagree"
        else:
            verdict = "agree" if falls else "inconclusive"
        out.append(Comparison(finding, "same k, smaller a", ours, verdict, rule))

    finding = "Adam changes both a and k relative to SGD (Fig. 2b)"
    rule = "agree if the Adam and SGD k CIs are disjoint; inconclusive if they overlap"
    sgd = _largest_fraction_fit(conv, cond) if cond.optimizer == "sgd" else None
    adam_conditions = sorted({c.condition for c in conv if c.condition.optimizer == "adam"})
    adam = next((f for f in (_largest_fraction_fit(conv, c) for c in adam_conditions) if f is not None), None)
    if sgd is None or adam is None:
        out.append(
            Comparison(
                finding, "different k", f"{NOT_ENOUGH}: needs fitted SGD and Adam runs", "inconclusive", rule
            )
        )
    else:
        overlap = _overlap(sgd.fit.k_ci, adam.fit.k_ci)
        ours = f"SGD k={_fmt_ci(sgd.fit.k, sgd.fit.k_ci)}; Adam k={_fmt_ci(adam.fit.k, adam.fit.k_ci)}"
        verdict = "inconclusive" if overlap in (None, True) else "agree"
        out.append(Comparison(finding, "different k", ours, verdict, rule))
    return out


# --------------------------------------------------------------------------------------------------
# comparison with the width-K linear network


@dataclass(frozen=True)
class LNNComparison:
    """The direct-distance exponent the width-K linear network predicts under one init law, against the
    measured exponent of each layer group (``verdicts``: consistent / inconsistent / inconclusive)."""

    init_law: str
    scale_rule: str  # "fixed" (same scale at every width) or "fan-in" (scale = 1/sqrt(width))
    description: str
    matches_model: bool
    predicted_exponent: float  # OLS slope of log E[D0] on log K over the study's widths
    limit_exponent: float  # K -> infinity
    measured: Mapping[str, tuple[float | None, tuple[float, float] | None]]  # group -> (exponent, CI)
    verdicts: Mapping[str, str]
    rule: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "init_law": self.init_law,
            "scale_rule": self.scale_rule,
            "description": self.description,
            "matches_model": self.matches_model,
            "predicted_exponent": _json(self.predicted_exponent),
            "limit_exponent": _json(self.limit_exponent),
            "measured": {g: {"exponent": _json(v[0]), "ci": _json(v[1])} for g, v in self.measured.items()},
            "verdicts": dict(self.verdicts),
            "rule": self.rule,
        }


# (law, scale rule, description). The LNN instance is the built-in scalar data set of overparam_theory
# with scale 1 (R or sigma), so only the *shape* of E[D0](K) is compared, never its size.
LNN_LAWS = (
    ("ball", "fixed", "W0 uniform in a ball of fixed radius R (the paper's Appendix B)"),
    ("cube", "fixed", "i.i.d. U(-R, R) per weight, the same R at every width"),
    ("gaussian", "fixed", "i.i.d. N(0, sigma^2) per weight, the same sigma at every width"),
    ("cube", "fan-in", "i.i.d. U(-1/sqrt(K), 1/sqrt(K)) per weight: the RHN's default init"),
)


def _model_init_rule(rows: StudyRows) -> str:
    """ "fixed" when the runs set an explicit ``init_range``, else "fan-in" (the RHN default 1/sqrt(H))."""
    import json

    for run in rows.runs:
        try:
            config = json.loads(run.get("config_json") or "{}")
        except ValueError:
            continue
        model_kwargs = config.get("model", {}) if isinstance(config.get("model"), dict) else {}
        if config.get("init_range") is not None or model_kwargs.get("init_range") is not None:
            return "fixed"
    return "fan-in"


def lnn_comparison(rows: StudyRows, exponents: Sequence[GroupExponent]) -> list[LNNComparison]:
    """What the width-K LNN predicts for the distance-vs-width exponent, per init law, vs our exponents.

    For the LNN (scalar input, second layer fixed to ones) the minimiser set is the hyperplane
    ``Σ_k w_k = C`` and ``D0 = |C − Σ_k w_k(0)| / √K``. The init spread of ``Σ_k w_k(0)`` decides the
    exponent: bounded (ball of fixed radius, or per-weight scale ∝ 1/√K as in the RHN) gives
    ``E[D0] ∝ K^(−1/2)``; per-weight scale fixed gives ``E[D0] → const`` (exponent → 0). The predicted
    exponent is the log-log slope of the exact ``E[D0]``
    (:func:`overparam_theory.lnn.expected_direct_distance`) over the study's widths;
    a group's measured exponent is *consistent* when its CI contains it.
    The RHN is nonlinear and its W* is the minimum-validation-loss point of one SGD path, not a
    projection on a minimiser set, so this is a comparison of scaling shapes, not a derivation.
    """
    from overparam_theory.datasets import builtin_dataset
    from overparam_theory.lnn import expected_direct_distance, large_width_limit

    primary = primary_slice(rows)
    if primary is None:
        return []
    cond, fraction = primary
    measured = {
        e.group: (e.exponent, e.exponent_ci)
        for e in exponents
        if (e.condition, e.fraction, e.quantity, e.x) == (cond, fraction, DISTANCE, "width")
    }
    widths = sorted({int(r["width"]) for r in rows.runs if condition_of(r) == cond})
    if len(widths) < 2 or not measured:
        return []
    data = builtin_dataset()
    model_rule = _model_init_rule(rows)
    rule = "consistent if the predicted exponent lies in the group's CI; inconsistent if outside"
    out = []
    for law, scale_rule, description in LNN_LAWS:
        values = [
            expected_direct_distance(data, w, law, 1.0 if scale_rule == "fixed" else 1.0 / math.sqrt(w))
            for w in widths
        ]
        slope = float(np.polyfit(np.log(widths), np.log(values), 1)[0])
        limit = large_width_limit(data, law, 1.0)[1] - (0.5 if scale_rule == "fan-in" else 0.0)
        verdicts = {}
        for group, (exponent, ci) in measured.items():
            if exponent is None or ci is None:
                verdicts[group] = "inconclusive"
            else:
                verdicts[group] = "consistent" if ci[0] <= slope <= ci[1] else "inconsistent"
        out.append(
            LNNComparison(
                law,
                scale_rule,
                description,
                matches_model=(law == "cube" and scale_rule == model_rule),
                predicted_exponent=slope,
                limit_exponent=float(limit),
                measured=measured,
                verdicts=verdicts,
                rule=rule,
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# everything at once


@dataclass(frozen=True)
class StudyAnalysis:
    """Every analysis result of one study (what the report, the figures and the CLI table use)."""

    metric: str
    level: float
    accounting: RunAccounting
    convergence: tuple[ConvergenceFit, ...]
    convergence_other_metric: tuple[ConvergenceFit, ...]
    convergence_pure: tuple[ConvergenceFit, ...]  # steps ≈ a·M^(−k), b = 0: the log-log slope
    dataset_size: tuple[DatasetSizeResult, ...]
    exponents: tuple[GroupExponent, ...]
    exponents_vs_params: tuple[GroupExponent, ...]
    angles: tuple[AngleRow, ...]
    widths: tuple[WidthRow, ...]
    yin: tuple[YinRow, ...]
    comparison: tuple[Comparison, ...]
    lnn: tuple[LNNComparison, ...]
    primary: tuple[Condition, float] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "level": self.level,
            "primary": None
            if self.primary is None
            else {**self.primary[0].as_dict(), "fraction": self.primary[1]},
            "runs": self.accounting.as_dict(),
            "convergence_fits": [c.as_dict() for c in self.convergence],
            "convergence_fits_other_metric": [c.as_dict() for c in self.convergence_other_metric],
            "convergence_fits_pure_power_law": [c.as_dict() for c in self.convergence_pure],
            "dataset_size_fits": [d.as_dict() for d in self.dataset_size],
            "exponents_vs_width": [e.as_dict() for e in self.exponents],
            "exponents_vs_params": [e.as_dict() for e in self.exponents_vs_params],
            "angles": [a.as_dict() for a in self.angles],
            "widths": [w.as_dict() for w in self.widths],
            "yin": [y.as_dict() for y in self.yin],
            "paper_comparison": [c.as_dict() for c in self.comparison],
            "lnn_comparison": [c.as_dict() for c in self.lnn],
        }


def analyze(
    rows: StudyRows,
    *,
    metric: str = "steps_to_within",
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> StudyAnalysis:
    """Run every analysis on ``rows`` (deterministic for a given ``seed``)."""
    metric = _check_metric(metric)
    other = "steps_to_min" if metric == "steps_to_within" else "steps_to_within"
    conv = convergence_fits(rows, metric=metric, n_boot=n_boot, seed=seed, level=level)
    conv_other = convergence_fits(rows, metric=other, n_boot=n_boot, seed=seed, level=level)
    conv_pure = convergence_fits(rows, metric=metric, offset=False, n_boot=n_boot, seed=seed, level=level)
    datasize = dataset_size_fit(rows, metric=metric, level=level)
    both = PRIMARY_QUANTITIES + SECONDARY_QUANTITIES
    exps = group_exponents(rows, quantities=both, n_boot=n_boot, seed=seed, level=level)
    exps_params = group_exponents(
        rows, quantities=PRIMARY_QUANTITIES, x="n_params", n_boot=n_boot, seed=seed, level=level
    )
    angles = angle_summary(rows, level)
    return StudyAnalysis(
        metric=metric,
        level=level,
        accounting=run_accounting(rows),
        convergence=tuple(conv),
        convergence_other_metric=tuple(conv_other),
        convergence_pure=tuple(conv_pure),
        dataset_size=tuple(datasize),
        exponents=tuple(exps),
        exponents_vs_params=tuple(exps_params),
        angles=tuple(angles),
        widths=tuple(width_table(rows, metric=metric, level=level)),
        yin=tuple(yin_residuals(rows)),
        comparison=tuple(paper_comparison(rows, conv, datasize, exps, angles, level, conv_pure)),
        lnn=tuple(lnn_comparison(rows, exps)),
        primary=primary_slice(rows),
    )
