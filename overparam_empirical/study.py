"""A study: a grid of runs (widths x depths x fractions x seeds x optimizers x lrs x lr scalings), resumable.

``StudySpec`` -> :func:`plan_runs` (one :class:`RunConfig` per grid point, keyed by
``config_hash``) -> :func:`run_study` (skips runs the store already has, trains the rest, writes each
finished run in one transaction).

Execution. ``workers=1`` trains in this process (easy to debug). ``workers>1`` starts that many
single-threaded worker processes (``torch.set_num_threads(1)``: for small recurrent models two
single-threaded processes give ~1.8-2x one process on this kind of CPU, see /work/shared/perf-notes.md).
Workers only compute; the parent alone writes the SQLite store, so killing the study at any moment
leaves whole runs or nothing. Every run uses one thread in either mode, so both give identical numbers.

Stopping. Ctrl-C stops cleanly: finished runs are kept, the runs in flight are dropped (they resume from
their last within-run checkpoint, if any, on the next invocation). A SIGKILLed parent leaves orphan
workers, which notice within one log step (their parent pid changes) and exit.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
import os
import queue as _queue
import signal
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from overparam_empirical.benchmarks import get_benchmark
from overparam_empirical.store import StudyStore
from overparam_empirical.train import (
    LR_SCALINGS,
    OPTIMIZERS,
    CheckpointPolicy,
    RunProgress,
    RunResult,
    TrainConfig,
    config_hash,
    device_kind,
    effective_lr,
    train_run,
)
from overparam_theory.errors import InputError

__all__ = [
    "StudySpec",
    "RunConfig",
    "StudyOutcome",
    "StudyProgress",
    "RichStudyProgress",
    "check_runs",
    "plan_runs",
    "run_study",
    "result_rows",
    "default_workers",
]

STORE_NAME = "study.sqlite"


@dataclass(frozen=True)
class StudySpec:
    """What to run. ``None`` means "the preset's default" for every grid axis."""

    benchmark: str = "char-lm"  # registry name
    preset: str | None = None  # preset name (None: the benchmark's default, "small" for char-lm)
    widths: Sequence[int] | None = None  # hidden sizes H
    depths: Sequence[int] | None = None  # recurrence depths (None: the preset's single depth)
    fractions: Sequence[float] | None = None  # fractions of the corpus
    seeds: Sequence[int] | None = None  # seeds
    optimizers: Sequence[str] | None = None  # "sgd" / "adam"
    lrs: Sequence[float] | None = None  # base learning rates (None: the preset's default per optimizer)
    lr_scaling: str | Sequence[str] = "none"  # "none" and/or "inverse-width"
    corpus: str | None = None  # corpus name or path (None: the preset's)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    out_dir: str | Path = Path("studies/char-lm")  # the store is <out_dir>/study.sqlite
    workers: int | None = None  # None: one per CPU core on CPU (capped by the runs to do), 1 on CUDA
    overrides: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig fields, e.g. max_steps
    checkpoint_minutes: float | None = 10.0  # within-run checkpoint interval (None: no checkpoints)


@dataclass(frozen=True)
class RunConfig:
    """One planned run: its id (``config_hash(config)``) and its full training configuration."""

    run_id: str
    config: TrainConfig

    @property
    def label(self) -> str:
        c = self.config
        lr = f"{c.optimizer} lr={c.lr:g}" + (" /w" if c.lr_scaling == "inverse-width" else "")
        return f"H={c.width} L={c.depth} f={c.fraction:g} seed={c.seed} {lr}"


@dataclass
class StudyOutcome:
    """What :func:`run_study` did."""

    store_path: Path
    planned: int  # runs in the grid
    skipped: int  # already finished in the store
    completed: dict[str, int]  # status -> runs finished by this invocation
    failed: list[tuple[str, str]]  # (run_id, error) of runs that raised
    interrupted: bool  # stopped by Ctrl-C before the grid was done
    wall_seconds: float
    workers: int


# ---- planning -----------------------------------------------------------------------------------


def _as_tuple(values: Any, name: str) -> tuple:
    if values is None:
        return ()
    if isinstance(values, str | int | float):
        values = (values,)
    values = tuple(values)
    if not values:
        raise InputError(f"{name} must not be empty")
    return values


def plan_runs(spec: StudySpec) -> list[RunConfig]:
    """Every grid point as a validated :class:`RunConfig`, in grid order, duplicates removed."""
    benchmark = get_benchmark(spec.benchmark)
    preset = benchmark.preset(spec.preset)
    device_kind(spec.device)
    minutes = spec.checkpoint_minutes
    if minutes is not None and not (
        isinstance(minutes, int | float)
        and not isinstance(minutes, bool)
        and math.isfinite(minutes)
        and minutes >= 0
    ):
        raise InputError(f"checkpoint_minutes must be a number >= 0 or None, got {minutes!r}")
    overrides = dict(spec.overrides)
    reserved = {
        "benchmark",
        "width",
        "depth",
        "fraction",
        "seed",
        "optimizer",
        "lr",
        "lr_scaling",
        "corpus",
        "device",
    }
    clash = reserved & set(overrides)
    if clash:
        raise InputError(f"set {', '.join(sorted(clash))} through the study's grid, not overrides")

    widths = _as_tuple(spec.widths, "widths") or preset.widths
    depths = _as_tuple(spec.depths, "depths") or (preset.train.get("depth", TrainConfig.depth),)
    fractions = _as_tuple(spec.fractions, "fractions") or preset.fractions
    seeds = _as_tuple(spec.seeds, "seeds") or preset.seeds
    optimizers = _as_tuple(spec.optimizers, "optimizers") or (preset.optimizer,)
    scalings = _as_tuple(spec.lr_scaling, "lr_scaling")
    for optimizer in optimizers:
        if optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    for scaling in scalings:
        if scaling not in LR_SCALINGS:
            raise InputError(f"lr_scaling must be one of {', '.join(LR_SCALINGS)}, got {scaling!r}")
    lrs = _as_tuple(spec.lrs, "lrs")
    corpus = spec.corpus if spec.corpus is not None else preset.train.get("corpus", TrainConfig.corpus)
    if Path(corpus).expanduser().exists():  # a path (it wins over a built-in name, as in load_text):
        # one spelling per file, so that `--corpus my.txt` and `--corpus /abs/my.txt` are the same runs
        corpus = os.path.abspath(os.path.expanduser(corpus))
    device = device_kind(spec.device) if spec.device == "auto" else spec.device

    runs: dict[str, RunConfig] = {}
    for width, depth, fraction, seed, optimizer, scaling in itertools.product(
        widths, depths, fractions, seeds, optimizers, scalings
    ):
        for lr in lrs or (None,):
            config = preset.train_config(
                benchmark.name,
                **{
                    **overrides,
                    "width": width,
                    "depth": depth,
                    "fraction": fraction,
                    "seed": seed,
                    "optimizer": optimizer,
                    "lr": lr,
                    "lr_scaling": scaling,
                    "corpus": corpus,
                    "device": device,
                },
            )
            run_id = config_hash(config)
            runs.setdefault(run_id, RunConfig(run_id, config))
    return list(runs.values())


def check_runs(runs: Sequence[RunConfig]) -> dict[tuple, Any]:
    """Check that every planned run can train on its data (``Benchmark.check_run``): a training split
    too short for one batch, an empty validation split or an absurd width is bad *input*, refused with
    one InputError line naming the run before anything is written — not a column of failed runs.
    Builds each distinct dataset once and returns them, ``{(benchmark, *dataset_key): dataset}``."""
    datasets: dict[tuple, Any] = {}
    for run in runs:
        benchmark = get_benchmark(run.config.benchmark)
        key = (benchmark.name, *benchmark.dataset_key(run.config))
        if key not in datasets:
            datasets[key] = benchmark.load_dataset(run.config)
        try:
            benchmark.check_run(run.config, datasets[key])
        except InputError as exc:
            raise InputError(f"run {run.label}: {exc}") from None
    return datasets


def default_workers(spec: StudySpec, pending: int) -> int:
    """One single-threaded worker per usable core on CPU, one on CUDA; never more than the runs to do."""
    if spec.workers is not None:
        if not (isinstance(spec.workers, int) and spec.workers >= 1):
            raise InputError(f"workers must be a positive integer, got {spec.workers!r}")
        return max(1, min(spec.workers, pending))
    if device_kind(spec.device) == "cuda":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, pending))


# ---- store rows ---------------------------------------------------------------------------------

_TRAVERSAL_COLUMNS = (
    "distance",
    "relative_distance",
    "step_size",
    "grad_norm",
    "path_length",
    "as_angle",
    "ae_angle",
    "ae_paper",
)
_SUMMARY_COLUMNS = (
    "n_params",
    "steps_to_star",
    "distance_init_to_star",
    "path_length_to_star",
    "mean_step_size_to_star",
    "mean_as_to_star",
    "mean_ae_to_star",
    "final_distance",
    "distance_final_to_star",
    "path_length",
    "mean_step_size",
    "mean_grad_norm",
    "mean_as",
    "mean_ae",
    "mean_ae_paper",
    "yin_lhs",
    "yin_rhs",
    "yin_abs_residual",
    "yin_rel_residual",
)


def _config_row(config: TrainConfig, run_id: str) -> dict[str, Any]:
    import json

    return {
        "run_id": run_id,
        "config_json": json.dumps(config.to_dict(), sort_keys=True),
        "benchmark": config.benchmark,
        "width": config.width,
        "depth": config.depth,
        "fraction": config.fraction,
        "seed": config.seed,
        "optimizer": config.optimizer,
        "lr": config.lr,
        "lr_scaling": config.lr_scaling,
    }


def result_rows(result: RunResult) -> tuple[dict, list[tuple[str, int, float]], list[dict], list[dict]]:
    """(runs row, curve rows, traversal rows, summary rows) of a finished run, ready for the store."""
    conv = result.convergence
    run = {
        **_config_row(result.config, result.run_id),
        "n_params": result.n_params,
        "train_tokens": result.train_tokens,
        "status": result.status,
        "stop_reason": result.stop_reason,
        "steps_to_min": conv.steps_to_min,
        "min_bracket_lo": conv.min_bracket[0] if conv.min_bracket else None,
        "min_bracket_hi": conv.min_bracket[1] if conv.min_bracket else None,
        "steps_to_within": conv.steps_to_within,
        "within_bracket_lo": conv.within_bracket[0] if conv.within_bracket else None,
        "within_bracket_hi": conv.within_bracket[1] if conv.within_bracket else None,
        "min_val_loss": conv.min_loss,
        "final_train_loss": result.final_train_loss,
        "steps_done": result.steps_done,
        "device": result.device,
        "wall_seconds": result.wall_seconds,
        "finished_at": _now(),
        "error": result.error,
    }
    curves = [("valid", s, x) for s, x in result.valid_curve] + [
        ("train", s, x) for s, x in result.train_curve
    ]
    traversal = [
        {"step": r["step"], "group_name": r["group"], **{c: r.get(c) for c in _TRAVERSAL_COLUMNS}}
        for r in result.traversal
    ]
    summary = [
        {"group_name": group, **{c: values.get(c) for c in _SUMMARY_COLUMNS}}
        for group, values in result.summary.items()
    ]
    return run, curves, traversal, summary


def _failed_row(run: RunConfig, error: str, wall_seconds: float) -> dict[str, Any]:
    return {
        **_config_row(run.config, run.run_id),
        "status": "failed",
        "device": str(run.config.device),
        "wall_seconds": wall_seconds,
        "finished_at": _now(),
        "error": error,
    }


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# ---- progress -----------------------------------------------------------------------------------


class StudyProgress:
    """Progress sink of a study; the default does nothing. All calls come from the parent process."""

    def start(self, total: int, skipped: int, workers: int) -> None:
        """``total`` runs in the grid, ``skipped`` already in the store."""

    def run_started(self, slot: int, run: RunConfig) -> None:
        """Worker ``slot`` began ``run``."""

    def run_progress(self, slot: int, run: RunConfig, info: RunProgress) -> None:
        """A log or evaluation step of the run on ``slot``."""

    def run_finished(self, slot: int, run: RunConfig, status: str, detail: str) -> None:
        """The run on ``slot`` ended with ``status`` (its row is in the store)."""

    def stop(self) -> None:
        """The study ended (normally or not)."""


class RichStudyProgress(StudyProgress):
    """rich display: overall runs done/total with ETA, and one line per active worker."""

    def __init__(self, console=None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            refresh_per_second=4,
        )
        self._overall = None
        self._slots: dict[int, Any] = {}

    def start(self, total: int, skipped: int, workers: int) -> None:
        self._progress.start()
        info = f"{skipped} already done, {workers} worker{'s' if workers != 1 else ''}"
        self._overall = self._progress.add_task("[bold]runs", total=total, completed=skipped, info=info)

    def run_started(self, slot: int, run: RunConfig) -> None:
        task = self._slots.get(slot)
        description = f"  [{slot}] {run.label}"
        if task is None:
            self._slots[slot] = self._progress.add_task(
                description, total=run.config.max_steps, info="starting"
            )
        else:
            self._progress.reset(task, total=run.config.max_steps, description=description, info="starting")

    def run_progress(self, slot: int, run: RunConfig, info: RunProgress) -> None:
        task = self._slots.get(slot)
        if task is None:
            return
        parts = [f"ep {info.epoch:.1f}"]
        if math.isfinite(info.train_loss):
            parts.append(f"train {info.train_loss:.3f}")
        if info.valid_loss is not None:
            parts.append(f"valid {info.valid_loss:.3f}")
        if info.best_valid is not None:
            parts.append(f"best {info.best_valid:.3f}")
        self._progress.update(task, completed=info.step, info="  ".join(parts))

    def run_finished(self, slot: int, run: RunConfig, status: str, detail: str) -> None:
        if self._overall is not None:
            self._progress.advance(self._overall)
        task = self._slots.get(slot)
        if task is not None:
            self._progress.update(task, info=f"{status} {detail}")
        self._progress.console.log(f"{run.label}: {status} {detail}")

    def stop(self) -> None:
        self._progress.stop()


def _finish_detail(result: RunResult | None) -> str:
    if result is None:
        return ""
    conv = result.convergence
    if conv.steps_to_min is None:
        return f"after {result.steps_done} steps"
    return (
        f"min valid {conv.min_loss:.4f} at step {conv.steps_to_min} (within 1%: {conv.steps_to_within}), "
        f"{result.wall_seconds:.0f}s"
    )


# ---- execution ----------------------------------------------------------------------------------


def _study_metadata(spec: StudySpec, runs: list[RunConfig]) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    benchmark = get_benchmark(spec.benchmark)
    preset = benchmark.preset(spec.preset)
    source = benchmark.describe_source(runs[0].config)
    try:
        overparam_version = version("overparam")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        overparam_version = "unknown"
    return {
        "benchmark": benchmark.name,
        "unit": benchmark.unit,
        "preset": preset.name,
        "preset_description": preset.description,
        "preset_deviations": preset.deviations,
        "corpus": source.get("corpus"),
        "corpus_credit": source.get("credit"),
        "corpus_sha256": source.get("sha256"),
        "created_at": _now(),
        "overparam_version": overparam_version,
        "torch_version": torch.__version__,
        "device_kind": device_kind(spec.device),
        "grid": {
            "widths": sorted({r.config.width for r in runs}),
            "depths": sorted({r.config.depth for r in runs}),
            "fractions": sorted({r.config.fraction for r in runs}),
            "seeds": sorted({r.config.seed for r in runs}),
            "optimizers": sorted({r.config.optimizer for r in runs}),
            "lrs": sorted({r.config.lr for r in runs}),
            "lr_scalings": sorted({r.config.lr_scaling for r in runs}),
        },
    }


def _open_store(path: Path, metadata: dict[str, Any]) -> StudyStore:
    """Create the store, or reopen it after checking that it holds the same benchmark, preset and corpus."""
    if path.exists() and path.stat().st_size > 0:
        with StudyStore.open(path) as existing:
            old = existing.metadata()
        for key in ("benchmark", "preset", "corpus_sha256"):
            if key in old and old[key] != metadata[key]:
                what = "corpus text" if key == "corpus_sha256" else key
                raise InputError(
                    f"{path} holds a study with another {what} ({old[key]!r}); choose another output folder"
                )
        grid = old.get("grid", {})
        metadata = {
            **metadata,
            "grid": {k: sorted(set(v) | set(grid.get(k, []))) for k, v in metadata["grid"].items()},
        }
    return StudyStore.create(path, metadata)


def run_study(
    spec: StudySpec,
    progress: StudyProgress | bool | None = True,
    *,
    on_result: Callable[[RunConfig, RunResult | None], None] | None = None,
) -> StudyOutcome:
    """Plan the grid, skip finished runs, train the rest, store each as it finishes.

    ``progress``: True for the rich display, a :class:`StudyProgress` for your own, None/False for none.
    Everything is validated (grid, corpus, store compatibility) before the first write.
    """
    started = time.perf_counter()
    runs = plan_runs(spec)
    check_runs(runs)  # loads the corpus: a missing one fails here, before any write
    out_dir = Path(spec.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output folder {out_dir} is a file")
    metadata = _study_metadata(spec, runs)
    store_path = out_dir / STORE_NAME
    store = _open_store(store_path, metadata)
    sink = (
        progress
        if isinstance(progress, StudyProgress)
        else RichStudyProgress()
        if progress
        else StudyProgress()
    )
    try:
        done = store.finished_run_ids()
        pending = [r for r in runs if r.run_id not in done]
        benchmark = get_benchmark(spec.benchmark)
        # Longest runs first (parameters x data as the cost proxy): shortens the tail of a parallel study.
        pending.sort(key=lambda r: -_cost(benchmark, r.config))
        workers = default_workers(spec, len(pending)) if pending else 0
        outcome = StudyOutcome(store_path, len(runs), len(runs) - len(pending), {}, [], False, 0.0, workers)
        checkpoints = out_dir / "checkpoints" if spec.checkpoint_minutes is not None else None
        scratch = out_dir / "scratch"  # tracker snapshot spill files (deleted when each run ends)
        for stale in scratch.glob("overparam-snapshots-*.bin"):  # left by workers of a killed study
            stale.unlink(missing_ok=True)

        def record(
            slot: int, run: RunConfig, result: RunResult | None, error: str | None, wall: float
        ) -> None:
            if result is not None:
                store.write_run(*result_rows(result))
                status = result.status
            else:
                store.write_run(_failed_row(run, error or "unknown error", wall))
                status = "failed"
                outcome.failed.append((run.run_id, error or ""))
            outcome.completed[status] = outcome.completed.get(status, 0) + 1
            sink.run_finished(
                slot, run, status, _finish_detail(result) if result else (error or "").splitlines()[-1]
            )
            if on_result is not None:
                on_result(run, result)

        sink.start(len(runs), outcome.skipped, workers)
        try:
            if not pending:
                pass
            elif workers == 1:
                _run_in_process(pending, checkpoints, spec.checkpoint_minutes, scratch, sink, record)
            else:
                _run_in_workers(pending, workers, checkpoints, spec.checkpoint_minutes, scratch, sink, record)
        except KeyboardInterrupt:
            outcome.interrupted = True
        finally:
            sink.stop()
    finally:
        store.close()
    outcome.wall_seconds = time.perf_counter() - started
    return outcome


def _cost(benchmark, config: TrainConfig) -> float:
    return float(config.width) ** 2 * config.depth * config.fraction


def _checkpoint_policy(
    directory: Path | None, minutes: float | None, run: RunConfig
) -> CheckpointPolicy | None:
    if directory is None or minutes is None:
        return None
    return CheckpointPolicy(directory / f"{run.run_id}.pt", every_seconds=60.0 * minutes)


class _Threads:
    """One intra-op thread while a run trains in this process (same numbers as a worker process)."""

    def __enter__(self) -> None:
        self._saved = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._saved)


def _run_in_process(pending, checkpoints, minutes, scratch, sink: StudyProgress, record) -> None:
    cache = _DatasetCache()
    for run in pending:
        sink.run_started(0, run)
        began = time.perf_counter()
        try:
            with _Threads():
                result = train_run(
                    run.config,
                    cache.get(run.config),
                    progress=lambda info, run=run: sink.run_progress(0, run, info),
                    checkpoint=_checkpoint_policy(checkpoints, minutes, run),
                    scratch_dir=scratch,
                )
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing run is recorded, the study goes on
            record(0, run, None, _describe_exception(exc), time.perf_counter() - began)
            continue
        record(0, run, result, None, time.perf_counter() - began)


def _describe_exception(exc: BaseException) -> str:
    tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]).strip()
    return f"{type(exc).__name__}: {exc}\n{tail}"


class _DatasetCache:
    """Datasets of the last few data configurations (runs of one fraction share one in memory)."""

    def __init__(self, size: int = 2) -> None:
        self._size = size
        self._items: dict[tuple, Any] = {}

    def get(self, config: TrainConfig) -> Any:
        benchmark = get_benchmark(config.benchmark)
        key = (config.benchmark, *benchmark.dataset_key(config))
        if key not in self._items:
            if len(self._items) >= self._size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = benchmark.load_dataset(config)
        return self._items[key]


# ---- worker processes ---------------------------------------------------------------------------


def _worker_main(slot: int, tasks, results, parent_pid: int, checkpoints, minutes, scratch) -> None:
    """Worker loop: take a run, train it single-threaded, send back the result; exit when told or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    torch.set_num_threads(1)
    cache = _DatasetCache()
    results.put(("ready", slot, None, None))

    def orphaned() -> bool:
        return os.getppid() != parent_pid

    while True:
        try:
            run = tasks.get(timeout=1.0)
        except _queue.Empty:
            if orphaned():
                return
            continue
        if run is None:
            return
        results.put(("started", slot, run.run_id, None))
        began = time.perf_counter()

        def report(info: RunProgress, run_id: str = run.run_id) -> None:
            if orphaned():
                os._exit(1)  # the study was killed: nobody will store this run
            results.put(("progress", slot, run_id, info))

        try:
            result = train_run(
                run.config,
                cache.get(run.config),
                progress=report,
                checkpoint=_checkpoint_policy(checkpoints, minutes, run),
                scratch_dir=scratch,
            )
            message = ("done", slot, run.run_id, result)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which records a failed run
            message = ("failed", slot, run.run_id, (_describe_exception(exc), time.perf_counter() - began))
        results.put(message)


