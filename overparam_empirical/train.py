"""One training run: the loop, time-to-convergence, divergence, the traversal tracker, W*.

The loop (``train_run``) in words::

    seed everything from config.seed; build dataset, model, optimizer, tracker, early stopping
    evaluate at step 0
    for step = 1 .. max_steps:
        loss, carry = benchmark.loss(model, next batch, carry);  carry = carry.detach()   # stateful TBPTT
        zero grads; loss.backward(); clip (optional); optimizer.step(); tracker.step()
        every log_every steps: one host sync -> train-loss curve, NaN check, progress callback
        every eval_every steps: validation loss -> curve, keep W* at the minimum, early stopping
    tracker.finalize(w_star=W*) -> traversal records, summary, Yin identity per group
    analyze_curve(valid curve) -> steps to min, steps to within 1 %, brackets

Status: ``converged`` (early stopping saw the minimum clearly pass), ``capped`` (``max_steps`` reached
first; the convergence numbers are still reported but are lower bounds at best), ``diverged`` (a
non-finite train or validation loss; the run stops and keeps what it measured). Exceptions are not
caught here (the study records them as ``failed``).

On CUDA the loop is the same: tensors live on ``config.device``; the only host synchronisations are on
log and evaluation steps (``.item()`` of accumulated losses), never per step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from overparam_empirical.convergence import Convergence, EarlyStopping, analyze_curve
from overparam_empirical.tracker.metrics import path_mean
from overparam_theory.errors import InputError
from overparam_theory.files import atomic_write

__all__ = [
    "OPTIMIZERS",
    "LR_SCALINGS",
    "TrainConfig",
    "RunProgress",
    "RunResult",
    "CheckpointPolicy",
    "config_hash",
    "effective_lr",
    "make_optimizer",
    "resolve_device",
    "train_run",
]

OPTIMIZERS = ("sgd", "adam")
CHECKPOINT_FORMAT = 2  # bump when the checkpointed state changes (2: + star_path)
LR_SCALINGS = ("none", "inverse-width")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the numbers of one run (hashed into its run id, see config_hash)."""

    # --- what is trained ---
    benchmark: str = "char-lm"  # registry name: data source, model family, loss
    corpus: str = "shakespeare"  # built-in corpus name or a path (see overparam_empirical.data)
    fraction: float = 1.0  # fraction of the corpus used (0 < f <= 1); the paper's dataset-size axis
    valid_fraction: float = 0.1  # share of the used text held out for validation
    data_seed: int = 0  # seed of the data split (fixed across seeds: every seed sees the same data)
    width: int = 128  # hidden size H, the knob of the study; embedding size = H (Appendix A)
    depth: int = 10  # RHN recurrence depth (micro-layers per time step); the paper: 10
    seq_len: int = 150  # truncated-BPTT window in time steps; the paper: 150
    batch_size: int = 128  # parallel streams per step; the paper: 128
    # --- optimisation ---
    optimizer: str = "sgd"  # "sgd" (the paper's baseline) or "adam"
    lr: float = 0.8  # base learning rate; the paper: 0.8 for the char LM with SGD
    lr_scaling: str = "none"  # "none" or "inverse-width": lr_eff = lr * lr_reference_width / width
    lr_reference_width: int = 128  # width at which lr_eff == lr under inverse-width scaling
    momentum: float = 0.0  # SGD momentum; 0 is the paper's vanilla SGD (ignored by adam)
    grad_clip: float | None = None  # max global gradient norm (None: no clipping)
    # --- schedule and stopping ---
    max_steps: int = 100_000  # step cap; a run that reaches it without a clear minimum is "capped"
    eval_every: int = 500  # optimizer steps between validation evaluations (also at step 0)
    eval_windows: int | None = None  # validation windows per evaluation (None: the whole split)
    log_every: int = 50  # steps between train-loss points / NaN checks / progress (one host sync each)
    patience: int = 5  # evaluations without a significant improvement before stopping
    min_delta: float = 0.002  # relative improvement counted as significant by early stopping
    min_gap: float = 0.02  # patience stops a run only once valid exceeds train loss by this (relative) ...
    stall_factor: int = 3  # ... or after stall_factor x patience evaluations without improvement
    within: float = 0.01  # tolerance of "steps to within x of the minimum"; the paper: 1 %
    diverge_factor: float = 100.0  # a loss above this multiple of the step-0 validation loss is divergence
    # --- reproducibility and measurement ---
    seed: int = 0  # seeds torch (initialisation), numpy and Python (data order)
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda" or "cuda:N"
    track: str = "log:20"  # tracker schedule: "every:N" or "log:N" (N tracked steps per decade)
    ae_method: str = "snapshots"  # exact Ae from stored snapshots, "reference" or "none"

    def __post_init__(self) -> None:
        _check(
            isinstance(self.benchmark, str) and self.benchmark,
            f"benchmark must be a name, got {self.benchmark!r}",
        )
        _check(
            isinstance(self.corpus, str) and self.corpus,
            f"corpus must be a name or path, got {self.corpus!r}",
        )
        _check(
            _is_number(self.fraction) and 0 < self.fraction <= 1,
            f"fraction must be in (0, 1], got {self.fraction!r}",
        )
        _check(
            _is_number(self.valid_fraction) and 0 < self.valid_fraction < 1,
            f"valid_fraction must be in (0, 1), got {self.valid_fraction!r}",
        )
        for name in (
            "width",
            "depth",
            "seq_len",
            "batch_size",
            "max_steps",
            "eval_every",
            "log_every",
            "patience",
            "stall_factor",
        ):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        for name in ("data_seed", "seed"):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 0, f"{name} must be a non-negative integer, got {value!r}")
        _check(
            _is_int(self.lr_reference_width) and self.lr_reference_width >= 1,
            "lr_reference_width must be >= 1",
        )
        _check(
            self.eval_windows is None or (_is_int(self.eval_windows) and self.eval_windows >= 1),
            f"eval_windows must be a positive integer or None, got {self.eval_windows!r}",
        )
        _check(
            self.optimizer in OPTIMIZERS,
            f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}",
        )
        _check(
            self.lr_scaling in LR_SCALINGS,
            f"lr_scaling must be one of {', '.join(LR_SCALINGS)}, got {self.lr_scaling!r}",
        )
        _check(
            _is_number(self.lr) and self.lr > 0 and math.isfinite(self.lr),
            f"lr must be a positive number, got {self.lr!r}",
        )
        _check(
            _is_number(self.momentum) and 0 <= self.momentum < 1,
            f"momentum must be in [0, 1), got {self.momentum!r}",
        )
        _check(
            self.grad_clip is None or (_is_number(self.grad_clip) and self.grad_clip > 0),
            f"grad_clip must be a positive number or None, got {self.grad_clip!r}",
        )
        _check(
            _is_number(self.min_delta) and 0 <= self.min_delta < 1,
            f"min_delta must be in [0, 1), got {self.min_delta!r}",
        )
        _check(
            _is_number(self.min_gap) and 0 <= self.min_gap < 1,
            f"min_gap must be in [0, 1), got {self.min_gap!r}",
        )
        _check(
            _is_number(self.within) and 0 <= self.within < 1, f"within must be in [0, 1), got {self.within!r}"
        )
        _check(
            _is_number(self.diverge_factor) and self.diverge_factor > 1,
            f"diverge_factor must be a number > 1, got {self.diverge_factor!r}",
        )
        _check(
            self.ae_method in ("snapshots", "reference", "none"), f"ae_method is invalid: {self.ae_method!r}"
        )
        device_kind(self.device)  # validates

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise InputError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**values)


