"""What a benchmark is: data + model + loss + optimizer defaults + presets, behind one small interface.

The training loop (:mod:`overparam_empirical.train`) and the study runner only talk to this interface,
so a new benchmark (word LM, speech) is one new module registered in ``benchmarks/__init__.py``:

* :meth:`Benchmark.load_dataset` — the dataset of a run (train / valid split of a fraction of a corpus);
* :meth:`Benchmark.build_model` — the width-parameterised ``nn.Module`` (seeded by the caller);
* :meth:`Benchmark.train_stream` — an endless, resumable stream of training batches (epoch after epoch);
* :meth:`Benchmark.eval_batches` — one deterministic pass over the validation split;
* :meth:`Benchmark.loss` — ``(mean loss, number of targets, carry)`` of one batch; ``carry`` is the
  recurrent state handed from window to window (stateful truncated BPTT; the loop detaches it).

Keeping model construction, the loss of a batch and the optimizer step separate is what lets a later
trainer stack several seeds of one configuration into one batched model (see docs/training.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from overparam_theory.errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from overparam_empirical.train import TrainConfig

__all__ = ["MAX_PARAMETERS", "Batch", "BatchStream", "Benchmark", "Preset"]

# Larger models are refused up front: 1e10 float32 weights are 40 GB before gradients and optimizer state.
MAX_PARAMETERS = 10**10


class Batch:
    """A batch the loop can move to a device. Subclasses hold tensors; ``reset`` starts a new carry."""

    reset: bool = False

    def to(self, device: torch.device) -> Batch:  # pragma: no cover - interface
        raise NotImplementedError


class BatchStream(Iterator[Batch]):
    """Endless training batches with a resumable position (for within-run checkpoints)."""

    def state_dict(self) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def epoch(self) -> float:  # pragma: no cover - interface
        """Passes over the training split so far (fractional)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Preset:
    """A named set of defaults: the study grid plus the :class:`TrainConfig` values of every run."""

    name: str  # "small" (CPU default) or "paper" (Appendix A, for a GPU)
    description: str  # one line for --help and the study metadata
    widths: tuple[int, ...]  # default grid: hidden sizes H (the knob)
    fractions: tuple[float, ...]  # default grid: fractions of the corpus used for training
    seeds: tuple[int, ...]  # default grid: seeds (initialisation and data order)
    optimizer: str  # default optimizer, "sgd" or "adam"
    lrs: Mapping[str, float]  # default base learning rate per optimizer
    train: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig fields set by this preset
    deviations: str = ""  # how this preset departs from the paper (printed with the study)

    def train_config(self, benchmark: str, **values: Any) -> TrainConfig:
        """A :class:`TrainConfig` with this preset's values, then ``values`` (which win)."""
        from overparam_empirical.train import TrainConfig

        known = {f.name for f in fields(TrainConfig)}
        unknown = (set(self.train) | set(values)) - known
        if unknown:
            raise InputError(f"unknown training settings: {', '.join(sorted(unknown))}")
        merged: dict[str, Any] = {"benchmark": benchmark, "optimizer": self.optimizer}
        merged.update(self.train)
        merged.update(values)
        if "lr" not in values or values["lr"] is None:
            optimizer = merged["optimizer"]
            if optimizer not in self.lrs:
                raise InputError(
                    f"preset {self.name!r} has no default learning rate for optimizer {optimizer!r}"
                )
            merged["lr"] = self.lrs[optimizer]
        return TrainConfig(**merged)

    def with_train(self, **values: Any) -> Preset:
        return replace(self, train={**self.train, **values})


class Benchmark(ABC):
    """Binds a data source, a model family, a loss and presets. Subclasses set the class attributes."""

    name: str = ""  # registry key, e.g. "char-lm"
    description: str = ""  # one line
    unit: str = "token"  # what the loss is averaged over and D counts (figures: "nats / <unit>")
    presets: Mapping[str, Preset] = {}
    default_preset: str = "small"

    def preset(self, name: str | None = None) -> Preset:
        name = self.default_preset if name is None else name
        if name not in self.presets:
            raise InputError(
                f"benchmark {self.name!r} has no preset {name!r}; choose from {', '.join(self.presets)}"
            )
        return self.presets[name]

    # ---- data ----------------------------------------------------------------------------------

    @abstractmethod
    def load_dataset(self, config: TrainConfig) -> Any:
        """The dataset of a run (depends only on the fields named by :meth:`dataset_key`)."""

    @abstractmethod
    def dataset_key(self, config: TrainConfig) -> tuple:
        """The config fields that determine the dataset (runs sharing it can share one in memory)."""

    @abstractmethod
    def describe_source(self, config: TrainConfig) -> dict[str, Any]:
        """Metadata of the corpus: ``{"corpus": name, "credit": licence / credit line, "sha256": ...}``."""

    @abstractmethod
    def train_tokens(self, dataset: Any) -> int:
        """Size of the training split (tokens / samples), for epochs and the dataset-size law."""

    @abstractmethod
    def train_stream(self, dataset: Any, config: TrainConfig) -> BatchStream:
        """Endless training batches; the order depends on ``config.seed`` only."""

    @abstractmethod
    def eval_batches(self, dataset: Any, config: TrainConfig) -> Iterable[Batch]:
        """One deterministic pass over (the first ``config.eval_windows`` windows of) the validation split."""

    # ---- model and loss --------------------------------------------------------------------------

    @abstractmethod
    def build_model(self, config: TrainConfig, dataset: Any) -> nn.Module:
        """The model at ``config.width`` (the caller seeds torch before calling)."""

    @abstractmethod
    def parameter_count(self, config: TrainConfig, dataset: Any) -> int:
        """Exact parameter count of :meth:`build_model` without building it."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch, carry: Any) -> tuple[torch.Tensor, int, Any]:
        """``(mean loss over the targets, number of targets, new carry)``; ``carry=None`` starts fresh."""

    # ---- validation before a study writes anything ------------------------------------------------

    def check_run(self, config: TrainConfig, dataset: Any) -> None:
        """Raise InputError when ``config`` cannot train on ``dataset``: a model too large to build, a
        training split too short for one batch, an empty validation split. Builds no model; cheap."""
        n_params = self.parameter_count(config, dataset)
        if n_params > MAX_PARAMETERS:
            raise InputError(
                f"width {config.width} gives {n_params:.3g} parameters, more than {MAX_PARAMETERS:.0e} "
                f"({4 * n_params / 1e9:.3g} GB of float32 weights alone)"
            )
        self.train_stream(dataset, config)  # the stream checks that the training split fills one batch
        if next(iter(self.eval_batches(dataset, config)), None) is None:
            raise InputError("the validation split is empty; use a larger fraction or valid_fraction")
