"""``overparam theory lnn``: width-K linear network, closed forms next to a full-weight-space Monte Carlo.

One row per width K = 1..max-width: the contraction ρ = 1 − 2ηKλ, E[D0] in closed form and from Monte
Carlo (mean ± 95% t-interval), the halting time (closed form and MC), the first step, the path length, the
mean angles A_s / A_e, and whether GD converges; then the divergence width, the fastest width and the
power-law exponents of E[D0] against K over the converging widths and of the halting time over the widths
up to the fastest one (past it GD overshoots and the halting time rises again).

Imports are kept light on purpose (the command should answer in well under two seconds): matplotlib is
imported only for ``--plot``; torch never (the theory does not use it).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from overparam_cli.common import atomic_write, check_output_path, write_json
from overparam_cli.main import theory_app

from overparam_theory.errors import InputError

PLOT_SUFFIXES = (".png", ".svg", ".pdf")
DASH = "—"


class InitChoice(StrEnum):
    ball = "ball"
    cube = "cube"
    gaussian = "gaussian"


class LrScalingChoice(StrEnum):
    none = "none"
    inverse_width = "inverse-width"


class SecondLayerInitChoice(StrEnum):
    ones = "ones"
    law = "law"


@dataclass(frozen=True)
class LnnOptions:
    """The validated options of one ``theory lnn`` run."""

    max_width: int
    lr: float
    init: str
    scale: float
    eps: float
    trials: int
    seed: int
    input_dim: int
    data: Path | None
    json: Path | None
    plot: Path | None
    train_second_layer: bool
    second_layer_init: str
    lr_scaling: str
    max_steps: int

    def lr_for(self, width: int) -> float:
        return self.lr / width if self.lr_scaling == "inverse-width" else self.lr

    def as_dict(self) -> dict:
        return {
            "max_width": self.max_width,
            "lr": self.lr,
            "init": self.init,
            "scale": self.scale,
            "eps": self.eps,
            "trials": self.trials,
            "seed": self.seed,
            "input_dim": self.input_dim,
            "data": None if self.data is None else str(self.data),
            "train_second_layer": self.train_second_layer,
            "second_layer_init": self.second_layer_init if self.train_second_layer else None,
            "lr_scaling": self.lr_scaling,
            "max_steps": self.max_steps,
        }


def _positive(name: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def validate(
    *,
    max_width: int,
    lr: float,
    init: str,
    scale: float,
    eps: float,
    trials: int,
    seed: int,
    input_dim: int,
    data: Path | None,
    json_path: Path | None,
    plot: Path | None,
    train_second_layer: bool,
    second_layer_init: str,
    lr_scaling: str,
    max_steps: int,
) -> LnnOptions:
    """Every check that can fail, before any computation or file is touched."""
    if max_width < 1:
        raise InputError(f"--max-width must be an integer >= 1, got {max_width}")
    _positive("--lr", lr)
    _positive("--scale", scale)
    _positive("--eps", eps)
    if eps >= 1:
        raise InputError(f"--eps is a relative tolerance and must be < 1, got {eps}")
    if trials < 1:
        raise InputError(f"--trials must be an integer >= 1, got {trials}")
    if seed < 0:
        raise InputError(f"--seed must be an integer >= 0, got {seed}")
    if input_dim < 1:
        raise InputError(f"--input-dim must be an integer >= 1, got {input_dim}")
    if max_steps < 1:
        raise InputError(f"--max-steps must be an integer >= 1, got {max_steps}")
    if second_layer_init != "ones" and not train_second_layer:
        raise InputError("--second-layer-init only applies with --train-second-layer")
    if json_path is not None:
        json_path = check_output_path(json_path, "--json")
    if plot is not None:
        plot = check_output_path(plot, "--plot", PLOT_SUFFIXES)
    if json_path is not None and plot is not None and json_path.resolve() == plot.resolve():
        raise InputError("--json and --plot name the same file")
    return LnnOptions(
        max_width=max_width,
        lr=lr,
        init=init,
        scale=scale,
        eps=eps,
        trials=trials,
        seed=seed,
        input_dim=input_dim,
        data=data,
        json=json_path,
        plot=plot,
        train_second_layer=train_second_layer,
        second_layer_init=second_layer_init,
        lr_scaling=lr_scaling,
        max_steps=max_steps,
    )


def load_data(options: LnnOptions):
    from overparam_theory.datasets import builtin_dataset, load_csv

    if options.data is None:
        return builtin_dataset(options.input_dim)
    return load_csv(options.data, options.input_dim)


# --------------------------------------------------------------------------------------------------
# computation


def _summary_fields(mc, metric: str, prefix: str) -> dict:
    summary = mc.summary(metric)
    return {f"{prefix}_mean": summary.mean, f"{prefix}_ci": [summary.low, summary.high]}


def closed_forms(data, options: LnnOptions, width: int) -> dict:
    """Closed-form quantities of one width (fixed second layer); None where no closed form applies."""
    from overparam_theory import lnn

    lr = options.lr_for(width)
    dyn = lnn.lnn_dynamics(data, width, lr)
    rates = dyn.rates
    slowest = float(rates[np.argmax(np.abs(rates))])
    row = {
        "rho": slowest,
        "rates": rates.tolist(),
        "converges": bool(dyn.converges),
        "expected_distance": lnn.expected_direct_distance(data, width, options.init, options.scale),
        "paper_distance": lnn.paper_direct_distance(data, width),
        "paper_condition_holds": lnn.paper_condition_holds(data, width, options.init, options.scale),
        "halting_time": None,
        "halting_time_bounds": None,
        "expected_step0": None,
        "expected_path_length": None,
        "mean_as": None,
        "mean_ae": None,
        "mean_ae_printed": None,
    }
    if dyn.converges:
        row["halting_time_bounds"] = list(dyn.halting_time_bounds(options.eps))
    if dyn.is_single_rate:
        row["halting_time"] = dyn.halting_time(options.eps)
        row["expected_step0"] = row["expected_distance"] * dyn.step_factor
        if dyn.converges:
            row["expected_path_length"] = row["expected_distance"] * dyn.path_length(1.0, options.eps)
            angles = dyn.mean_angles(options.eps)
            row["mean_as"], row["mean_ae"], row["mean_ae_printed"] = (
                angles["A_s"],
                angles["A_e"],
                angles["paper_A_e"],
            )
    return row


def monte_carlo_fields(mc) -> dict:
    from overparam_theory.montecarlo import CONVERGED, DIVERGED, NOT_CONVERGED

    row = {
        "mc_converged_fraction": mc.count(CONVERGED) / mc.n_trials,
        "mc_diverged_fraction": mc.count(DIVERGED) / mc.n_trials,
        "mc_not_converged_fraction": mc.count(NOT_CONVERGED) / mc.n_trials,
    }
    for metric, prefix in (
        ("distance", "mc_distance"),
        ("halting_time", "mc_halting_time"),
        ("first_step", "mc_step0"),
        ("path_length", "mc_path_length"),
        ("mean_step", "mc_mean_step"),
        ("mean_as", "mc_as"),
        ("mean_ae", "mc_ae"),
        ("mean_ae_printed", "mc_ae_printed"),
    ):
        row.update(_summary_fields(mc, metric, prefix))
    return row


def _fit_exponent(widths: list[int], values: list) -> float | None:
    """``k`` of ``value ≈ a K^(−k)`` (log-log least squares) over the finite positive values; None if < 2."""
    from overparam_theory.powerlaw import fit_power_law

    points = [
        (w, v) for w, v in zip(widths, values, strict=True) if v is not None and math.isfinite(v) and v > 0
    ]
    if len({w for w, _ in points}) < 2:
        return None
    fit = fit_power_law([w for w, _ in points], [v for _, v in points], offset=False)
    return fit.k


def _last_fastest_width(converging: list[dict], options: LnnOptions) -> int:
    """The largest converging width whose contraction is the smallest (the end of the monotone branch).

    Fixed second layer: the contraction ``max_j |rho_j|`` is convex in K, so the halting time does not
    increase up to its minimiser; ties (``lr_scaling = inverse-width``: every width) extend the branch.
    Trainable second layer (no closed form): the Monte Carlo mean halting time plays that role.
    """
    if not converging:
        return 0
    if options.train_second_layer:
        values = [r["mc_halting_time_mean"] for r in converging]
        values = [v if v is not None and math.isfinite(v) else math.inf for v in values]
    else:
        values = [max(abs(rate) for rate in r["rates"]) for r in converging]
    best = min(values)
    return max(r["width"] for r, v in zip(converging, values, strict=True) if v <= best * (1 + 1e-12))


def compute(options: LnnOptions, data, progress=None):
    """Closed forms and Monte Carlo for every width: ``(payload, mc_result)``.

    ``payload`` is what ``--json`` writes (and the table shows); ``mc_result`` the per-trial Monte Carlo
    (:class:`overparam_theory.montecarlo.MonteCarloResult`), used by the plot.
    """
    from overparam_theory import lnn
    from overparam_theory.montecarlo import run_monte_carlo

    widths = list(range(1, options.max_width + 1))
    mc_result = run_monte_carlo(
        data,
        widths,
        lr=options.lr,
        init=options.init,
        scale=options.scale,
        n_trials=options.trials,
        seed=options.seed,
        eps=options.eps,
        lr_scaling=options.lr_scaling,
        train_second_layer=options.train_second_layer,
        second_layer_init=options.second_layer_init,
        max_steps=options.max_steps,
        progress=progress,
    )
    rows = []
    for width in widths:
        mc = mc_result[width]
        row = {"width": width, "lr": options.lr_for(width)}
        if options.train_second_layer:
            row.update(
                {
                    key: None
                    for key in (
                        "rho",
                        "rates",
                        "expected_distance",
                        "paper_distance",
                        "paper_condition_holds",
                        "halting_time",
                        "halting_time_bounds",
                        "expected_step0",
                        "expected_path_length",
                        "mean_as",
                        "mean_ae",
                        "mean_ae_printed",
                    )
                }
            )
            row["converges"] = mc.converges
        else:
            row.update(closed_forms(data, options, width))
        row.update(monte_carlo_fields(mc))
        rows.append(row)

    converging = [r for r in rows if r["converges"]]
    if options.train_second_layer:
        # no closed form: from the simulation, among the widths run
        failing = [r["width"] for r in rows if not r["converges"]]
        divergence = failing[0] if failing else None
        candidates = [(r["mc_halting_time_mean"], r["width"]) for r in converging]
        candidates = [c for c in candidates if c[0] is not None and math.isfinite(c[0])]
        fastest = min(candidates)[1] if candidates else None
    elif options.lr_scaling == "inverse-width":
        # lr K is the same for every width: either all converge or none does
        divergence = None if rows[0]["converges"] else 1
        fastest = 1 if rows[0]["converges"] else None
    else:
        divergence = lnn.divergence_width(data, options.lr)
        fastest = lnn.fastest_width(data, options.lr, options.max_width)

    theory_halting = "mc_halting_time_mean" if options.train_second_layer else "halting_time"
    if not options.train_second_layer and not all(r["halting_time"] is not None for r in converging):
        theory_halting = "mc_halting_time_mean"  # multi-rate data: the halting time depends on the init
    conv_widths = [r["width"] for r in converging]
    # "Wider converges faster" holds only up to the fastest width; past it GD overshoots and the halting
    # time rises again, so a power law over all converging widths mixes the two branches (on the built-in
    # data it gives a meaningless k = -0.46). The exponent is fitted over the monotone branch.
    monotone = [r for r in converging if r["width"] <= _last_fastest_width(converging, options)]
    mono_widths = [r["width"] for r in monotone]
    exponents = {
        "expected_distance": None
        if options.train_second_layer
        else _fit_exponent(conv_widths, [r["expected_distance"] for r in converging]),
        "mc_distance": _fit_exponent(conv_widths, [r["mc_distance_mean"] for r in converging]),
        "fitted_widths": conv_widths,
        "halting_time": _fit_exponent(mono_widths, [r[theory_halting] for r in monotone]),
        "mc_halting_time": _fit_exponent(mono_widths, [r["mc_halting_time_mean"] for r in monotone]),
        "halting_time_fitted_widths": mono_widths,
        "halting_time_all_converging": _fit_exponent(conv_widths, [r[theory_halting] for r in converging]),
        "mc_halting_time_all_converging": _fit_exponent(
            conv_widths, [r["mc_halting_time_mean"] for r in converging]
        ),
        "form": "value ≈ a·K^(−k), least squares in log space; the number is k. Distances over all "
        "converging widths (fitted_widths); halting times over the widths up to the fastest one "
        "(halting_time_fitted_widths), where wider converges faster; *_all_converging: over every "
        "converging width (not a power law when the fastest width lies inside)",
    }
    mini = lnn.minimiser(data)
    data_info = {
        "name": data.name,
        "n": data.n,
        "input_dim": data.input_dim,
        "eigenvalues": mini.eigenvalues.tolist(),
        "v_star": mini.v_star.tolist(),
    }
    if data.is_scalar:
        data_info.update({"C": mini.C, "m2": float(mini.eigenvalues[0])})
    payload = {
        "options": options.as_dict(),
        "data": data_info,
        "conventions": {
            "loss": "F = (1/n) Σ (ŷ − y)², GD W ← W − lr ∇F",
            "network": "ŷ = aᵀWx with a = 1 fixed"
            + (" (here a is trained)" if options.train_second_layer else ""),
            "halting_time": "first t with dist(W_t, minimiser set) ≤ eps·dist(W_0, set)"
            if not options.train_second_layer
            else "first t with √((F_t − F*)/(F_0 − F*)) ≤ eps",
            "rho": "1 − 2·lr·K·λ for the slowest mode (largest |ρ|)",
            "ci": "mean ± t(0.975, n−1)·s/√n over the converged trials",
            "angles": "radians, averaged over t = 1..T−1",
        },
        "widths": rows,
        "divergence_width": divergence,
        "fastest_width": fastest,
        "exponents": exponents,
    }
    return payload, mc_result


# --------------------------------------------------------------------------------------------------
# output


def _num(value, digits: int = 4) -> str:
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return DASH
    return f"{value:.{digits}g}"


def _pm(mean, ci, digits: int = 4) -> str:
    if mean is None or not math.isfinite(mean):
        return DASH
    low, high = ci
    if low is None or not math.isfinite(low):
        return _num(mean, digits)
    half = (high - low) / 2
    return f"{mean:.{digits}g} ± {half:.2g}"


def _angle(value) -> str:
    if value is None or not math.isfinite(value):
        return DASH
    return f"{value / math.pi:.3f}π"


def render(payload: dict, options: LnnOptions) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=170)
    data = payload["data"]
    title = (
        f"Width-K linear network on {data['name']} (n={data['n']}, d={data['input_dim']}): "
        f"lr={options.lr:g}{' / K' if options.lr_scaling == 'inverse-width' else ''}, "
        f"init {options.init}({options.scale:g}), eps={options.eps:g}, {options.trials} trials, "
        f"seed {options.seed}"
    )
    if options.train_second_layer:
        title += (
            f" — TRAINABLE second layer (init {options.second_layer_init}): Monte Carlo only, no closed form"
        )
    table = Table(title=title, title_justify="left", header_style="bold")
    for name, justify in (
        ("K", "right"),
        ("ρ", "right"),
        ("E[D0]", "right"),
        ("MC D0 ±95%", "right"),
        ("T", "right"),
        ("MC T ±95%", "right"),
        ("E‖Δ0‖", "right"),
        ("MC ‖Δ0‖", "right"),
        ("MC path ±95%", "right"),
        ("MC As", "right"),
        ("MC Ae", "right"),
        ("converges", "center"),
    ):
        table.add_column(name, justify=justify)
    for row in payload["widths"]:
        if row["halting_time"] is None and row["halting_time_bounds"] is not None:
            low, high = row["halting_time_bounds"]
            theory_t = f"{low}–{high}"
        else:
            theory_t = _num(row["halting_time"])
        converged = row["mc_converged_fraction"]
        status = "yes" if row["converges"] else "no"
        if row["mc_diverged_fraction"] > 0:
            status += f" ({row['mc_diverged_fraction']:.0%} diverged)"
        elif row["mc_not_converged_fraction"] > 0:
            status += f" ({row['mc_not_converged_fraction']:.0%} hit the step cap)"
        elif converged < 1:
            status += f" ({converged:.0%})"
        table.add_row(
            str(row["width"]),
            _num(row["rho"]),
            _num(row["expected_distance"]),
            _pm(row["mc_distance_mean"], row["mc_distance_ci"]),
            theory_t,
            _pm(row["mc_halting_time_mean"], row["mc_halting_time_ci"], 5),
            _num(row["expected_step0"]),
            _pm(row["mc_step0_mean"], row["mc_step0_ci"]),
            _pm(row["mc_path_length_mean"], row["mc_path_length_ci"]),
            _angle(row["mc_as_mean"]),
            _angle(row["mc_ae_mean"]),
            status,
        )
    console.print(table)
    exponents = payload["exponents"]
    divergence = payload["divergence_width"]
    lines = [
        "divergence width (smallest K that does not converge): "
        + (str(divergence) if divergence is not None else "none")
        + (" (from the simulation)" if options.train_second_layer else ""),
        "fastest width: "
        + (str(payload["fastest_width"]) if payload["fastest_width"] is not None else "none")
        + (
            " (every width ties: lr·K, hence ρ, is the same)" if options.lr_scaling == "inverse-width" else ""
        ),
        "distance exponents over the converging widths "
        f"{exponents['fitted_widths']} (value ≈ a·K^−k, the number is k): "
        f"E[D0] k={_num(exponents['expected_distance'], 3)}, MC D0 k={_num(exponents['mc_distance'], 3)}",
        "halting-time exponents over the widths up to the fastest "
        f"{exponents['halting_time_fitted_widths']} (the branch where wider converges faster): "
        f"T k={_num(exponents['halting_time'], 3)}, MC T k={_num(exponents['mc_halting_time'], 3)}"
        + (
            "; over all converging widths (T rises again past the fastest width: not a power law): "
            f"T k={_num(exponents['halting_time_all_converging'], 3)}"
            if exponents["halting_time_fitted_widths"] != exponents["fitted_widths"]
            else ""
        ),
        "ρ = 1 − 2·lr·K·λ; D0 = ‖W0 − W_final‖; T = first t with dist ≤ eps·D0 "
        "(trainable: root loss gap); ± = 95% t-interval over converged trials; "
        "angles averaged over t=1..T−1.",
    ]
    for line in lines:
        console.print(line, highlight=False)


def write_plot(path: Path, payload: dict, mc_result, options: LnnOptions) -> None:
    """Distance and halting time against width: closed forms as lines, Monte Carlo as violins + mean ± CI."""
    import matplotlib

    from overparam_theory.montecarlo import CONVERGED

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = payload["widths"]
    widths = np.array([r["width"] for r in rows])
    fig, (ax_d, ax_t) = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    for ax, key, theory_key, label in (
        (ax_d, "mc_distance", "expected_distance", "direct distance $D_0=\\|W_0-W_\\infty\\|$"),
        (ax_t, "mc_halting_time", "halting_time", f"halting time T (steps, eps={options.eps:g})"),
    ):
        metric = "distance" if key == "mc_distance" else "halting_time"
        samples = []
        for w in widths:
            mc = mc_result[int(w)]
            values = getattr(mc, metric)[mc.status == CONVERGED]
            samples.append(values[np.isfinite(values)])
        positions = [
            w for w, s in zip(widths, samples, strict=True) if s is not None and s.size > 1 and np.ptp(s) > 0
        ]
        data = [s for s in samples if s is not None and s.size > 1 and np.ptp(s) > 0]
        if data:
            parts = ax.violinplot(data, positions=positions, widths=0.7, showextrema=False)
            for body in parts["bodies"]:
                body.set_facecolor("#9ecae1")
                body.set_edgecolor("#3182bd")
                body.set_alpha(0.6)
        means = np.array(
            [np.nan if r[f"{key}_mean"] is None else r[f"{key}_mean"] for r in rows], dtype=float
        )
        lows = np.array(
            [np.nan if r[f"{key}_ci"][0] is None else r[f"{key}_ci"][0] for r in rows], dtype=float
        )
        highs = np.array(
            [np.nan if r[f"{key}_ci"][1] is None else r[f"{key}_ci"][1] for r in rows], dtype=float
        )
        ok = np.isfinite(means)
        yerr = np.vstack(
            [
                means - np.where(np.isfinite(lows), lows, means),
                np.where(np.isfinite(highs), highs, means) - means,
            ]
        )
        ax.errorbar(
            widths[ok],
            means[ok],
            yerr=yerr[:, ok],
            fmt="o",
            color="#08519c",
            ms=4,
            capsize=3,
            label="Monte Carlo mean ± 95% CI",
        )
        theory = np.array([np.nan if r[theory_key] is None else r[theory_key] for r in rows], dtype=float)
        if np.isfinite(theory).any():
            ax.plot(widths, theory, "-", color="#d94801", lw=1.8, label="closed form")
        if key == "mc_distance" and not options.train_second_layer:
            paper = np.array([r["paper_distance"] for r in rows], dtype=float)
            ax.plot(widths, paper, "--", color="0.15", lw=1.2, zorder=4, label="paper: $C/\\sqrt{K}$")
        divergence = payload["divergence_width"]
        if divergence is not None and divergence <= widths.max():
            ax.axvspan(divergence - 0.5, widths.max() + 0.5, color="0.85", zorder=0, label="GD diverges")
        ax.set_xlabel("width K")
        ax.set_ylabel(label)
        ax.set_xticks(widths if widths.size <= 16 else None)
        ax.set_xlim(0.4, widths.max() + 0.6)
        if np.isfinite(means).any() and np.nanmin(np.where(means > 0, means, np.nan)) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, frameon=False)
    network = "trainable second layer" if options.train_second_layer else "second layer fixed to ones"
    fig.suptitle(
        f"Width-K linear network ({network}): lr={options.lr:g}"
        f"{'/K' if options.lr_scaling == 'inverse-width' else ''}, init {options.init}({options.scale:g}), "
        f"{options.trials} trials",
        fontsize=10,
    )
    fmt = path.suffix.lower().lstrip(".")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=200))
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# the command


@theory_app.command("lnn")
def lnn_command(
    max_width: Annotated[
        int, typer.Option("--max-width", help="Largest width K; one row per K = 1..max-width.")
    ] = 8,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate η of gradient descent (> 0).")] = 0.1,
    init: Annotated[
        InitChoice,
        typer.Option(
            "--init",
            help="Law of the initial weights W0 in R^(K·d): uniform in the ball of radius R (the paper's), "
            "i.i.d. uniform(−R, R) (cube), or i.i.d. N(0, σ²) (gaussian).",
        ),
    ] = InitChoice.ball,
    scale: Annotated[
        float, typer.Option("--scale", help="Scale of the init law: radius R (ball, cube) or σ (gaussian).")
    ] = 0.5,
    eps: Annotated[
        float,
        typer.Option(
            "--eps", help="Relative halting tolerance: T = first t with dist(W_t, set) ≤ eps·dist(W_0, set)."
        ),
    ] = 1e-3,
    trials: Annotated[int, typer.Option("--trials", help="Monte Carlo initialisations per width.")] = 10_000,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives identical numbers.")
    ] = 0,
    input_dim: Annotated[
        int,
        typer.Option("--input-dim", help="Input dimension d (1: the paper's scalar input; d > 1: ŷ = 1ᵀWx)."),
    ] = 1,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="CSV file with a header row: columns x,y (d = 1) or x1,...,xd,y. Default: the built-in "
            "data set (d = 1: x = 0.5, 1, 1.5, 2 and y = 0.7, 1.0, 1.8, 2.1, so m2 = 1.875 and C = 1.1).",
        ),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json", help="Also write the results as JSON: options, one object per width, exponents."
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Also plot distance and halting time against width (.png, .svg or .pdf)."
        ),
    ] = None,
    train_second_layer: Annotated[
        bool,
        typer.Option(
            "--train-second-layer",
            help="Train the second layer a too (ŷ = aᵀWx). Monte Carlo only (closed-form columns show —); "
            "the halting time then uses the root loss gap √((F_t − F*)/(F_0 − F*)) ≤ eps.",
        ),
    ] = False,
    second_layer_init: Annotated[
        SecondLayerInitChoice,
        typer.Option(
            "--second-layer-init",
            help="With --train-second-layer: a starts at ones, or is drawn from the init law (scale) in R^K.",
        ),
    ] = SecondLayerInitChoice.ones,
    lr_scaling: Annotated[
        LrScalingChoice,
        typer.Option(
            "--lr-scaling",
            help="inverse-width: η = lr/K, so ρ and the halting time no longer depend on the width.",
        ),
    ] = LrScalingChoice.none,
    max_steps: Annotated[
        int,
        typer.Option(
            "--max-steps", help="Step cap per trial; a trial still running is 'not converged within cap'."
        ),
    ] = 10_000,
) -> None:
    """Width-K linear network (paper, Appendix B): closed forms vs a full-weight-space Monte Carlo.

    Loss F(W) = (1/n) Σ (ŷ − y)², gradient descent W ← W − lr·∇F, network ŷ = 1ᵀWx. For each width the
    table shows the contraction ρ = 1 − 2·lr·K·λ, the expected direct distance E[D0] from the init to the
    minimiser set, the halting time T, the first step, the path length, the mean angles A_s and A_e (fractions
    of π) and whether GD converges (|ρ| < 1), with Monte Carlo means ± 95% t-intervals.
    """
    options = validate(
        max_width=max_width,
        lr=lr,
        init=init.value,
        scale=scale,
        eps=eps,
        trials=trials,
        seed=seed,
        input_dim=input_dim,
        data=data,
        json_path=json_path,
        plot=plot,
        train_second_layer=train_second_layer,
        second_layer_init=second_layer_init.value,
        lr_scaling=lr_scaling.value,
        max_steps=max_steps,
    )
    dataset = load_data(options)
    payload, mc_result = _compute_with_progress(options, dataset)
    render(payload, options)
    if options.json is not None:
        write_json(options.json, payload)
    if options.plot is not None:
        write_plot(options.plot, payload, mc_result, options)


def _compute_with_progress(options: LnnOptions, dataset):
    """``compute`` with a transient progress bar on stderr when stderr is a terminal."""
    if not sys.stderr.isatty():
        return compute(options, dataset)
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("Monte Carlo over widths", total=options.max_width)
        return compute(options, dataset, progress=lambda width: bar.advance(task))
