"""The end-of-study summary: ``summary.json`` (all numbers), ``report.md`` (tables + figures), rich tables.

:func:`write_report` writes both files atomically into the study folder; :func:`print_summary` prints the
same tables to a rich console (what ``overparam empirical char-lm`` shows at the end). The tables:

* per width (primary slice): parameters, runs, steps to converge and to the minimum (mean ± 95 % t-interval
  over seeds), minimum validation loss, and per layer group the direct distance ‖W* − W_0‖, the mean step
  size and mean As (fraction of π) on the way to W*, and the distance ‖W_T − W_0‖ to where the run stopped;
* steps per width and data fraction; the fitted ``steps ≈ a·M^(−k) + b`` per fraction with its bootstrap
  CI; the dataset-size law ``steps ≈ c·D^α/M^k``;
* traversal exponents vs width per group; the comparison with the paper and with the LNN theory; the Yin
  identity check.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from overparam_empirical.analysis import (
    METRICS,
    PRIMARY_QUANTITIES,
    MeanCI,
    StudyAnalysis,
    StudyRows,
    WidthRow,
    format_bound,
    format_ci,
    format_count,
)
from overparam_empirical.figures import FigureReport
from overparam_theory.files import atomic_write_text

__all__ = [
    "REPORT_NAME",
    "SUMMARY_NAME",
    "fit_lines",
    "print_summary",
    "render_markdown",
    "summary_dict",
    "tables",
    "write_report",
]

REPORT_NAME = "report.md"
SUMMARY_NAME = "summary.json"


_ci = format_ci


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.3g} %"


def _mean(m: MeanCI | None, fmt: str = ".4g") -> str:
    return "–" if m is None else m.describe(fmt)


def _steps(m: MeanCI) -> str:
    return m.describe(".0f") if m.n else "–"


# --------------------------------------------------------------------------------------------------
# tables as plain rows (shared by markdown and rich)


def tables(analysis: StudyAnalysis) -> dict[str, tuple[str, list[str], list[list[str]]]]:
    """``{key: (title, header, rows)}`` of every summary table, as strings."""
    out: dict[str, tuple[str, list[str], list[list[str]]]] = {}
    level = f"{analysis.level:.0%}"
    metric = METRICS[analysis.metric]
    if analysis.primary is not None:
        cond, fraction = analysis.primary
        header = ["H", "params", "runs", "steps", "steps to min", "min val loss"]
        header += ["group", "distance ‖W*−W_0‖", "mean step ‖Δ‖ to W*", "mean As to W* (π)", "‖W_T−W_0‖"]
        rows: list[list[str]] = []
        for w in (w for w in analysis.widths if (w.condition, w.fraction) == (cond, fraction)):
            groups = list(w.groups.items()) or [("–", {})]
            for i, (group, q) in enumerate(groups):
                first = i == 0
                rows.append(
                    [
                        str(w.width) if first else "",
                        format_count(w.n_params) if first else "",
                        _runs(w) if first else "",
                        _steps(w.steps) if first else "",
                        _steps(w.steps_to_min) if first else "",
                        _mean(w.min_val_loss) if first else "",
                        group,
                        _mean(q.get("distance")),
                        _mean(q.get("step_size")),
                        _mean(q.get("as_pi"), ".3f"),
                        _mean(q.get("distance_to_stop")),
                    ]
                )
        title = (
            f"Per width: {cond.label}, {_pct(fraction)} of the corpus; mean ± {level} CI over seeds; "
            f"steps = {metric}; W* = min. validation loss weights, W_T = where the run stopped"
        )
        out["widths"] = (title, header, rows)

    slices = sorted({(w.condition, w.fraction) for w in analysis.widths}, key=lambda s: (s[0], s[1]))
    if len(slices) > 1:
        widths = sorted({(w.width, w.n_params) for w in analysis.widths})
        header = ["H", "params"] + [f"{c.label}, {_pct(f)}" for c, f in slices]
        by_key = {(w.condition, w.fraction, w.width): w for w in analysis.widths}
        rows = [
            [str(h), format_count(m)]
            + [_steps(by_key[(c, f, h)].steps) if (c, f, h) in by_key else "–" for c, f in slices]
            for h, m in widths
        ]
        out["steps"] = (f"{metric.capitalize()} per width and slice (mean ± {level} CI)", header, rows)

    header = ["condition", "fraction", "train chars", "k", "a", "b", "k if b = 0", "widths / runs", "note"]
    rows = []
    pure = {(c.condition, c.fraction): c.fit for c in analysis.convergence_pure}
    for c in analysis.convergence:
        fit, slope = c.fit, pure.get((c.condition, c.fraction))
        rows.append(
            [
                c.condition.label,
                _pct(c.fraction),
                format_count(c.train_tokens) if c.train_tokens else "–",
                _ci(fit.k, fit.k_ci) if fit else "–",
                _ci(fit.a, fit.a_ci) if fit else "–",
                _ci(fit.b, fit.b_ci) if fit else "–",
                _ci(slope.k, slope.k_ci) if slope else "–",
                f"{c.n_widths} / {len(c.points)}",
                _fit_note(c),
            ]
        )
    title = (
        f"Fitted {metric} ≈ a·M^(−k) + b, M = parameters ({level} bootstrap CI over seeds); "
        "last k: pure power law (log-log slope)"
    )
    out["fits"] = (title, header, rows)

    header = ["condition", "fractions", "α (paper: 1)", "k", "note"]
    rows = [
        [
            d.condition.label,
            ", ".join(_pct(f) for f in d.fractions) or "–",
            _ci(d.fit.alpha, d.fit.alpha_ci) if d.fit else "–",
            _ci(d.fit.k, d.fit.k_ci) if d.fit else "–",
            d.note,
        ]
        for d in analysis.dataset_size
    ]
    out["dataset"] = (f"Dataset-size law: steps ≈ c·D^α / M^k ({level} t-intervals)", header, rows)

    if analysis.primary is not None:
        cond, fraction = analysis.primary
        header = [
            "group",
            "distance ‖W*−W_0‖",
            "step size to W*",
            "path length to W*",
            "As to W*",
            "‖W_T−W_0‖",
        ]
        found = {
            (e.group, e.quantity): e
            for e in analysis.exponents
            if (e.condition, e.fraction) == (cond, fraction)
        }
        groups = list(dict.fromkeys(g for g, _ in found))
        rows = []
        for g in groups:
            row = [g]
            for q in (*PRIMARY_QUANTITIES, "final_distance"):
                e = found.get((g, q))
                row.append(_ci(e.exponent, e.exponent_ci) if e and e.exponent is not None else "–")
            rows.append(row)
        if rows:
            out["exponents"] = (f"Exponents e of quantity ∝ width^e ({level} bootstrap CI)", header, rows)

    rows = [[c.finding, c.paper, c.ours, c.verdict] for c in analysis.comparison]
    if rows:
        out["paper"] = ("Comparison with the paper", ["finding", "paper", "this study", "verdict"], rows)

    if analysis.lnn:
        groups = list(analysis.lnn[0].measured)
        header = ["LNN init law", "predicted distance exponent (limit)"] + [f"{g}" for g in groups]
        rows = []
        for c in analysis.lnn:
            name = f"{c.init_law}, {c.scale_rule} scale" + (" (= model's init)" if c.matches_model else "")
            rows.append(
                [name, f"{c.predicted_exponent:.3f} ({c.limit_exponent:g})"]
                + [c.verdicts.get(g, "–") for g in groups]
            )
        measured = ", ".join(f"{g} {_ci(v[0], v[1])}" for g, v in analysis.lnn[0].measured.items())
        out["lnn"] = (f"Width-K linear network vs measured distance exponents ({measured})", header, rows)

    rows = [
        [
            y.group,
            str(y.n_runs),
            f"{y.median_rel:.2e}" if y.n_runs else "–",
            f"{y.max_rel:.2e}" if y.n_runs else "–",
            ("ok" if y.ok else f"above {y.tolerance:g}") if y.n_runs else "no data",
        ]
        for y in analysis.yin
    ]
    if rows:
        header = ["group", "runs", "median rel. residual", "max rel. residual", "check"]
        out["yin"] = ("Yin identity ‖W_T−W*‖² = ‖W_0−W*‖² + Σ‖Δ_t‖² + 2Σ⟨W_t−W*, Δ_t⟩", header, rows)
    return out


def _runs(w: WidthRow) -> str:
    usable = w.n_runs - w.n_diverged - w.n_failed
    text = f"{usable}/{w.n_runs}"
    flags = [
        f"{n} {name}" for n, name in ((w.n_diverged, "div"), (w.n_failed, "fail"), (w.n_capped, "cap")) if n
    ]
    return text + (f" ({', '.join(flags)})" if flags else "")


def _fit_note(c) -> str:
    notes = [c.note] if c.note else []
    if c.n_diverged:
        notes.append(f"{c.n_diverged} diverged excluded")
    if c.n_failed:
        notes.append(f"{c.n_failed} failed excluded")
    return "; ".join(notes)


def fit_lines(analysis: StudyAnalysis) -> list[str]:
    """One line per fitted condition and fraction: ``k = … [CI]`` (the headline result)."""
    lines = []
    pure = {(c.condition, c.fraction): c for c in analysis.convergence_pure}
    level = f"{analysis.level:.0%}"
    for c in analysis.convergence:
        text = f"{c.condition.label}, {_pct(c.fraction)} of the corpus: "
        if c.fit is None:
            text += f"a·M^(−k) + b: {c.note}"
        else:
            text += f"k = {_k(c.fit, level)}, a = {c.fit.a:.3g}, b = {c.fit.b:.3g}"
        slope = pure.get((c.condition, c.fraction))
        if slope is not None and slope.fit is not None:
            text += f"; pure power law k = {_k(slope.fit, level)}"
        lines.append(text)
    return lines


def _k(fit, level: str) -> str:
    ci = f" ({level} CI {format_bound(fit.k_ci[0])} … {format_bound(fit.k_ci[1])})" if fit.k_ci else ""
    return f"{fit.k:.3g}{ci}"


# --------------------------------------------------------------------------------------------------
# files


def summary_dict(
    rows: StudyRows,
    analysis: StudyAnalysis,
    figures: FigureReport | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything as JSON-ready data: study metadata, the analysis, the figures written and skipped."""
    out: dict[str, Any] = {"study": dict(rows.metadata), **analysis.as_dict()}
    if figures is not None:
        out["figures"] = {
            "written": [str(p) for p in figures.written],
            "skipped": dict(figures.skipped),
        }
    if extra:
        out.update(extra)
    return out


