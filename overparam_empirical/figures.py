"""The paper's figures (and two more) from a study's rows and analysis, as PNG (300 dpi) and SVG.

One function per figure; each takes :class:`~overparam_empirical.analysis.StudyRows` and/or a
:class:`~overparam_empirical.analysis.StudyAnalysis`, writes ``<out>/figures/<name>.png`` and ``.svg``
atomically (temporary file + rename) and returns the paths, or raises :class:`FigureSkipped` with the
reason when its data are absent. :func:`make_figures` draws them all and reports what was skipped.

=====================  ==========================================================================
file                   what it shows (paper figure)
=====================  ==========================================================================
fig1a_steps_vs_size    steps to converge vs parameter count, one line per data fraction, fitted
                       ``a·M^(−k) + b`` with its bootstrap band (Fig. 1a); log-log
fig2_lr_optimizer      the same per optimizer / learning rate, largest fraction (Fig. 2); needs
                       ≥ 2 learning rates or optimizers
fig3b_dataset_size     steps vs training-set size (tokens), one line per width, with the fitted
                       ``c·D^α / M^k`` (Fig. 3b); needs ≥ 2 fractions
fig5_loss_and_steps    violins over seeds of min. validation loss and steps vs model size (Fig. 5)
fig6_distance          violins of the direct distance ‖W* − W_0‖ per layer group (Fig. 6); log y
fig7_step_size         violins of the mean step size ‖Δ_t‖ on the way to W* per layer group (Fig. 7)
fig8_angle             violins of the mean angle As (fraction of π) on the way to W* per group (Fig. 8)
trajectories           distance ‖W_t − W_0‖ and As(t) against the step, per width and group (new)
validation_curves      validation loss against the step per width, with the convergence markers (new)
=====================  ==========================================================================

W* is the minimum-validation-loss weights (the paper's converged weights); Figs. 6–8 show the way from W_0
to W*, not the extra ``patience`` evaluations after it (see :mod:`overparam_empirical.analysis`).
Figures 5–8 and the trajectories use the analysis's *primary slice* (SGD without lr scaling preferred,
then the largest fraction; see :func:`~overparam_empirical.analysis.primary_slice`), as the paper's
Section 4.3 does. matplotlib is used through the object API with the Agg canvas, so importing this
module never changes the user's pyplot backend.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from overparam_empirical.analysis import (
    ANGLE,
    DISTANCE,
    METRICS,
    STEP_SIZE,
    USABLE,
    ConvergenceFit,
    StudyAnalysis,
    StudyRows,
    condition_of,
    format_count,
    prediction_band,
)
from overparam_theory.files import atomic_write

__all__ = [
    "FIGURE_NAMES",
    "FigureReport",
    "FigureSkipped",
    "fig1a_steps_vs_size",
    "fig2_lr_optimizer",
    "fig3b_dataset_size",
    "fig5_loss_and_steps",
    "fig6_distance",
    "fig7_step_size",
    "fig8_angle",
    "make_figures",
    "trajectories",
    "validation_curves",
]

GROUP_COLOURS = {"embedding": "#1f77b4", "hidden": "#2ca02c", "softmax": "#d62728", "all": "#444444"}
GROUP_TITLES = {
    "embedding": "(a) Embedding layer",
    "hidden": "(b) Hidden layers",
    "softmax": "(c) Softmax layer",
    "all": "(d) All layers",
}
DPI = 300
BAND_BOOT = 100  # bootstrap refits per shaded band (the CIs in the legend use the analysis's n_boot)
FORMATS = ("png", "svg")


class FigureSkipped(Exception):
    """A figure whose data are absent from the study; the message says what is missing."""


@dataclass
class FigureReport:
    """Files written and figures skipped (name -> reason) by :func:`make_figures`."""

    written: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# plumbing


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure


def _style(ax) -> None:
    ax.grid(True, which="major", alpha=0.3, linewidth=0.6)
    ax.tick_params(which="both", labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _save(figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``<out_dir>/figures/<name>.{png,svg}``, each via a temporary file renamed into place."""
    import matplotlib

    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context({"svg.hashsalt": "overparam", "svg.fonttype": "path"}):
        for fmt in FORMATS:
            # metadata without dates: the same study gives byte-identical SVG files
            metadata = {"Date": None} if fmt == "svg" else {"Software": "overparam"}
            target = atomic_write(
                folder / f"{name}.{fmt}",
                lambda tmp, fmt=fmt, metadata=metadata: figure.savefig(
                    tmp, format=fmt, dpi=DPI, metadata=metadata
                ),
            )
            written.append(target)
    return written


