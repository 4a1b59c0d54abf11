"""Study planning, execution into the store, skipping finished runs, failures, divergence, compatibility."""

import math
from pathlib import Path

import pytest
import torch

from overparam_empirical import study as study_module
from overparam_empirical.store import StudyStore
from overparam_empirical.study import StudyProgress, StudySpec, plan_runs, run_study
from overparam_empirical.train import config_hash
from overparam_theory.errors import InputError

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "shakespeare_hamlet_excerpt.txt"
TINY = {
    "seq_len": 20,
    "batch_size": 4,
    "max_steps": 30,
    "eval_every": 10,
    "eval_windows": None,
    "log_every": 10,
    "track": "every:5",
    "grad_clip": 5.0,
}


def tiny_spec(out_dir, **values) -> StudySpec:
    base = {
        "preset": "small",
        "widths": (8, 12),
        "depths": (2,),
        "fractions": (1.0,),
        "seeds": (0,),
        "corpus": str(FIXTURE),
        "device": "cpu",
        "out_dir": out_dir,
        "workers": 1,
        "overrides": TINY,
        "checkpoint_minutes": None,
    }
    base.update(values)
    return StudySpec(**base)


class Recorder(StudyProgress):
    def __init__(self):
        self.events = []

    def start(self, total, skipped, workers):
        self.events.append(("start", total, skipped, workers))

    def run_started(self, slot, run):
        self.events.append(("started", run.run_id))

    def run_progress(self, slot, run, info):
        self.events.append(("progress", run.run_id, info.step))

    def run_finished(self, slot, run, status, detail):
        self.events.append(("finished", run.run_id, status))


def comparable(store_path):
    """Every row of every table, without the columns that legitimately differ between invocations."""
    with StudyStore.open(store_path) as store:
        tables = store.dump()
    from overparam_empirical.store import TABLES

    columns = [c for c, _ in TABLES["runs"]]
    drop = {columns.index("wall_seconds"), columns.index("finished_at")}
    tables["runs"] = [tuple(v for i, v in enumerate(row) if i not in drop) for row in tables["runs"]]
    del tables["study"]
    return tables


@pytest.fixture(autouse=True)
def restore_threads():
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


# ---- planning -------------------------------------------------------------------------------------


def test_plan_is_the_full_grid_with_hashed_ids(tmp_path):
    spec = tiny_spec(tmp_path, widths=(8, 12, 16), seeds=(0, 1), optimizers=("sgd", "adam"), lrs=(0.5, 1.0))
    runs = plan_runs(spec)
    assert len(runs) == 3 * 2 * 2 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    assert all(r.run_id == config_hash(r.config) for r in runs)
    assert {(r.config.width, r.config.seed, r.config.optimizer, r.config.lr) for r in runs} == {
        (w, s, o, lr) for w in (8, 12, 16) for s in (0, 1) for o in ("sgd", "adam") for lr in (0.5, 1.0)
    }
    assert all(r.config.seq_len == 20 and r.config.depth == 2 for r in runs)


def test_plan_uses_preset_defaults_and_removes_duplicates(tmp_path):
    runs = plan_runs(StudySpec(out_dir=tmp_path, device="cpu"))
    from overparam_empirical.benchmarks import get_benchmark

    small = get_benchmark("char-lm").preset("small")
    assert len(runs) == len(small.widths) * len(small.fractions) * len(small.seeds)
    assert {r.config.lr for r in runs} == {small.lrs["sgd"]}
    assert {r.config.depth for r in runs} == {small.train["depth"]}
    assert len(plan_runs(tiny_spec(tmp_path, seeds=(0, 0), widths=(8, 8)))) == 1
    adam = plan_runs(tiny_spec(tmp_path, optimizers=("adam",)))
    assert {r.config.lr for r in adam} == {small.lrs["adam"]}