def render_markdown(rows: StudyRows, analysis: StudyAnalysis, figures: FigureReport | None = None) -> str:
    """``report.md``: metadata, the summary tables, the headline fits and the figures (relative links)."""
    meta = rows.metadata
    lines = [f"# Study report: {meta.get('benchmark', 'study')}, preset {meta.get('preset', '?')}", ""]
    for key, label in (
        ("preset_description", "Preset"),
        ("preset_deviations", "Deviations from the paper"),
        ("corpus", "Corpus"),
        ("corpus_credit", "Data credit"),
        ("created_at", "Created"),
        ("overparam_version", "overparam version"),
        ("device_kind", "Device"),
    ):
        if meta.get(key):
            lines.append(f"- **{label}:** {meta[key]}")
    lines += [
        f"- **Runs:** {analysis.accounting.describe()}",
        f"- **Steps metric:** {METRICS[analysis.metric]}",
    ]
    lines += ["", "## Fitted power laws", ""] + [f"- {line}" for line in fit_lines(analysis)] + [""]
    for title, header, body in tables(analysis).values():
        lines += [f"## {title}", "", _md_row(header), _md_row(["---"] * len(header))]
        lines += [_md_row(r) for r in body] + [""]
    if analysis.comparison:
        lines += ["### Verdict rules", ""]
        lines += [f"- *{c.finding}*: {c.rule}." for c in analysis.comparison] + [""]
    if figures is not None:
        lines += ["## Figures", ""]
        for path in figures.written:
            if path.suffix == ".png":
                rel = f"figures/{path.name}"
                lines += [f"![{path.stem}]({rel})", ""]
        for name, reason in figures.skipped.items():
            lines.append(f"- {name} skipped: {reason}")
        lines.append("")
    return "\n".join(lines)