def _run_in_workers(
    pending, n_workers: int, checkpoints, minutes, scratch, sink: StudyProgress, record
) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # no forked torch thread pools; same behaviour on every OS
    results = ctx.Queue()
    workers: dict[int, tuple[Any, Any]] = {}
    running: dict[int, RunConfig] = {}
    started_at: dict[int, float] = {}
    ready: set[int] = set()
    todo = list(pending)

    def start_worker(slot: int) -> None:
        tasks = ctx.Queue()
        process = ctx.Process(
            target=_worker_main,
            args=(slot, tasks, results, os.getpid(), checkpoints, minutes, scratch),
            name=f"overparam-worker-{slot}",
            daemon=True,
        )
        process.start()
        workers[slot] = (process, tasks)

    def dispatch(slot: int) -> None:
        if todo:
            run = todo.pop(0)
            running[slot] = run
            started_at[slot] = time.perf_counter()
            workers[slot][1].put(run)
            sink.run_started(slot, run)

    try:
        for slot in range(n_workers):
            start_worker(slot)
            dispatch(slot)
        while running:
            try:
                kind, slot, run_id, payload = results.get(timeout=1.0)
            except _queue.Empty:
                for slot, (process, _) in list(workers.items()):
                    if not process.is_alive() and slot not in ready:
                        raise InputError(
                            f"worker process {slot} exited (code {process.exitcode}) before it could start; "
                            "a script running a study with workers > 1 needs the "
                            "`if __name__ == '__main__':` guard (or use workers=1)"
                        ) from None
                    if not process.is_alive() and slot in running:  # killed (e.g. out of memory)
                        run = running.pop(slot)
                        wall = time.perf_counter() - started_at[slot]
                        record(slot, run, None, f"worker process died (exit code {process.exitcode})", wall)
                        ready.discard(slot)
                        start_worker(slot)
                        dispatch(slot)
                continue
            if kind == "ready":
                ready.add(slot)
                continue
            run = running.get(slot)
            if run is None or run.run_id != run_id:
                continue  # a stale message from a replaced worker
            if kind == "progress":
                sink.run_progress(slot, run, payload)
            elif kind == "done":
                del running[slot]
                record(slot, run, payload, None, payload.wall_seconds)
                dispatch(slot)
            elif kind == "failed":
                del running[slot]
                error, wall = payload
                record(slot, run, None, error, wall)
                dispatch(slot)
        for _, tasks in workers.values():
            tasks.put(None)
        for process, _ in workers.values():
            process.join(timeout=10)
    finally:
        for process, _ in workers.values():
            if process.is_alive():
                process.terminate()
        for process, _ in workers.values():
            process.join(timeout=5)
        results.close()


def effective_lrs(runs: Iterable[RunConfig]) -> dict[str, float]:
    """run_id -> the optimizer's learning rate (after inverse-width scaling)."""
    return {r.run_id: effective_lr(r.config) for r in runs}