def _colours(n: int, cmap: str = "viridis") -> list:
    from matplotlib import colormaps

    colormap = colormaps[cmap]
    if n == 1:
        return [colormap(0.25)]
    return [colormap(0.1 + 0.75 * i / (n - 1)) for i in range(n)]


def _condition_order(cond) -> tuple:
    return (cond.optimizer != "sgd", cond.optimizer, cond.lr_scaling, cond.lr, cond.depth or 0)


def _unit(rows: StudyRows) -> str:
    """What the benchmark's loss is averaged over ("character" for char-lm; study metadata ``unit``)."""
    return str(rows.metadata.get("unit") or "token")


def _fraction_label(fraction: float) -> str:
    return f"{fraction * 100:.3g} % of the corpus"


def _primary_runs(rows: StudyRows, analysis: StudyAnalysis) -> list[Mapping[str, Any]]:
    if analysis.primary is None:
        return []
    cond, fraction = analysis.primary
    return [
        r
        for r in rows.runs
        if condition_of(r) == cond and float(r["fraction"]) == fraction and r["status"] in USABLE
    ]


def _by_width(runs) -> dict[int, list[Mapping[str, Any]]]:
    out: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for run in runs:
        out[int(run["width"])].append(run)
    return dict(sorted(out.items()))


def _violins(ax, positions: Sequence[float], samples: Sequence[Sequence[float]], colour, log: bool) -> None:
    """Violins over seeds at ``positions`` (in log space when ``log``); a single value (or a set of equal
    values) has no density, so it is drawn as a point. Individual seeds are overlaid as dots."""
    dense_pos, dense_data = [], []
    for pos, values in zip(positions, samples, strict=True):
        values = np.asarray([v for v in values if v is not None and np.isfinite(v) and (v > 0 or not log)])
        if len(values) == 0:
            continue
        transformed = np.log10(values) if log else values
        if len(values) >= 2 and np.ptp(transformed) > 1e-12 * max(1.0, float(np.abs(transformed).max())):
            dense_pos.append(pos)
            dense_data.append(transformed)
        jitter = np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(pos + jitter, transformed, s=6, color="black", alpha=0.55, zorder=3, linewidths=0)
    if dense_data:
        parts = ax.violinplot(dense_data, positions=dense_pos, widths=0.7, showmeans=True, showextrema=False)
        for body in parts["bodies"]:
            body.set_facecolor(colour)
            body.set_edgecolor(colour)
            body.set_alpha(0.35)
        parts["cmeans"].set_color(colour)


def _log_ticks(ax) -> None:
    """Label a log10-transformed y axis with round original values (1-2-5 steps, or 1..9 per decade)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    low, high = ax.get_ylim()
    decades = range(math.floor(low) - 1, math.ceil(high) + 1)
    for mantissas in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [math.log10(m) + e for e in decades for m in mantissas]
        ticks = [t for t in ticks if low <= t <= high]
        if len(ticks) >= 3:
            break
    else:
        ticks = list(np.linspace(low, high, 4)[1:-1])
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{10**v:.3g}"))


def _categorical_sizes(ax, widths: Sequence[int], n_params: Mapping[int, int]) -> None:
    ax.set_xticks(range(len(widths)))
    ax.set_xticklabels([f"{format_count(n_params[w])}\nH={w}" for w in widths], fontsize=7)
    ax.set_xlim(-0.6, len(widths) - 0.4)


# --------------------------------------------------------------------------------------------------
# Fig. 1a / Fig. 2: steps vs size


_BANDS: dict[tuple, Any] = {}


def _band(result: ConvergenceFit, grid: np.ndarray, seed: int):
    """The fit's bootstrap band, cached: Figs. 1a and 2 draw the same fits."""
    key = (result, float(grid[0]), float(grid[-1]), len(grid), seed)  # frozen dataclass: hashed by value
    if key not in _BANDS:
        if len(_BANDS) > 64:
            _BANDS.clear()
        _BANDS[key] = prediction_band(result, grid, n_boot=BAND_BOOT, seed=seed)
    return _BANDS[key]


