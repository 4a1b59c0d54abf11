"""Synthetic study stores with planted laws, for testing the analysis, the figures and the report.

Every number is generated from a known law plus seeded multiplicative noise, so a test can check that the
analysis recovers the planted exponent within its confidence interval. The rows go through the real
:class:`~overparam_empirical.store.StudyStore`, so the schema is the one a real study writes.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from overparam_empirical.store import StudyStore

GROUPS = ("embedding", "hidden", "softmax", "all")


def n_params_of(width: int, vocab: int = 60, depth: int = 3, emb: int = 16) -> int:
    """An RHN-like parameter count: embedding + input + micro-layers + softmax."""
    return vocab * emb + 2 * width * emb + depth * (2 * width * width + 2 * width) + vocab * width + vocab


@dataclass
class Plant:
    """The laws to plant. Steps: ``a·M^(−k) + b`` scaled by ``(D/D0)^alpha``; traversal to W*: ``c·width^e``
    (the whole-run quantities get other exponents, so a test can tell which one the analysis used)."""

    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    fractions: tuple[float, ...] = (0.5, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    conditions: tuple[tuple[str, float], ...] = (("sgd", 0.8),)
    a: float = 4.0e5
    k: float = 0.5
    b: float = 200.0
    alpha: float = 1.0
    tokens_full: int = 100_000
    noise: float = 0.05  # log-normal sigma of every planted quantity
    distance_exponent: dict[str, float] = field(
        default_factory=lambda: {"embedding": -0.1, "hidden": -0.2, "softmax": -0.3, "all": -0.15}
    )
    step_exponent: dict[str, float] = field(
        default_factory=lambda: {"embedding": 0.05, "hidden": 0.21, "softmax": 0.5, "all": 0.3}
    )
    as_over_pi: float = 0.5
    k_by_condition: dict[tuple[str, float], float] = field(default_factory=dict)
    a_by_condition: dict[tuple[str, float], float] = field(default_factory=dict)
    statuses: dict[tuple[int, int], str] = field(default_factory=dict)  # (width, seed) -> status
    track_steps: int = 6


def run_id_of(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def build_store(path: Path, plant: Plant | None = None, rng_seed: int = 0) -> Path:
    """Write a study store at ``path`` (a folder; the file is ``study.sqlite``) following ``plant``."""
    plant = plant or Plant()
    rng = np.random.default_rng(rng_seed)
    path.mkdir(parents=True, exist_ok=True)
    meta = {
        "benchmark": "char-lm",
        "unit": "character",
        "preset": "synthetic",
        "corpus": "planted",
        "credit": "synthetic data",
    }
    with StudyStore.create(path / "study.sqlite", meta) as store:
        for optimizer, lr in plant.conditions:
            k = plant.k_by_condition.get((optimizer, lr), plant.k)
            a = plant.a_by_condition.get((optimizer, lr), plant.a)
            for fraction in plant.fractions:
                tokens = int(plant.tokens_full * fraction)
                for width in plant.widths:
                    m = n_params_of(width)
                    for seed in plant.seeds:
                        _write_run(store, plant, rng, optimizer, lr, a, k, fraction, tokens, width, m, seed)
    return path


def _noisy(rng, value: float, sigma: float) -> float:
    return float(value * math.exp(sigma * rng.standard_normal()))


def _write_run(store, plant, rng, optimizer, lr, a, k, fraction, tokens, width, m, seed) -> None:
    status = plant.statuses.get((width, seed), "converged")
    scale = (tokens / plant.tokens_full) ** plant.alpha
    steps = _noisy(rng, (a * m ** (-k) + plant.b) * scale, plant.noise)
    steps_min = int(round(steps * 1.3))
    steps_within = int(round(steps))
    rid = run_id_of(optimizer, lr, fraction, width, seed)
    run = {
        "run_id": rid,
        "config_json": "{}",
        "benchmark": "char-lm",
        "width": width,
        "depth": 3,
        "fraction": fraction,
        "seed": seed,
        "optimizer": optimizer,
        "lr": lr,
        "lr_scaling": "none",
        "n_params": m,
        "train_tokens": tokens,
        "status": status,
        "steps_to_min": None if status == "diverged" else steps_min,
        "min_bracket_lo": steps_min - 10,
        "min_bracket_hi": steps_min + 10,
        "steps_to_within": None if status == "diverged" else steps_within,
        "within_bracket_lo": steps_within - 10,
        "within_bracket_hi": steps_within + 10,
        "min_val_loss": math.nan
        if status == "diverged"
        else _noisy(rng, 2.0 - 0.1 * math.log10(width), 0.01),
        "final_train_loss": 1.5,
        "steps_done": steps_min + 100,
        "device": "cpu",
        "wall_seconds": 0.01 * width,
        "finished_at": "2024-01-01T00:00:00",
    }
    curve_steps = np.unique(np.linspace(0, steps_min + 100, 12).astype(int))
    curves = [("valid", int(t), 4.0 / (1 + t / max(steps_min, 1)) + 1.0) for t in curve_steps]
    curves += [("train", int(t), 4.0 / (1 + t / max(steps_min, 1)) + 0.9) for t in curve_steps]
    summary, traversal = [], []
    for group in GROUPS:
        distance = _noisy(rng, 30.0 * width ** plant.distance_exponent[group], plant.noise)
        step = _noisy(rng, 0.02 * width ** plant.step_exponent[group], plant.noise)
        as_angle = math.pi * plant.as_over_pi * math.exp(0.01 * rng.standard_normal())
        summary.append(
            {
                "group_name": group,
                "n_params": m,
                "steps_to_star": steps_min,
                "distance_init_to_star": distance,
                "path_length_to_star": distance * 5,
                "mean_step_size_to_star": step,
                "mean_as_to_star": as_angle,
                "mean_ae_to_star": math.pi - as_angle,
                # the whole run goes on past W*: a little farther, with other (unplanted) exponents
                "final_distance": distance * 1.2 * width**0.1,
                "distance_final_to_star": distance * 0.3,
                "path_length": distance * 6,
                "mean_step_size": step * 0.8,
                "mean_grad_norm": step / lr,
                "mean_as": as_angle * 1.01,
                "mean_ae": math.pi - as_angle,
                "mean_ae_paper": math.pi - as_angle,
                "yin_lhs": 1.0,
                "yin_rhs": 1.0 + 1e-12,
                "yin_abs_residual": 1e-12,
                "yin_rel_residual": 1e-12,
            }
        )
        for i, t in enumerate(np.unique(np.geomspace(1, steps_min, plant.track_steps).astype(int))):
            frac = (i + 1) / plant.track_steps
            traversal.append(
                {
                    "step": int(t),
                    "group_name": group,
                    "distance": distance * frac,
                    "relative_distance": frac,
                    "step_size": step,
                    "grad_norm": step / lr,
                    "path_length": distance * 5 * frac,
                    "as_angle": as_angle,
                    "ae_angle": math.pi - as_angle,
                    "ae_paper": math.pi - as_angle,
                }
            )
    if status == "diverged":
        traversal, summary = [], []
    store.write_run(run, curves=curves, traversal=traversal, summary=summary)
