"""The SQLite results store: schema, round trips (NaN included), one transaction per run, bad files."""

import json
import math
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overparam_empirical.store import SCHEMA_VERSION, TABLES, StudyStore
from overparam_theory.errors import InputError

META = {
    "benchmark": "char-lm",
    "preset": "small",
    "corpus": "shakespeare",
    "created_at": "2024-01-01T00:00:00",
}


def run_row(run_id="r1", **values):
    row = {
        "run_id": run_id,
        "config_json": json.dumps({"width": 32}),
        "benchmark": "char-lm",
        "width": 32,
        "depth": 2,
        "fraction": 0.5,
        "seed": 0,
        "optimizer": "sgd",
        "lr": 0.8,
        "lr_scaling": "none",
        "n_params": 1234,
        "train_tokens": 1000,
        "status": "converged",
        "stop_reason": "patience",
        "steps_to_min": 300,
        "min_bracket_lo": 200,
        "min_bracket_hi": 300,
        "steps_to_within": 200,
        "within_bracket_lo": 100,
        "within_bracket_hi": 200,
        "min_val_loss": 1.5,
        "final_train_loss": 1.4,
        "steps_done": 600,
        "device": "cpu",
        "wall_seconds": 3.25,
        "finished_at": "2024-01-01T00:01:00",
        "error": None,
    }
    row.update(values)
    return row


def test_new_store_has_the_documented_schema(tmp_path):
    with StudyStore.create(tmp_path / "study.sqlite", META) as store:
        meta = store.metadata()
    assert meta["schema_version"] == SCHEMA_VERSION and meta["benchmark"] == "char-lm"
    db = sqlite3.connect(tmp_path / "study.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for table, columns in TABLES.items():
        found = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        assert found == [c for c, _ in columns]
    db.close()


def test_run_round_trip_with_nan_stored_as_null(tmp_path):
    curves = [("valid", 0, 4.6), ("valid", 100, math.nan), ("train", 50, 3.0), ("train", 100, math.inf)]
    traversal = [
        {"step": 0, "group_name": "all", "distance": 1.0, "as_angle": math.nan, "ae_angle": 0.5},
        {"step": 10, "group_name": "softmax", "distance": 0.25, "step_size": 0.01},
    ]
    summary = [
        {"group_name": "all", "n_params": 1234, "yin_lhs": 2.0, "yin_rhs": 2.0, "yin_rel_residual": 0.0}
    ]
    with StudyStore.create(tmp_path / "s.sqlite", META) as store:
        store.write_run(run_row(min_val_loss=math.nan), curves, traversal, summary)
    with StudyStore.open(tmp_path / "s.sqlite") as store:
        (run,) = store.runs()
        assert run == {**run_row(), "min_val_loss": run["min_val_loss"]} and math.isnan(run["min_val_loss"])
        got = store.curves("r1")
        assert [(r["split"], r["step"]) for r in got] == [
            ("train", 50),
            ("train", 100),
            ("valid", 0),
            ("valid", 100),
        ]
        assert got[1]["loss"] == math.inf and math.isnan(got[3]["loss"]) and got[2]["loss"] == 4.6
        assert [r["step"] for r in store.curves("r1", "valid")] == [0, 100]
        rows = store.traversal("r1")
        assert (
            rows[0]["distance"] == 1.0
            and math.isnan(rows[0]["as_angle"])
            and math.isnan(rows[0]["grad_norm"])
        )
        assert rows[1]["group_name"] == "softmax" and rows[1]["step_size"] == 0.01
        (s,) = store.traversal_summary()
        assert s["n_params"] == 1234 and s["yin_lhs"] == 2.0 and math.isnan(s["mean_as"])
    raw = sqlite3.connect(tmp_path / "s.sqlite")
    assert raw.execute("SELECT loss FROM curves WHERE split='valid' AND step=100").fetchone() == (None,)
    raw.close()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["train", "valid"]), st.integers(0, 10**6), st.floats(allow_nan=True)),
        max_size=30,
        unique_by=lambda r: (r[0], r[1]),
    )
)
def test_curves_round_trip_any_float(tmp_path_factory, curves):
    path = tmp_path_factory.mktemp("store") / "s.sqlite"
    with StudyStore.create(path, META) as store:
        store.write_run(run_row(), curves)
        got = {(r["split"], r["step"]): r["loss"] for r in store.curves("r1")}
    want = {(s, t): x for s, t, x in curves}
    assert got.keys() == want.keys()
    for key, x in want.items():
        assert (math.isnan(x) and math.isnan(got[key])) or got[key] == x