def _plot_steps_fit(ax, result: ConvergenceFit, colour, label: str, band_seed: int) -> None:
    """Seeds as faint dots, capped runs as open triangles, per-size means, the fit and its band."""
    by_m: dict[int, list[float]] = defaultdict(list)
    for _width, m, _seed, steps, _capped in result.points:
        by_m[m].append(steps)
    ms = np.array(sorted(by_m), dtype=float)
    means = np.array([np.mean(by_m[int(m)]) for m in ms])
    ax.scatter(
        [p[1] for p in result.points],
        [p[3] for p in result.points],
        s=8,
        color=colour,
        alpha=0.35,
        linewidths=0,
    )
    capped = [p for p in result.points if p[4]]
    if capped:
        ax.scatter(
            [p[1] for p in capped],
            [p[3] for p in capped],
            s=30,
            facecolors="none",
            edgecolors=colour,
            marker="^",
            linewidths=0.8,
        )
    fit = result.fit
    if fit is not None:
        grid = np.geomspace(ms.min(), ms.max(), 80)  # no extrapolation: the band would explode there
        band = _band(result, grid, band_seed)
        if band is not None:
            ax.fill_between(grid, band[0], band[1], color=colour, alpha=0.15, linewidth=0)
        ax.plot(grid, fit.predict(grid), color=colour, linewidth=1.4)
        label += f": k = {fit.k:.2f}" + (f" [{fit.k_ci[0]:.2f}, {fit.k_ci[1]:.2f}]" if fit.k_ci else "")
    ax.plot(ms, means, "o", color=colour, markersize=4, label=label)


def fig1a_steps_vs_size(analysis: StudyAnalysis, out_dir: Path) -> list[Path]:
    """Steps to converge vs parameter count per data fraction with fits and bands (Fig. 1a), one panel
    per condition (optimizer / learning rate)."""
    results = [c for c in analysis.convergence if c.points]
    if not results:
        raise FigureSkipped("no usable runs")
    conditions = sorted({c.condition for c in results}, key=_condition_order)
    figure = _new_figure(max(5.6, 4.2 * len(conditions)), 3.8)
    axes = figure.subplots(1, len(conditions), squeeze=False)[0]
    for ax, cond in zip(axes, conditions, strict=True):
        mine = sorted((c for c in results if c.condition == cond), key=lambda c: -c.fraction)
        for i, (result, colour) in enumerate(zip(mine, _colours(len(mine)), strict=True)):
            _plot_steps_fit(ax, result, colour, _fraction_label(result.fraction), band_seed=i)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("model size (# parameters)", fontsize=8)
        ax.set_ylabel(f"# {METRICS[analysis.metric]}", fontsize=8)
        ax.set_title(cond.label, fontsize=9)
        ax.legend(fontsize=7, frameon=False)
        _style(ax)
    figure.suptitle(
        "Steps to converge vs model size (cf. paper Fig. 1a); shaded: 95 % bootstrap band", fontsize=9
    )
    return _save(figure, out_dir, "fig1a_steps_vs_size")


