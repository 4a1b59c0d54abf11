"""report.md, summary.json and the console tables built from an analysis."""

from __future__ import annotations

import io
import json

import pytest
from char_lm_synthetic import Plant, build_store

from overparam_empirical import analysis as A
from overparam_empirical import report as R
from overparam_empirical.figures import FigureReport


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = build_store(
        tmp_path_factory.mktemp("report"),
        Plant(widths=(16, 32, 64, 128), seeds=(0, 1, 2), statuses={(16, 0): "diverged"}),
    )
    rows = A.StudyRows.from_store(folder)
    return folder, rows, A.analyze(rows, n_boot=100)


def test_write_report_writes_valid_json_and_markdown_atomically(study):
    folder, rows, result = study
    figures = FigureReport(written=[folder / "figures" / "fig1a_steps_vs_size.png"], skipped={"fig2": "why"})
    paths = R.write_report(folder, rows, result, figures, {"command": "overparam empirical char-lm"})
    assert [p.name for p in paths] == ["summary.json", "report.md"]
    summary = json.loads(paths[0].read_text())
    assert summary["study"]["preset"] == "synthetic" and summary["command"] == "overparam empirical char-lm"
    assert summary["runs"]["by_status"]["diverged"] == 2  # (width 16, seed 0) in both fractions
    fits = summary["convergence_fits"]
    assert len(fits) == 2 and all(len(f["k_ci"]) == 2 for f in fits)
    assert fits[0]["k"] == pytest.approx(result.convergence[0].fit.k)
    assert summary["figures"]["skipped"] == {"fig2": "why"}
    markdown = paths[1].read_text()
    assert "![fig1a_steps_vs_size](figures/fig1a_steps_vs_size.png)" in markdown
    assert "## Comparison with the paper" in markdown and "### Verdict rules" in markdown
    assert "fig2 skipped: why" in markdown
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_width_table_has_a_row_per_group_and_width(study):
    _, _, result = study
    title, header, rows = R.tables(result)["widths"]
    assert header[:3] == ["H", "params", "runs"] and "group" in header
    assert len(rows) == 4 * 4  # 4 widths x 4 groups
    first = rows[0]
    assert first[0] == "16" and first[2] == "2/3 (1 div)" and first[6] == "embedding"
    assert "100 %" in title


def test_fit_lines_name_k_with_its_interval(study):
    _, _, result = study
    lines = R.fit_lines(result)
    assert len(lines) == 2 and all("k = " in line and "95% CI" in line for line in lines)
    assert all("pure power law k = " in line for line in lines)


def test_print_summary_renders_every_table(study):
    from rich.console import Console

    _, _, result = study
    buffer = io.StringIO()
    R.print_summary(Console(file=buffer, width=200), result)
    text = buffer.getvalue()
    for title in (
        "Per width",
        "Fitted steps",
        "Dataset-size law",
        "Exponents",
        "Comparison with the paper",
        "Width-K linear network",
        "Yin identity",
    ):
        assert title in text, title
    assert "agree" in text