def _check(ok: object, message: str) -> None:
    if not ok:
        raise InputError(message)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def device_kind(device: str) -> str:
    """``"cpu"`` or ``"cuda"`` for a device string (``auto`` resolved); InputError for anything else."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        return "cuda"
    raise InputError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")


def resolve_device(device: str) -> torch.device:
    """The torch device of a config; asking for CUDA where there is none is an InputError."""
    kind = device_kind(device)
    if kind == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available")
    return torch.device(
        "cuda" if device == "auto" and kind == "cuda" else device if device != "auto" else "cpu"
    )


def config_hash(config: TrainConfig) -> str:
    """Run id: sha256 of the canonical JSON of every field, with the device reduced to its kind.

    Every field can change the numbers (the tracker settings change the stored traversal rows), so
    all are hashed. CPU and CUDA give different floating-point results, so the device *kind* is part of
    the id; which GPU (``cuda:0`` vs ``cuda:1``) is not. 16 hex digits (64 bits) are plenty per study.
    """
    values = config.to_dict()
    values["device"] = device_kind(config.device)
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def effective_lr(config: TrainConfig) -> float:
    """The optimizer's learning rate: ``lr``, or ``lr * lr_reference_width / width`` (inverse-width).

    With a reference width the base ``lr`` keeps its meaning ("the learning rate at the reference
    width", e.g. the paper's 0.8 at the narrowest model) and scaled and unscaled studies coincide
    there; plain ``lr / width`` would make ``lr`` a number nobody trains with.
    """
    if config.lr_scaling == "inverse-width":
        return config.lr * config.lr_reference_width / config.width
    return config.lr


def make_optimizer(parameters, config: TrainConfig) -> torch.optim.Optimizer:
    lr = effective_lr(config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=config.momentum)
    return torch.optim.Adam(parameters, lr=lr)


@dataclass(frozen=True)
class RunProgress:
    """What a progress callback sees (on log and evaluation steps)."""

    step: int
    max_steps: int
    epoch: float  # passes over the training split so far
    train_loss: float  # mean train loss since the previous log step
    valid_loss: float | None  # latest validation loss (None before the first evaluation)
    best_valid: float | None
    elapsed: float  # seconds
    evaluated: bool  # this call follows an evaluation


@dataclass
class RunResult:
    """Everything one run measured; the study turns it into store rows."""

    config: TrainConfig
    run_id: str
    status: str  # converged | capped | diverged | failed
    stop_reason: str | None  # why early stopping ended a converged run: "patience" (overfitting) or "stall"
    convergence: Convergence
    valid_curve: list[tuple[int, float]]  # (step, validation loss)
    train_curve: list[tuple[int, float]]  # (step, mean train loss since the previous point)
    steps_done: int
    n_params: int
    train_tokens: int
    final_train_loss: float
    wall_seconds: float
    device: str
    traversal: list[dict] = field(default_factory=list)  # tracker.records()
    summary: dict[str, dict] = field(default_factory=dict)  # tracker.summary(): per group, incl. Yin check
    error: str | None = None
    best_state: dict[str, torch.Tensor] | None = None  # W* on CPU (only with keep_best_state=True)


@dataclass(frozen=True)
class CheckpointPolicy:
    """Within-run checkpoints: written atomically at evaluation steps at most every ``every_seconds``."""

    path: Path
    every_seconds: float = 300.0


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _detach(carry: Any) -> Any:
    if carry is None:
        return None
    if isinstance(carry, torch.Tensor):
        return carry.detach()
    if isinstance(carry, tuple | list):
        return type(carry)(_detach(c) for c in carry)
    raise TypeError(f"cannot detach a carry of type {type(carry).__name__}")


@torch.no_grad()
def evaluate(model: torch.nn.Module, benchmark, dataset, config: TrainConfig, device: torch.device) -> float:
    """Mean validation loss per target over one deterministic pass (one host sync at the end)."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    carry = None
    for batch in benchmark.eval_batches(dataset, config):
        batch = batch.to(device)
        if batch.reset:
            carry = None
        loss, n, carry = benchmark.loss(model, batch, carry)
        total += loss.double() * n
        count += n
    model.train(was_training)
    if count == 0:
        raise InputError("the validation split is empty; use a larger fraction or valid_fraction")
    return float(total.item()) / count


def train_run(
    config: TrainConfig,
    dataset: Any = None,
    *,
    benchmark=None,
    progress: Callable[[RunProgress], None] | None = None,
    checkpoint: CheckpointPolicy | None = None,
    keep_best_state: bool = False,
    scratch_dir: str | os.PathLike | None = None,
) -> RunResult:
    """Train one configuration to its minimum validation loss (or the step cap, or divergence).

    ``dataset`` defaults to ``benchmark.load_dataset(config)``; ``benchmark`` defaults to the registry
    entry ``config.benchmark``. ``progress`` is called on log and evaluation steps. With
    ``checkpoint``, the run resumes from the checkpoint file when one exists for this exact config and
    writes one at evaluation steps; the file is removed when the run ends. ``scratch_dir`` is where
    the tracker spills its (W_t, g_t) snapshots once they outgrow memory (default: the temp folder).
    """
    from overparam_empirical.benchmarks import get_benchmark
    from overparam_empirical.tracker import TraversalTracker

    benchmark = benchmark or get_benchmark(config.benchmark)
    device = resolve_device(config.device)
    run_id = config_hash(config)
    if dataset is None:
        dataset = benchmark.load_dataset(config)

    _seed_everything(config.seed)
    model = benchmark.build_model(config, dataset).to(device)
    optimizer = make_optimizer(model.parameters(), config)
    stream = benchmark.train_stream(dataset, config)
    tracker = TraversalTracker(
        model,
        schedule=config.track,
        ae_method=config.ae_method,
        snapshot_dir=scratch_dir if config.ae_method == "snapshots" else None,
    )
    stopper = EarlyStopping(
        patience=config.patience,
        min_delta=config.min_delta,
        min_gap=config.min_gap,
        stall_factor=config.stall_factor,
    )
    n_params = sum(p.numel() for p in model.parameters())
    parameters = [p for p in model.parameters() if p.requires_grad]

    valid_curve: list[tuple[int, float]] = []
    train_curve: list[tuple[int, float]] = []
    best_state: dict[str, torch.Tensor] | None = None
    star_path: dict[str, float] = {}  # per group Σ_{t<s}‖Δ_t‖ at the step s of W* (read when W* is taken)
    train_sum = torch.zeros((), device=device)  # summed on the device: no per-step host sync
    train_count = 0
    step = 0
    elapsed_before = 0.0
    carry = None
    status = None
    last_valid: float | None = None

    # Within-run checkpoints need the tracker's state too; without TraversalTracker.state_dict() they are off.
    resumed = (
        _load_checkpoint(checkpoint, run_id) if checkpoint and hasattr(tracker, "load_state_dict") else None
    )
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        stream.load_state_dict(resumed["stream"])
        tracker.load_state_dict(resumed["tracker"])
        stopper.load_state_dict(resumed["stopper"])
        valid_curve, train_curve = resumed["valid_curve"], resumed["train_curve"]
        best_state, step, elapsed_before = resumed["best_state"], resumed["step"], resumed["elapsed"]
        star_path = resumed["star_path"]
        carry = _to_device(resumed["carry"], device)
        last_valid = valid_curve[-1][1] if valid_curve else None
        _set_rng_state(resumed["rng"])
    started = time.perf_counter()
    last_checkpoint = started

    def report(train_loss: float, evaluated: bool) -> None:
        if progress is not None:
            progress(
                RunProgress(
                    step=step,
                    max_steps=config.max_steps,
                    epoch=stream.epoch,
                    train_loss=train_loss,
                    valid_loss=last_valid,
                    best_valid=None if math.isinf(stopper.best_loss) else stopper.best_loss,
                    elapsed=elapsed_before + time.perf_counter() - started,
                    evaluated=evaluated,
                )
            )

    def run_evaluation(train_loss: float | None) -> bool:
        """Validation loss at ``step``; keeps W*; returns True when training should stop."""
        nonlocal best_state, last_valid, star_path
        loss = evaluate(model, benchmark, dataset, config, device)
        valid_curve.append((step, loss))
        last_valid = loss
        stop = stopper.update(step, loss, train_loss)  # the train loss tells overfitting from a plateau
        if stopper.is_best(step):
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            star_path = _path_lengths(tracker)
        return stop

    def blown(loss: float) -> bool:
        """Divergence: a non-finite loss, or one far above the loss at initialisation."""
        return not math.isfinite(loss) or loss > config.diverge_factor * abs(valid_curve[0][1])

    model.train()
    if resumed is None:
        stop = run_evaluation(None)
        report(math.nan, True)
        if blown(valid_curve[0][1]):
            status, stop = "diverged", True
    else:
        stop = stopper.stopped
    can_checkpoint = checkpoint is not None and hasattr(tracker, "state_dict")
    while not stop and step < config.max_steps:
        batch = next(stream).to(device)
        if batch.reset:
            carry = None
        loss, _, carry = benchmark.loss(model, batch, carry)
        carry = _detach(carry)  # truncated BPTT: the state flows on, its gradient stops here
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
        optimizer.step()
        tracker.step()
        step += 1
        train_sum += loss.detach()
        train_count += 1

        log_now = step % config.log_every == 0 or step % config.eval_every == 0 or step == config.max_steps
        if not log_now:
            continue
        train_loss = float(train_sum.item()) / train_count  # the one host sync of a log step
        train_sum.zero_()
        train_count = 0
        train_curve.append((step, train_loss))
        if blown(train_loss):
            status = "diverged"
            report(train_loss, False)
            break
        evaluated = step % config.eval_every == 0 or step == config.max_steps
        if evaluated:
            stop = run_evaluation(train_loss)
            if blown(valid_curve[-1][1]):
                status, stop = "diverged", True
        report(train_loss, evaluated)
        if (
            evaluated
            and not stop
            and can_checkpoint
            and time.perf_counter() - last_checkpoint >= checkpoint.every_seconds
        ):
            _save_checkpoint(
                checkpoint,
                run_id,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "stream": stream.state_dict(),
                    "tracker": tracker.state_dict(),
                    "stopper": stopper.state_dict(),
                    "valid_curve": valid_curve,
                    "train_curve": train_curve,
                    "best_state": best_state,
                    "star_path": star_path,
                    "step": step,
                    "elapsed": elapsed_before + time.perf_counter() - started,
                    "carry": _to_device(carry, torch.device("cpu")),
                    "rng": _get_rng_state(),
                },
            )
            last_checkpoint = time.perf_counter()

    if status is None:
        status = "converged" if stopper.stopped else "capped"
    if best_state is not None:
        tracker.finalize(w_star=best_state)
        star_step = stopper.best_step
    else:  # diverged before any finite evaluation: no W*; measure against the last weights
        tracker.finalize(w_star={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
        star_step, star_path = step, _path_lengths(tracker)
    records = tracker.records()
    steps, losses = zip(*valid_curve, strict=True) if valid_curve else ((), ())
    convergence = analyze_curve(steps, losses, within=config.within)
    result = RunResult(
        config=config,
        run_id=run_id,
        status=status,
        stop_reason=stopper.reason if status == "converged" else None,
        convergence=convergence,
        valid_curve=valid_curve,
        train_curve=train_curve,
        steps_done=step,
        n_params=n_params,
        train_tokens=benchmark.train_tokens(dataset),
        final_train_loss=train_curve[-1][1] if train_curve else math.nan,
        wall_seconds=elapsed_before + time.perf_counter() - started,
        device=str(device),
        traversal=records,
        summary=summary_to_star(tracker.summary(), records, star_step, star_path),
        best_state=best_state if keep_best_state else None,
    )
    if checkpoint:
        checkpoint.path.unlink(missing_ok=True)
    return result


# ---- the traversal from W_0 to W* ------------------------------------------------------------------


def _path_lengths(tracker) -> dict[str, float]:
    """Per group, the path length Σ_{t<T}‖Δ_t‖ walked so far (T = tracker steps so far)."""
    return {
        group: entry["path_length"] for group, entry in tracker.summary().items() if "path_length" in entry
    }


def summary_to_star(
    summary: dict[str, dict], records: list[dict], star_step: int, star_path: dict[str, float]
) -> dict[str, dict]:
    """The tracker summary plus the traversal quantities of the way from W_0 to W*, per group.

    W* (the minimum-validation-loss weights, the point the paper's Section 4.2 calls "the best model")
    is reached after ``s = star_step`` updates; the run goes on ``patience`` evaluations beyond it, so the
    tracker's own end point W_T and its sums over all T steps describe a longer walk than the one to
    convergence. Added per group:

    * ``steps_to_star`` = s;
    * ``path_length_to_star`` = Σ_{t<s} ‖Δ_t‖ (read from the tracker when W* was taken, every step);
    * ``mean_step_size_to_star`` = that / s (the average step of Yin's identity with T = s);
    * ``mean_as_to_star``, ``mean_ae_to_star`` = per-step averages of As(t), Ae(t) over the updates
      t < s that led to W*, estimated from the tracked steps as the tracker's own means are
      (``tracker.metrics.path_mean``: each defined value weighted by the steps it stands for);

    and the tracker's ``distance_init_to_star`` = ‖W* − W_0‖ is the direct distance of Fig. 6.
    Undefined values are None, as in the tracker's summary.
    """
    out = {}
    for group, entry in summary.items():
        entry = dict(entry)
        if "path_length" in entry:  # a tracked group (entirely frozen groups carry only their names)
            path = star_path.get(group)
            path = math.nan if path is None else float(path)
            before = [r for r in records if r["group"] == group and r["step"] < star_step]
            steps = [r["step"] for r in before]
            mean_as = path_mean(steps, [_nan_if_none(r.get("as_angle")) for r in before], star_step)
            mean_ae = path_mean(steps, [_nan_if_none(r.get("ae_angle")) for r in before], star_step)
            entry.update(
                steps_to_star=star_step,
                path_length_to_star=_finite_or_none(path),
                mean_step_size_to_star=_finite_or_none(path / star_step if star_step else math.nan),
                mean_as_to_star=_finite_or_none(mean_as),
                mean_ae_to_star=_finite_or_none(mean_ae),
            )
        out[group] = entry
    return out


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _finite_or_none(value: float) -> float | None:
    """The tracker's JSON convention: an undefined number is None (so summaries compare with ==)."""
    return value if math.isfinite(value) else None


# ---- within-run checkpoints ---------------------------------------------------------------------


def _get_rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_device(carry: Any, device: torch.device) -> Any:
    if carry is None:
        return None
    if isinstance(carry, torch.Tensor):
        return carry.to(device)
    return type(carry)(_to_device(c, device) for c in carry)


def _save_checkpoint(policy: CheckpointPolicy, run_id: str, state: dict) -> None:
    """temp file + rename: a kill leaves the previous checkpoint or the new one, never a torn file."""
    policy.path.parent.mkdir(parents=True, exist_ok=True)
    saved = {"run_id": run_id, "format": CHECKPOINT_FORMAT, "state": state}
    atomic_write(policy.path, lambda tmp: torch.save(saved, tmp))


def _load_checkpoint(policy: CheckpointPolicy, run_id: str) -> dict | None:
    if not policy.path.is_file():
        return None
    try:
        saved = torch.load(policy.path, map_location="cpu", weights_only=False)
    except Exception:  # a checkpoint we cannot read is only lost time: start the run afresh
        return None
    if not isinstance(saved, dict) or saved.get("run_id") != run_id:
        return None
    if saved.get("format") != CHECKPOINT_FORMAT:  # written by another version of this loop: start afresh
        return None
    return saved["state"]