def test_rewriting_a_run_replaces_all_its_rows(tmp_path):
    with StudyStore.create(tmp_path / "s.sqlite", META) as store:
        store.write_run(run_row(status="failed", error="boom"), [("valid", 0, 1.0), ("valid", 5, 1.0)])
        store.write_run(run_row(), [("valid", 0, 2.0)], [{"step": 0, "group_name": "all"}])
        assert store.finished_run_ids() == {"r1"}
        assert [r["loss"] for r in store.curves("r1")] == [2.0]
        assert len(store.runs()) == 1 and store.runs()[0]["status"] == "converged"
        assert len(store.traversal()) == 1


def test_a_failing_write_leaves_nothing(tmp_path):
    with StudyStore.create(tmp_path / "s.sqlite", META) as store:
        store.write_run(run_row("keep"), [("valid", 0, 1.0)])
        with pytest.raises(sqlite3.IntegrityError):  # duplicate curve key: the whole run is rolled back
            store.write_run(run_row("bad"), [("valid", 0, 1.0), ("valid", 0, 2.0)])
        with pytest.raises(sqlite3.IntegrityError):  # status outside the allowed set
            store.write_run(run_row("bad", status="weird"))
        assert [r["run_id"] for r in store.runs()] == ["keep"]
        assert store.curves("bad") == []


def test_failed_runs_are_not_finished_and_status_filters(tmp_path):
    with StudyStore.create(tmp_path / "s.sqlite", META) as store:
        store.write_run(run_row("a", status="failed", error="x"))
        store.write_run(run_row("b", status="diverged"))
        store.write_run(run_row("c", status="capped"))
        assert store.finished_run_ids() == {"b", "c"}
        assert [r["run_id"] for r in store.runs("failed")] == ["a"]
        assert {r["run_id"] for r in store.runs(["diverged", "capped"])} == {"b", "c"}
        assert store.run("zzz") is None and store.run("a")["error"] == "x"


def test_reopening_keeps_created_at_and_updates_other_metadata(tmp_path):
    path = tmp_path / "s.sqlite"
    StudyStore.create(path, META).close()
    with StudyStore.create(path, {**META, "created_at": "later", "grid": {"widths": [1, 2]}}) as store:
        meta = store.metadata()
    assert meta["created_at"] == META["created_at"] and meta["grid"] == {"widths": [1, 2]}


def test_unknown_columns_and_missing_run_id_are_input_errors(tmp_path):
    with StudyStore.create(tmp_path / "s.sqlite", META) as store:
        with pytest.raises(InputError, match="unknown runs columns"):
            store.write_run(run_row(colour="red"))
        with pytest.raises(InputError, match="run_id"):
            store.write_run({"width": 3})


def test_a_file_that_is_not_a_store_is_an_input_error_and_is_left_alone(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database\n" * 100)
    for opener in (StudyStore.open, lambda p: StudyStore.create(p, META)):
        with pytest.raises(InputError, match="not a study store"):
            opener(text)
    assert text.read_text() == "hello, not a database\n" * 100
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(InputError, match="not a study store"):
        StudyStore.open(other)
    with pytest.raises(InputError, match="no study store"):
        StudyStore.open(tmp_path / "missing.sqlite")


def test_a_newer_schema_is_an_input_error(tmp_path):
    path = tmp_path / "s.sqlite"
    StudyStore.create(path, META).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE study SET value = ? WHERE key = 'schema_version'", (json.dumps(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(InputError, match="newer"):
        StudyStore.open(path)
    with pytest.raises(InputError, match="newer"):
        StudyStore.create(path, META)


def test_open_accepts_the_study_folder(tmp_path):
    StudyStore.create(tmp_path / "study.sqlite", META).close()
    with StudyStore.open(tmp_path) as store:
        assert store.metadata()["preset"] == "small"


def test_a_store_from_before_a_column_existed_is_refused_in_one_line(tmp_path):
    # Same schema_version, fewer columns (a development store): reading it used to fail deep inside a
    # SELECT with sqlite3.OperationalError; now opening it says what is missing.
    path = tmp_path / "old.sqlite"
    with StudyStore.create(path, META) as store:
        store.write_run(run_row())
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE traversal_summary DROP COLUMN mean_ae_to_star")
    db.commit()
    db.close()
    with pytest.raises(InputError, match="traversal_summary lacks mean_ae_to_star") as info:
        StudyStore.open(path)
    assert "\n" not in str(info.value)