def test_a_corpus_path_gives_the_same_run_ids_however_it_is_spelled(tmp_path, monkeypatch):
    # Before: the path went into the run id as typed, so rerunning with an absolute path (or from
    # another folder) trained every run again and the store held each run twice.
    absolute = plan_runs(tiny_spec(tmp_path, corpus=str(FIXTURE)))
    monkeypatch.chdir(FIXTURE.parent.parent)
    relative = plan_runs(tiny_spec(tmp_path, corpus=f"data/../data/{FIXTURE.name}"))
    assert [r.run_id for r in relative] == [r.run_id for r in absolute]
    assert {r.config.corpus for r in relative} == {str(FIXTURE)}


@pytest.mark.parametrize(
    "values",
    [
        {"benchmark": "nope"},
        {"preset": "huge"},
        {"optimizers": ("rmsprop",)},
        {"lr_scaling": "sqrt"},
        {"widths": ()},
        {"widths": (0,)},
        {"fractions": (2.0,)},
        {"overrides": {"width": 3}},
        {"overrides": {"colour": "red"}},
        {"device": "tpu"},
    ],
)
def test_bad_specs_are_input_errors(tmp_path, values):
    with pytest.raises(InputError):
        plan_runs(tiny_spec(tmp_path, **values))


# ---- running -------------------------------------------------------------------------------------


def test_study_stores_every_run_and_a_rerun_skips_them(tmp_path):
    recorder = Recorder()
    outcome = run_study(tiny_spec(tmp_path, widths=(8, 12), seeds=(0, 1)), progress=recorder)
    assert (outcome.planned, outcome.skipped, outcome.interrupted, outcome.failed) == (4, 0, False, [])
    assert sum(outcome.completed.values()) == 4
    with StudyStore.open(tmp_path) as store:
        runs = store.runs()
        meta = store.metadata()
        assert len(runs) == 4 and {r["status"] for r in runs} <= {"converged", "capped"}
        for run in runs:
            valid = store.curves(run["run_id"], "valid")
            assert [r["step"] for r in valid][:1] == [0]
            assert run["min_val_loss"] == min(r["loss"] for r in valid)
            assert run["steps_to_min"] in [r["step"] for r in valid]
            assert run["n_params"] > 0 and run["train_tokens"] > 0 and run["depth"] == 2
            groups = {r["group_name"] for r in store.traversal_summary(run["run_id"])}
            assert groups == {"embedding", "hidden", "softmax", "all"}
            assert len(store.traversal(run["run_id"])) == 4 * len(range(0, run["steps_done"], 5))
            assert all(abs(r["yin_rel_residual"]) < 1e-9 for r in store.traversal_summary(run["run_id"]))
    assert meta["benchmark"] == "char-lm" and meta["preset"] == "small" and meta["grid"]["widths"] == [8, 12]
    assert meta["unit"] == "character"
    assert meta["corpus"] == FIXTURE.name and len(meta["corpus_sha256"]) == 64
    assert recorder.events[0] == ("start", 4, 0, 1)
    assert sum(1 for e in recorder.events if e[0] == "finished") == 4
    assert any(e[0] == "progress" for e in recorder.events)

    before = comparable(tmp_path / "study.sqlite")
    again = run_study(tiny_spec(tmp_path, widths=(8, 12), seeds=(0, 1)), progress=None)
    assert (again.planned, again.skipped, again.completed) == (4, 4, {})
    assert comparable(tmp_path / "study.sqlite") == before
    grown = run_study(tiny_spec(tmp_path, widths=(8, 12, 16), seeds=(0, 1)), progress=None)
    assert (grown.skipped, sum(grown.completed.values())) == (4, 2)
    with StudyStore.open(tmp_path) as store:
        assert store.metadata()["grid"]["widths"] == [8, 12, 16]