def _md_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def write_report(
    out_dir: Path,
    rows: StudyRows,
    analysis: StudyAnalysis,
    figures: FigureReport | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``<out_dir>/summary.json`` and ``<out_dir>/report.md`` atomically; returns their paths."""
    out_dir = Path(out_dir)
    summary = json.dumps(summary_dict(rows, analysis, figures, extra), indent=2, allow_nan=False, default=str)
    paths = [out_dir / SUMMARY_NAME, out_dir / REPORT_NAME]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(paths[0], summary + "\n")
    atomic_write_text(paths[1], render_markdown(rows, analysis, figures))
    return paths


# --------------------------------------------------------------------------------------------------
# console


_VERDICT_STYLE = {
    "agree": "green",
    "consistent": "green",
    "disagree": "red",
    "inconsistent": "red",
    "inconclusive": "yellow",
}


def print_summary(console, analysis: StudyAnalysis, *, keys: Sequence[str] | None = None) -> None:
    """Print the summary tables (all, or those named in ``keys``) to a rich ``console``."""
    from rich.markup import escape
    from rich.table import Table

    for key, (title, header, body) in tables(analysis).items():
        if keys is not None and key not in keys:
            continue
        console.print(f"[bold]{escape(title)}[/]")
        table = Table(show_lines=key == "paper")
        for name in header:
            table.add_column(name, overflow="fold")
        previous = None
        for row in body:
            if key == "widths" and row[0] and previous is not None:
                table.add_section()
            previous = row
            table.add_row(*(_styled(cell) for cell in row))
        console.print(table)


def _styled(cell: str) -> str:
    from rich.markup import escape

    style = _VERDICT_STYLE.get(cell)
    return f"[{style}]{cell}[/]" if style else escape(cell)