def fig2_lr_optimizer(analysis: StudyAnalysis, out_dir: Path) -> list[Path]:
    """Steps vs size per learning rate, one panel per optimizer, at each condition's largest fitted fraction
    (Fig. 2). Needs at least two learning rates or optimizers."""
    conditions = sorted({c.condition for c in analysis.convergence if c.points}, key=_condition_order)
    if len(conditions) < 2:
        raise FigureSkipped("the study has one optimizer and one learning rate")
    optimizers = sorted({c.optimizer for c in conditions}, key=lambda o: (o != "sgd", o))
    figure = _new_figure(max(5.6, 4.2 * len(optimizers)), 3.8)
    axes = figure.subplots(1, len(optimizers), squeeze=False)[0]
    for ax, optimizer in zip(axes, optimizers, strict=True):
        mine = [c for c in conditions if c.optimizer == optimizer]
        for i, (cond, colour) in enumerate(zip(mine, _colours(len(mine), "plasma"), strict=True)):
            candidates = [c for c in analysis.convergence if c.condition == cond and c.points]
            result = max(candidates, key=lambda c: c.fraction)
            label = f"lr {cond.lr:g}" + (f" ({cond.lr_scaling})" if cond.lr_scaling != "none" else "")
            _plot_steps_fit(ax, result, colour, f"{label}, {_fraction_label(result.fraction)}", band_seed=i)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("model size (# parameters)", fontsize=8)
        ax.set_ylabel(f"# {METRICS[analysis.metric]}", fontsize=8)
        ax.set_title(f"({chr(97 + optimizers.index(optimizer))}) {optimizer.upper()}", fontsize=9)
        ax.legend(fontsize=7, frameon=False)
        _style(ax)
    figure.suptitle("Learning rate and optimizer vs steps to converge (cf. paper Fig. 2)", fontsize=9)
    return _save(figure, out_dir, "fig2_lr_optimizer")


def fig3b_dataset_size(rows: StudyRows, analysis: StudyAnalysis, out_dir: Path) -> list[Path]:
    """Steps vs training-set size, one line per width, with the fitted ``c·D^α/M^k`` (Fig. 3b)."""
    if analysis.primary is None:
        raise FigureSkipped("no usable runs")
    cond = analysis.primary[0]
    result = next((d for d in analysis.dataset_size if d.condition == cond), None)
    if result is None or len(result.fractions) < 2:
        raise FigureSkipped("the study has a single data fraction")
    metric = analysis.metric
    runs = [
        r
        for r in rows.runs
        if condition_of(r) == cond and r["status"] in USABLE and r.get(metric) and r.get("train_tokens")
    ]
    widths = _by_width(runs)
    figure = _new_figure(4.6, 3.6)
    ax = figure.subplots()
    for (width, width_runs), colour in zip(widths.items(), _colours(len(widths), "plasma"), strict=True):
        d = np.array([r["train_tokens"] for r in width_runs], dtype=float)
        s = np.array([r[metric] for r in width_runs], dtype=float)
        ax.scatter(d, s, s=8, color=colour, alpha=0.4, linewidths=0)
        ds = np.array(sorted(set(d)))
        ax.plot(
            ds,
            [s[d == v].mean() for v in ds],
            "o",
            color=colour,
            markersize=4,
            label=f"H={width} ({format_count(width_runs[0]['n_params'])})",
        )
        if result.fit is not None:
            grid = np.geomspace(ds.min() / 1.2, ds.max() * 1.2, 40)
            ax.plot(grid, result.fit.predict(grid, width_runs[0]["n_params"]), color=colour, linewidth=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"training-set size (# {_unit(rows)}s)", fontsize=8)
    ax.set_ylabel(f"# {METRICS[metric]}", fontsize=8)
    title = cond.label
    if result.fit is not None:
        fit = result.fit
        ci = f" [{fit.alpha_ci[0]:.2f}, {fit.alpha_ci[1]:.2f}]" if fit.alpha_ci else ""
        title += f": steps ≈ c·D^α/M^k, α = {fit.alpha:.2f}{ci}, k = {fit.k:.2f}"
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    _style(ax)
    figure.suptitle("Dataset size vs steps to converge (cf. paper Fig. 3b)", fontsize=9)
    return _save(figure, out_dir, "fig3b_dataset_size")


# --------------------------------------------------------------------------------------------------
# Fig. 5: loss and steps violins