def test_divergence_is_recorded_and_the_study_goes_on(tmp_path):
    overrides = {**TINY, "grad_clip": None}
    outcome = run_study(tiny_spec(tmp_path, widths=(8,), lrs=(1.0, 1e38), overrides=overrides), progress=None)
    assert outcome.completed.get("diverged") == 1 and sum(outcome.completed.values()) == 2
    with StudyStore.open(tmp_path) as store:
        statuses = {r["lr"]: r["status"] for r in store.runs()}
        (diverged,) = store.runs("diverged")
    assert statuses[1e38] == "diverged" and statuses[1.0] in ("converged", "capped")
    assert diverged["steps_done"] < TINY["max_steps"] and math.isfinite(diverged["min_val_loss"])


def test_a_failing_run_is_recorded_and_retried_on_rerun(tmp_path, monkeypatch):
    real = study_module.train_run

    def flaky(config, *args, **kwargs):
        if config.width == 12:
            raise RuntimeError("simulated out-of-memory")
        return real(config, *args, **kwargs)

    monkeypatch.setattr(study_module, "train_run", flaky)
    outcome = run_study(tiny_spec(tmp_path), progress=None)
    assert outcome.completed.get("failed") == 1 and len(outcome.failed) == 1
    with StudyStore.open(tmp_path) as store:
        (failed,) = store.runs("failed")
        assert "simulated out-of-memory" in failed["error"] and failed["width"] == 12
        assert store.curves(failed["run_id"]) == []
    monkeypatch.setattr(study_module, "train_run", real)
    retry = run_study(tiny_spec(tmp_path), progress=None)
    assert (retry.skipped, sum(retry.completed.values()), retry.failed) == (1, 1, [])
    with StudyStore.open(tmp_path) as store:
        assert store.runs("failed") == [] and len(store.runs()) == 2


def test_an_incompatible_existing_store_is_refused_before_anything_is_written(tmp_path):
    run_study(tiny_spec(tmp_path, widths=(8,)), progress=None)
    before = comparable(tmp_path / "study.sqlite")
    with pytest.raises(InputError, match="preset"):
        run_study(tiny_spec(tmp_path, widths=(8,), preset="paper"), progress=None)
    other = tmp_path / "other.txt"
    other.write_text(FIXTURE.read_text()[:3000])
    with pytest.raises(InputError, match="corpus"):
        run_study(tiny_spec(tmp_path, widths=(8,), corpus=str(other)), progress=None)
    assert comparable(tmp_path / "study.sqlite") == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        run_study(tiny_spec(tmp_path / "file"), progress=None)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"fractions": (1e-5,)}, "too short for batch size 4"),  # 2 training characters
        ({"overrides": {**TINY, "seq_len": 100_000}}, "too short"),
        ({"overrides": {**TINY, "batch_size": 5_000}}, "too short"),
        ({"widths": (10**6,)}, "parameters"),
    ],
)
def test_runs_that_cannot_train_on_their_data_are_refused_before_writing(tmp_path, values, message):
    # Before: each such run raised inside training, was stored as "failed" and the study "succeeded".
    out = tmp_path / "study"
    with pytest.raises(InputError, match=message) as info:
        run_study(tiny_spec(out, **values), progress=None)
    assert "\n" not in str(info.value) and str(info.value).startswith("run H=")
    assert not out.exists()


def test_rich_progress_renders_without_a_terminal(tmp_path):
    from rich.console import Console

    console = Console(file=open(tmp_path / "progress.txt", "w"), force_terminal=False, width=120)  # noqa: SIM115
    run_study(tiny_spec(tmp_path / "s", widths=(8,)), progress=study_module.RichStudyProgress(console))
    console.file.close()
    text = (tmp_path / "progress.txt").read_text()
    assert "H=8" in text and ("converged" in text or "capped" in text)


def test_a_script_without_the_main_guard_gets_a_clear_error(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from test_study import tiny_spec\n"
        "from overparam_empirical.study import run_study\n"
        f"run_study(tiny_spec({str(tmp_path / 'out')!r}, workers=2), progress=None)\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "if __name__ == '__main__':" in result.stderr.splitlines()[-1]
    from overparam_empirical.store import StudyStore

    with StudyStore.open(tmp_path / "out") as store:
        assert store.runs() == []  # no run was recorded as failed
