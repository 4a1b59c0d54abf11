"""Figures: valid PNG and SVG files for the figures a study has data for, nothing for the others."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from char_lm_synthetic import Plant, build_store

from overparam_empirical import analysis as A
from overparam_empirical import figures as F

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _study(tmp_path, **plant):
    folder = build_store(tmp_path / "study", Plant(**plant))
    rows = A.StudyRows.from_store(folder)
    return folder, rows, A.analyze(rows, n_boot=100)


def _check_png(path):
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 500 and image.shape[1] > 500  # 300 dpi


def _check_svg(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert len(list(root.iter())) > 50  # something was drawn


@pytest.fixture(scope="module")
def full_study(tmp_path_factory):
    """Two optimizer settings, two fractions, a diverged and a capped run: every figure has data."""
    tmp = tmp_path_factory.mktemp("figs")
    return _study(
        tmp,
        widths=(16, 32, 64, 128),
        seeds=(0, 1, 2),
        conditions=(("sgd", 0.8), ("adam", 0.003)),
        statuses={(16, 0): "diverged", (64, 1): "capped"},
    )


def test_every_figure_is_written_as_valid_png_and_svg(full_study):
    folder, rows, result = full_study
    report = F.make_figures(rows, result, folder)
    assert report.skipped == {}
    names = {p.stem for p in report.written}
    assert names == set(F.FIGURE_NAMES)
    for path in report.written:
        assert path.parent == folder / "figures" and path.stat().st_size > 0
        (_check_png if path.suffix == ".png" else _check_svg)(path)
    leftovers = [p for p in (folder / "figures").iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_svg_output_is_reproducible(full_study, tmp_path):
    _, rows, result = full_study
    first = F.fig6_distance(rows, result, tmp_path / "a")
    second = F.fig6_distance(rows, result, tmp_path / "b")
    svg = [p for p in first if p.suffix == ".svg"][0]
    assert svg.read_bytes() == [p for p in second if p.suffix == ".svg"][0].read_bytes()


def test_single_condition_single_fraction_skips_fig2_and_fig3b_and_writes_nothing_for_them(tmp_path):
    # (make_figures turns these exceptions into its skip list: see the two tests below)
    folder, rows, result = _study(tmp_path, widths=(16, 32, 64, 128), seeds=(0, 1), fractions=(1.0,))
    with pytest.raises(F.FigureSkipped, match="one optimizer"):
        F.fig2_lr_optimizer(result, folder)
    with pytest.raises(F.FigureSkipped, match="single data fraction"):
        F.fig3b_dataset_size(rows, result, folder)
    assert not (folder / "figures").exists()


def test_empty_study_skips_everything_and_creates_no_files(tmp_path):
    folder, rows, result = _study(tmp_path, widths=())
    report = F.make_figures(rows, result, folder)
    assert report.written == [] and set(report.skipped) == set(F.FIGURE_NAMES)
    assert not (folder / "figures").exists()


def test_study_without_traversal_rows_skips_traversal_figures(tmp_path):
    folder, rows, result = _study(tmp_path, widths=(16, 32, 64, 128), seeds=(0, 1), fractions=(1.0,))
    bare = A.StudyRows(runs=rows.runs, curves=rows.curves, metadata=rows.metadata)
    bare_result = A.analyze(bare, n_boot=100)
    report = F.make_figures(bare, bare_result, tmp_path / "bare")
    for name in ("fig6_distance", "fig7_step_size", "fig8_angle", "trajectories"):
        assert name in report.skipped
    assert "fig1a_steps_vs_size" not in report.skipped and "validation_curves" not in report.skipped


def test_one_seed_per_width_draws_points_instead_of_violins(tmp_path):
    folder, rows, result = _study(tmp_path, widths=(16, 32, 64, 128), seeds=(0,), fractions=(1.0,))
    paths = F.fig5_loss_and_steps(rows, result, folder)
    for path in paths:
        (_check_png if path.suffix == ".png" else _check_svg)(path)
