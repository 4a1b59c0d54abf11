"""The results store of a study: one SQLite file (``<out>/study.sqlite``), schema in docs/architecture.md.

Design rules, each for a reason:

* every finished run (converged, capped, diverged or failed) is written in ONE transaction, so a study
  killed at any moment leaves complete runs or none — never half a run, never duplicate rows;
* only one process writes (the study's parent); WAL mode + a busy timeout let analysis read meanwhile;
* NaN is stored as NULL (SQLite has no NaN) and read back as NaN in REAL columns; ±inf is kept;
* queries return plain ``dict`` / ``list`` objects so that analysis code needs no SQL;
* a file that is not a study store, or one written by a newer schema, raises
  :class:`~overparam_theory.errors.InputError` — the store never guesses.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from overparam_theory.errors import InputError

__all__ = ["SCHEMA_VERSION", "FINISHED_STATUSES", "RUN_STATUSES", "TABLES", "StudyStore"]

SCHEMA_VERSION = 1
RUN_STATUSES = ("converged", "capped", "diverged", "failed")
FINISHED_STATUSES = ("converged", "capped", "diverged")  # a rerun skips these; "failed" is retried

# table -> [(column, SQL type)]; the order is the column order. The primary keys are declared below.
TABLES: dict[str, list[tuple[str, str]]] = {
    "study": [("key", "TEXT"), ("value", "TEXT")],
    "runs": [
        ("run_id", "TEXT"),
        ("config_json", "TEXT"),
        ("benchmark", "TEXT"),
        ("width", "INTEGER"),
        ("depth", "INTEGER"),
        ("fraction", "REAL"),
        ("seed", "INTEGER"),
        ("optimizer", "TEXT"),
        ("lr", "REAL"),
        ("lr_scaling", "TEXT"),
        ("n_params", "INTEGER"),
        ("train_tokens", "INTEGER"),
        ("status", "TEXT"),
        ("stop_reason", "TEXT"),
        ("steps_to_min", "INTEGER"),
        ("min_bracket_lo", "INTEGER"),
        ("min_bracket_hi", "INTEGER"),
        ("steps_to_within", "INTEGER"),
        ("within_bracket_lo", "INTEGER"),
        ("within_bracket_hi", "INTEGER"),
        ("min_val_loss", "REAL"),
        ("final_train_loss", "REAL"),
        ("steps_done", "INTEGER"),
        ("device", "TEXT"),
        ("wall_seconds", "REAL"),
        ("finished_at", "TEXT"),
        ("error", "TEXT"),
    ],
    "curves": [("run_id", "TEXT"), ("split", "TEXT"), ("step", "INTEGER"), ("loss", "REAL")],
    "traversal": [
        ("run_id", "TEXT"),
        ("step", "INTEGER"),
        ("group_name", "TEXT"),
        ("distance", "REAL"),
        ("relative_distance", "REAL"),
        ("step_size", "REAL"),
        ("grad_norm", "REAL"),
        ("path_length", "REAL"),
        ("as_angle", "REAL"),
        ("ae_angle", "REAL"),
        ("ae_paper", "REAL"),
    ],
    "traversal_summary": [
        ("run_id", "TEXT"),
        ("group_name", "TEXT"),
        ("n_params", "INTEGER"),
        # the way from W_0 to W* (the min.-validation-loss weights, reached after steps_to_star updates)
        ("steps_to_star", "INTEGER"),
        ("distance_init_to_star", "REAL"),
        ("path_length_to_star", "REAL"),
        ("mean_step_size_to_star", "REAL"),
        ("mean_as_to_star", "REAL"),
        ("mean_ae_to_star", "REAL"),
        # the whole run, to W_T where it stopped (patience evaluations after W*)
        ("final_distance", "REAL"),
        ("distance_final_to_star", "REAL"),
        ("path_length", "REAL"),
        ("mean_step_size", "REAL"),
        ("mean_grad_norm", "REAL"),
        ("mean_as", "REAL"),
        ("mean_ae", "REAL"),
        ("mean_ae_paper", "REAL"),
        ("yin_lhs", "REAL"),
        ("yin_rhs", "REAL"),
        ("yin_abs_residual", "REAL"),
        ("yin_rel_residual", "REAL"),
    ],
}
_PRIMARY_KEYS = {
    "study": ("key",),
    "runs": ("run_id",),
    "curves": ("run_id", "split", "step"),
    "traversal": ("run_id", "step", "group_name"),
    "traversal_summary": ("run_id", "group_name"),
}
_NOT_NULL = {
    "config_json",
    "benchmark",
    "width",
    "fraction",
    "seed",
    "optimizer",
    "lr",
    "lr_scaling",
    "status",
}
_CHECKS = {
    "runs": f"CHECK (status IN ({', '.join(repr(s) for s in RUN_STATUSES)})), "
    "CHECK (stop_reason IS NULL OR stop_reason IN ('patience', 'stall'))",
    "curves": "CHECK (split IN ('train', 'valid'))",
}
_RUN_ORDER = "benchmark, width, depth, fraction, seed, optimizer, lr, lr_scaling, run_id"
_REAL = {(t, c) for t, cols in TABLES.items() for c, kind in cols if kind == "REAL"}


def _create_sql() -> list[str]:
    statements = []
    for table, columns in TABLES.items():
        parts = []
        for name, kind in columns:
            required = name in _PRIMARY_KEYS[table] or (table == "runs" and name in _NOT_NULL)
            parts.append(f"{name} {kind}{' NOT NULL' if required else ''}")
        if table not in ("study", "runs"):
            parts.append("FOREIGN KEY (run_id) REFERENCES runs(run_id) ON DELETE CASCADE")
        parts.append(f"PRIMARY KEY ({', '.join(_PRIMARY_KEYS[table])})")
        if table in _CHECKS:
            parts.append(_CHECKS[table])
        statements.append(f"CREATE TABLE {table} ({', '.join(parts)}) WITHOUT ROWID")
    return statements


def _to_sql(value: Any) -> Any:
    """NaN -> NULL; numpy / torch scalars -> Python numbers."""
    if value is None or isinstance(value, str | bytes):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalar
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else value
    return value


class StudyStore:
    """One study's SQLite file. Use :meth:`create` (new or resumed study) or :meth:`open` (read)."""

    def __init__(self, connection: sqlite3.Connection, path: Path):
        self._db = connection
        self.path = path

    # ---- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> StudyStore:
        """Open an existing store; raise InputError when ``path`` is missing or not a study store."""
        path = Path(path)
        if path.is_dir():
            path = path / "study.sqlite"
        if not path.is_file():
            raise InputError(f"no study store at {path}")
        store = cls(_connect(path), path)
        store._check_schema()
        return store

    @classmethod
    def create(cls, path: str | Path, metadata: Mapping[str, Any]) -> StudyStore:
        """Open ``path`` for writing, creating the schema when the file is new.

        An existing store is checked (schema version) and reused: its metadata is updated with
        ``metadata`` except ``created_at`` and ``schema_version``, which keep their first values.
        """
        path = Path(path)
        new = not path.exists() or path.stat().st_size == 0
        path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(_connect(path), path)
        if new:
            store._db.execute("PRAGMA journal_mode = WAL")  # persistent: readers may read while we write
            with store._transaction():
                for statement in _create_sql():
                    store._db.execute(statement)
                store._put_metadata({**metadata, "schema_version": SCHEMA_VERSION})
        else:
            store._check_schema()
            keep = {"created_at", "schema_version"}
            existing = store.metadata()
            with store._transaction():
                store._put_metadata({k: v for k, v in metadata.items() if k not in keep or k not in existing})
        return store

    def _check_schema(self) -> None:
        try:
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            self.close()
            raise InputError(f"{self.path} is not a study store ({exc})") from None
        if not set(TABLES) <= tables:
            self.close()
            raise InputError(
                f"{self.path} is not a study store (tables {sorted(set(TABLES) - tables)} missing)"
            )
        for table, columns in TABLES.items():
            found = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            missing = [c for c, _ in columns if c not in found]
            if missing:  # written by a development version before these columns existed
                self.close()
                raise InputError(
                    f"{self.path} was written by an older version of overparam (table {table} lacks "
                    f"{', '.join(missing)}); run the study into a new folder"
                )
        row = self._db.execute("SELECT value FROM study WHERE key='schema_version'").fetchone()
        version = json.loads(row[0]) if row else None
        if not isinstance(version, int):
            self.close()
            raise InputError(f"{self.path} is not a study store (no schema_version)")
        if version > SCHEMA_VERSION:
            self.close()
            raise InputError(
                f"{self.path} has store schema {version}, newer than {SCHEMA_VERSION}; upgrade overparam"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StudyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing -------------------------------------------------------------------------------

    def _put_metadata(self, metadata: Mapping[str, Any]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO study (key, value) VALUES (?, ?)",
            [(str(k), json.dumps(v, sort_keys=True, allow_nan=False)) for k, v in metadata.items()],
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (SQLite DDL is transactional too)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def set_metadata(self, metadata: Mapping[str, Any]) -> None:
        with self._transaction():
            self._put_metadata(metadata)

    def write_run(
        self,
        run: Mapping[str, Any],
        curves: Iterable[tuple[str, int, float]] = (),
        traversal: Iterable[Mapping[str, Any]] = (),
        summary: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        """Write one finished run and all its rows in one transaction (replacing an earlier attempt).

        ``run`` has the ``runs`` columns (unknown keys raise InputError, missing ones are NULL);
        ``curves`` yields ``(split, step, loss)``; ``traversal`` / ``summary`` yield dicts with the
        ``traversal`` / ``traversal_summary`` columns without ``run_id``.
        """
        run_id = run.get("run_id")
        if not run_id:
            raise InputError("write_run needs a run_id")
        rows = {
            "runs": [self._row("runs", run)],
            "curves": [
                self._row("curves", {"run_id": run_id, "split": s, "step": t, "loss": x})
                for s, t, x in curves
            ],
            "traversal": [self._row("traversal", {**r, "run_id": run_id}) for r in traversal],
            "traversal_summary": [self._row("traversal_summary", {**r, "run_id": run_id}) for r in summary],
        }
        with self._transaction():  # all rows of this run or none
            self._db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))  # cascades to the rest
            for table, table_rows in rows.items():
                if table_rows:
                    columns = [c for c, _ in TABLES[table]]
                    marks = ", ".join("?" * len(columns))
                    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                    self._db.executemany(sql, table_rows)

    @staticmethod
    def _row(table: str, values: Mapping[str, Any]) -> tuple:
        columns = [c for c, _ in TABLES[table]]
        unknown = set(values) - set(columns)
        if unknown:
            raise InputError(f"unknown {table} columns: {sorted(unknown)}")
        return tuple(_to_sql(values.get(c)) for c in columns)

    # ---- reading -------------------------------------------------------------------------------

    def _select(self, table: str, where: str = "", params: tuple = (), order: str = "") -> list[dict]:
        columns = [c for c, _ in TABLES[table]]
        sql = f"SELECT {', '.join(columns)} FROM {table}"
        if where:
            sql += f" WHERE {where}"
        sql += f" ORDER BY {order or ', '.join(_PRIMARY_KEYS[table])}"
        out = []
        for values in self._db.execute(sql, params):
            row = dict(zip(columns, values, strict=True))
            for c in columns:
                if row[c] is None and (table, c) in _REAL:
                    row[c] = math.nan
            out.append(row)
        return out

    def metadata(self) -> dict[str, Any]:
        """The ``study`` table as a dict (values JSON-decoded)."""
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM study ORDER BY key")}

    def runs(self, status: str | Iterable[str] | None = None) -> list[dict]:
        """All runs (optionally only those with the given status or statuses), one dict per run."""
        if status is None:
            return self._select("runs", order=_RUN_ORDER)
        statuses = (status,) if isinstance(status, str) else tuple(status)
        marks = ", ".join("?" * len(statuses))
        return self._select("runs", f"status IN ({marks})", statuses, order=_RUN_ORDER)

    def run(self, run_id: str) -> dict | None:
        rows = self._select("runs", "run_id = ?", (run_id,))
        return rows[0] if rows else None

    def finished_run_ids(self) -> set[str]:
        """Runs a rerun skips: converged, capped or diverged (failed runs are retried)."""
        marks = ", ".join("?" * len(FINISHED_STATUSES))
        return {
            r[0]
            for r in self._db.execute(f"SELECT run_id FROM runs WHERE status IN ({marks})", FINISHED_STATUSES)
        }

    def curves(self, run_id: str, split: str | None = None) -> list[dict]:
        """Loss curve rows ``{run_id, split, step, loss}`` ordered by split then step."""
        if split is None:
            return self._select("curves", "run_id = ?", (run_id,))
        return self._select("curves", "run_id = ? AND split = ?", (run_id, split))

    def traversal(self, run_id: str | None = None) -> list[dict]:
        """Traversal metric rows, one per (run, tracked step, group)."""
        if run_id is None:
            return self._select("traversal")
        return self._select("traversal", "run_id = ?", (run_id,))

    def traversal_summary(self, run_id: str | None = None) -> list[dict]:
        """Per-(run, group) traversal summary incl. the Yin identity check."""
        if run_id is None:
            return self._select("traversal_summary")
        return self._select("traversal_summary", "run_id = ?", (run_id,))

    def dump(self) -> dict[str, list[tuple]]:
        """Every table's rows as sorted tuples (for comparing two stores)."""
        out = {}
        for table in TABLES:
            columns = ", ".join(c for c, _ in TABLES[table])
            out[table] = sorted(self._db.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)
        return out


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; _transaction() says exactly where they are.
    db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout = 60000")  # the parent writes while analysis may read
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a killed process never loses a commit
    except sqlite3.DatabaseError as exc:
        db.close()
        raise InputError(f"{path} is not a study store ({exc})") from None
    return db