def fig5_loss_and_steps(rows: StudyRows, analysis: StudyAnalysis, out_dir: Path) -> list[Path]:
    """Violins over seeds of the minimum validation loss and of the steps to converge per width (Fig. 5)."""
    runs = _primary_runs(rows, analysis)
    if not runs:
        raise FigureSkipped("no usable runs")
    widths = _by_width(runs)
    n_params = {w: int(rs[0]["n_params"]) for w, rs in widths.items()}
    figure = _new_figure(8.4, 3.4)
    ax_loss, ax_steps = figure.subplots(1, 2)
    positions = list(range(len(widths)))
    _violins(
        ax_loss, positions, [[r["min_val_loss"] for r in rs] for rs in widths.values()], "#1f77b4", False
    )
    _violins(
        ax_steps, positions, [[r[analysis.metric] for r in rs] for rs in widths.values()], "#ff7f0e", True
    )
    _log_ticks(ax_steps)
    for ax in (ax_loss, ax_steps):
        _categorical_sizes(ax, list(widths), n_params)
        ax.set_xlabel("model size (# parameters) and width", fontsize=8)
        _style(ax)
    ax_loss.set_ylabel(f"min. validation loss (nats / {_unit(rows)})", fontsize=8)
    ax_steps.set_ylabel(f"# {METRICS[analysis.metric]} (log)", fontsize=8)
    ax_loss.set_title("(a) Minimum validation loss", fontsize=9)
    ax_steps.set_title("(b) Number of steps", fontsize=9)
    cond, fraction = analysis.primary
    figure.suptitle(f"Across seeds, {cond.label}, {_fraction_label(fraction)} (cf. paper Fig. 5)", fontsize=9)
    return _save(figure, out_dir, "fig5_loss_and_steps")


# --------------------------------------------------------------------------------------------------
# Figs. 6-8: per-group violins


def _group_violins(
    rows: StudyRows,
    analysis: StudyAnalysis,
    out_dir: Path,
    *,
    quantity: str,
    name: str,
    ylabel: str,
    title: str,
    log: bool,
    transform: Callable[[float], float] = lambda v: v,
    reference: float | None = None,
) -> list[Path]:
    runs = _primary_runs(rows, analysis)
    by_run = rows.summaries_by_run()
    runs = [r for r in runs if r["run_id"] in by_run]
    groups = rows.groups()
    if not runs or not groups:
        raise FigureSkipped("no traversal summaries (were the runs tracked?)")
    widths = _by_width(runs)
    n_params = {w: int(rs[0]["n_params"]) for w, rs in widths.items()}
    n_cols = 2 if len(groups) > 1 else 1
    n_rows = math.ceil(len(groups) / n_cols)
    figure = _new_figure(4.2 * n_cols, 3.0 * n_rows)
    axes = np.atleast_1d(figure.subplots(n_rows, n_cols)).ravel()
    cond, fraction = analysis.primary
    exponents = {
        e.group: e
        for e in analysis.exponents
        if (e.condition, e.fraction, e.quantity) == (cond, fraction, quantity)
    }
    for ax, group in zip(axes, groups, strict=False):
        samples = [
            [transform(by_run[r["run_id"]][group][quantity]) for r in rs if group in by_run[r["run_id"]]]
            for rs in widths.values()
        ]
        colour = GROUP_COLOURS.get(group, "#9467bd")
        _violins(ax, list(range(len(widths))), samples, colour, log)
        e = exponents.get(group)
        if e is not None and e.exponent is not None and quantity != ANGLE:
            fitted = [e.prefactor * w**e.exponent for w in widths]
            ci = f" [{e.exponent_ci[0]:.2f}, {e.exponent_ci[1]:.2f}]" if e.exponent_ci else ""
            ax.plot(
                range(len(widths)),
                np.log10(fitted) if log else fitted,
                "--",
                color=colour,
                linewidth=1,
                label=f"∝ width^{e.exponent:.2f}{ci}",
            )
            ax.legend(fontsize=7, frameon=False)
        if reference is not None:
            ax.axhline(reference, color="grey", linestyle=":", linewidth=0.8)
        if log:
            _log_ticks(ax)
        _categorical_sizes(ax, list(widths), n_params)
        ax.set_title(GROUP_TITLES.get(group, group), fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xlabel("model size (# parameters) and width", fontsize=8)
        _style(ax)
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    figure.suptitle(f"{title}, {cond.label}, {_fraction_label(fraction)}", fontsize=9)
    return _save(figure, out_dir, name)


def fig6_distance(rows: StudyRows, analysis: StudyAnalysis, out_dir: Path) -> list[Path]:
    """Direct distance ‖W* − W_0‖ from the initial to the converged (min. validation loss) weights per
    group (Fig. 6)."""
    return _group_violins(
        rows,
        analysis,
        out_dir,
        quantity=DISTANCE,
        name="fig6_distance",
        ylabel="direct distance ‖W* − W_0‖ (log)",
        title="Direct distance, initial → converged weights W* (Fig. 6)",
        log=True,
    )


def fig7_step_size(rows: StudyRows, analysis: StudyAnalysis, out_dir: Path) -> list[Path]:
    """Mean step size ‖W_{t+1} − W_t‖ over the steps to W* per group (Fig. 7)."""
    return _group_violins(
        rows,
        analysis,
        out_dir,
        quantity=STEP_SIZE,
        name="fig7_step_size",
        ylabel="mean step size ‖Δ_t‖ to W* (log)",
        title="Average step size on the way to W* (Fig. 7)",
        log=True,
    )


def fig8_angle(rows: StudyRows, analysis: StudyAnalysis, out_dir: Path) -> list[Path]:
    """Mean angle As between the gradient and W_t − W_0 over the steps to W*, in units of π, per group
    (Fig. 8)."""
    return _group_violins(
        rows,
        analysis,
        out_dir,
        quantity=ANGLE,
        name="fig8_angle",
        ylabel="mean As to W* (fraction of π)",
        title="Angle between gradient and W_t − W_0 (Fig. 8)",
        log=False,
        transform=lambda v: v / math.pi,
        reference=0.5,
    )


# --------------------------------------------------------------------------------------------------
# beyond the paper: trajectories and validation curves


def trajectories(rows: StudyRows, analysis: StudyAnalysis, out_dir: Path) -> list[Path]:
    """‖W_t − W_0‖ and As(t)/π against the step, per group (columns), one colour per width, one line per
    seed: how the traversal unfolds, not only its end point. A star marks W* (‖W* − W_0‖ at the step of
    the minimum validation loss); the lines go on to where early stopping ended the run."""
    runs = {r["run_id"]: r for r in _primary_runs(rows, analysis)}
    by_run = rows.summaries_by_run()
    points = [t for t in rows.traversal if t["run_id"] in runs]
    if not points:
        raise FigureSkipped("no per-step traversal rows")
    groups = [g for g in rows.groups() if any(t["group_name"] == g for t in points)] or sorted(
        {t["group_name"] for t in points}
    )
    series: dict[tuple[str, str], list[tuple[int, float, float]]] = defaultdict(list)
    for t in points:
        series[(t["run_id"], t["group_name"])].append((int(t["step"]), t["distance"], t["as_angle"]))
    widths = sorted({int(r["width"]) for r in runs.values()})
    colours = dict(zip(widths, _colours(len(widths), "plasma"), strict=True))
    figure = _new_figure(3.2 * len(groups), 5.2)
    axes = figure.subplots(2, len(groups), squeeze=False)
    labelled: set[tuple[int, str]] = set()
    for column, group in enumerate(groups):
        ax_d, ax_a = axes[0][column], axes[1][column]
        for run_id, run in runs.items():
            values = sorted(series.get((run_id, group), []))
            values = [v for v in values if v[0] > 0]
            if not values:
                continue
            steps = np.array([v[0] for v in values], dtype=float)
            distance = np.array([v[1] for v in values], dtype=float)
            angle = np.array([v[2] for v in values], dtype=float) / math.pi
            width = int(run["width"])
            label = f"H={width}" if (width, group) not in labelled else None
            labelled.add((width, group))
            ax_d.plot(steps, distance, color=colours[width], linewidth=0.8, alpha=0.8, label=label)
            ax_a.plot(steps, angle, color=colours[width], linewidth=0.8, alpha=0.8)
            star = by_run.get(run_id, {}).get(group, {})
            star_step, star_distance = star.get("steps_to_star"), star.get(DISTANCE)
            if star_step and star_distance is not None and star_distance > 0:  # NaN > 0 is False
                ax_d.plot(star_step, star_distance, "*", color=colours[width], markersize=5)
        ax_d.set_xscale("log")
        ax_d.set_yscale("log")
        ax_a.set_xscale("log")
        ax_a.axhline(0.5, color="grey", linestyle=":", linewidth=0.8)
        ax_d.set_title(GROUP_TITLES.get(group, group), fontsize=9)
        ax_a.set_xlabel("step (gradient updates)", fontsize=8)
        if column == 0:
            ax_d.set_ylabel("‖W_t − W_0‖", fontsize=8)
            ax_a.set_ylabel("As(t) (fraction of π)", fontsize=8)
            ax_d.legend(fontsize=6, frameon=False)
        _style(ax_d)
        _style(ax_a)
    cond, fraction = analysis.primary
    figure.suptitle(
        f"Traversal trajectories, {cond.label}, {_fraction_label(fraction)}; * = W* (min. validation loss)",
        fontsize=9,
    )
    return _save(figure, out_dir, "trajectories")


def validation_curves(rows: StudyRows, analysis: StudyAnalysis, out_dir: Path) -> list[Path]:
    """Validation loss against the step, one colour per width and one line per seed; a dot marks the
    minimum and a cross the first evaluation within 1 % of it (the two step metrics)."""
    runs = [r for r in _primary_runs(rows, analysis) if rows.curves.get(r["run_id"], {}).get("valid")]
    if not runs:
        raise FigureSkipped("no validation curves")
    widths = sorted({int(r["width"]) for r in runs})
    colours = dict(zip(widths, _colours(len(widths), "plasma"), strict=True))
    figure = _new_figure(5.4, 3.8)
    ax = figure.subplots()
    labelled = set()
    for run in runs:
        curve = sorted(rows.curves[run["run_id"]]["valid"])
        steps = np.array([c[0] for c in curve], dtype=float)
        losses = np.array([c[1] for c in curve], dtype=float)
        keep = steps > 0
        width = int(run["width"])
        ax.plot(
            steps[keep],
            losses[keep],
            color=colours[width],
            linewidth=0.8,
            alpha=0.8,
            label=None if width in labelled else f"H={width}",
        )
        labelled.add(width)
        for key, marker in (("steps_to_min", "o"), ("steps_to_within", "x")):
            step = run.get(key)
            if step and step in steps:
                ax.plot(step, losses[steps == step][0], marker, color=colours[width], markersize=4)
    ax.set_xscale("log")
    ax.set_xlabel("step (gradient updates)", fontsize=8)
    ax.set_ylabel(f"validation loss (nats / {_unit(rows)})", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    _style(ax)
    cond, fraction = analysis.primary
    ax.set_title(f"{cond.label}, {_fraction_label(fraction)}; o = min, x = within 1 %", fontsize=8)
    return _save(figure, out_dir, "validation_curves")


# --------------------------------------------------------------------------------------------------

FIGURE_NAMES = (
    "fig1a_steps_vs_size",
    "fig2_lr_optimizer",
    "fig3b_dataset_size",
    "fig5_loss_and_steps",
    "fig6_distance",
    "fig7_step_size",
    "fig8_angle",
    "trajectories",
    "validation_curves",
)


def make_figures(rows: StudyRows, analysis: StudyAnalysis, out_dir: Path) -> FigureReport:
    """Draw every figure whose data the study has; the report lists the files and the skipped figures."""
    makers: dict[str, Callable[[], list[Path]]] = {
        "fig1a_steps_vs_size": lambda: fig1a_steps_vs_size(analysis, out_dir),
        "fig2_lr_optimizer": lambda: fig2_lr_optimizer(analysis, out_dir),
        "fig3b_dataset_size": lambda: fig3b_dataset_size(rows, analysis, out_dir),
        "fig5_loss_and_steps": lambda: fig5_loss_and_steps(rows, analysis, out_dir),
        "fig6_distance": lambda: fig6_distance(rows, analysis, out_dir),
        "fig7_step_size": lambda: fig7_step_size(rows, analysis, out_dir),
        "fig8_angle": lambda: fig8_angle(rows, analysis, out_dir),
        "trajectories": lambda: trajectories(rows, analysis, out_dir),
        "validation_curves": lambda: validation_curves(rows, analysis, out_dir),
    }
    report = FigureReport()
    for name in FIGURE_NAMES:
        try:
            report.written.extend(makers[name]())
        except FigureSkipped as reason:
            report.skipped[name] = str(reason)
    return report
