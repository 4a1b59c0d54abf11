"""Benchmark: full-weight-space Monte Carlo, vectorised vs a plain per-trial loop; `theory lnn` wall time.

Work (default): 10,000 trials x widths K = 1..64 x 1000 GD steps on the built-in scalar data set, the
fixed-steps mode of :func:`overparam_theory.montecarlo.simulate_width` (no early stop: pass 1 runs exactly
1000 steps to the final iterate, pass 2 re-runs the 1000 steps measuring steps and angles), in float64.
The learning rate is lr0/K with lr0 chosen so that rho = 0.99 for every width: no width reaches rounding
level within 1000 steps, so both implementations see the same well-conditioned geometry and their numbers
can be compared (past convergence, angles are angles between rounding-noise vectors).

The loop does identical work per trial — the same two passes, the same metrics, the same float64 numpy
operations on one trial's (K, d) arrays — in ordinary per-trial code. It runs on a subset of the trials
and is extrapolated linearly in the number of trials (the work per trial is the same for every trial);
its per-trial results are compared with the vectorised run's before any timing is reported.

Then the median wall time of 5 runs of ``overparam theory lnn --max-width 8`` (fresh interpreters).

Last lines: ``RESULT mc_speedup=<ratio>`` and ``RESULT lnn_cli_seconds=<median wall s>``.
Run: ``python benchmarks/bench_montecarlo.py`` (about a minute or two) or ``--quick`` (seconds).
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from overparam_theory.datasets import builtin_dataset
from overparam_theory.init_laws import sample
from overparam_theory.montecarlo import (
    CONVERGED,
    DIVERGED,
    HALTING_TOLERANCE,
    NOT_CONVERGED,
    LossMoments,
    simulate_width,
    width_seed_sequence,
)

RHO = 0.99
EPS = 1e-3


def loop_trial(W0: np.ndarray, moments: LossMoments, lr: float, steps: int) -> dict:
    """One trial (W0 of shape (K, d)), fixed second layer, exactly ``steps`` GD steps, per-trial code."""
    width = W0.shape[0]
    M, c, u_star = moments.second, moments.cross, moments.u_star
    basis = moments.range_basis
    halt_threshold = EPS ** (1.0 - HALTING_TOLERANCE)

    def gradient_and_distance(W):
        u = W.sum(axis=0)
        g = 2.0 * (M @ u - c)
        e = u - u_star
        if basis is not None:
            e = basis.T @ e
        return g, math.sqrt(float(e @ e) / width)

    # pass 1: to the final iterate
    W = W0.copy()
    g, d0 = gradient_and_distance(W)
    halting, status = math.nan, NOT_CONVERGED
    for t in range(steps + 1):
        if t > 0:
            g, d = gradient_and_distance(W)
        else:
            d = d0
        ratio = d / d0 if d0 > 0 else 0.0
        if math.isnan(halting) and ratio <= halt_threshold:
            halting = float(t)
        if not math.isfinite(ratio) or ratio > 1e6:
            status = DIVERGED
            break
        if t == steps:
            break
        W -= lr * g[None, :]
    W_final = W
    distance = float(np.linalg.norm(W0 - W_final))
    # pass 2: steps and angles over all steps (fixed-steps mode)
    W = W0.copy()
    path, first_step = 0.0, math.nan
    sums, counts = [0.0, 0.0, 0.0], [0, 0, 0]
    for t in range(steps):
        g, _ = gradient_and_distance(W)
        grad_norm = math.sqrt(width * float(g @ g))
        if t == 0:
            first_step = lr * grad_norm
        else:
            d_start, d_end = W - W0, W - W_final
            inner_start = float(d_start.sum(axis=0) @ g)
            inner_end = float(d_end.sum(axis=0) @ g)
            for k, (inner, norm) in enumerate(
                (
                    (inner_start, float(np.linalg.norm(d_start))),
                    (inner_end, float(np.linalg.norm(d_end))),
                    (inner_end, distance),
                )
            ):
                denominator = norm * grad_norm
                if denominator > 0 and math.isfinite(denominator):
                    sums[k] += math.acos(min(1.0, max(-1.0, inner / denominator)))
                    counts[k] += 1
        path += lr * grad_norm
        W -= lr * g[None, :]
    means = [s / n if n else math.nan for s, n in zip(sums, counts, strict=True)]
    if status != DIVERGED:
        status = CONVERGED if ratio <= min(1e-8, 1e-5 * EPS) else NOT_CONVERGED
    return {
        "distance": distance,
        "halting_time": halting,
        "first_step": first_step,
        "path_length": path,
        "mean_as": means[0],
        "mean_ae": means[1],
        "mean_ae_printed": means[2],
        "status": status,
    }


def compare(vectorised, loop_results: list[dict]) -> float:
    """Largest disagreement over the loop's trials; raises if any metric differs beyond float precision."""
    worst = 0.0
    for i, ref in enumerate(loop_results):
        if math.isnan(ref["halting_time"]) != math.isnan(vectorised.halting_time[i]) or (
            not math.isnan(ref["halting_time"]) and ref["halting_time"] != vectorised.halting_time[i]
        ):
            raise SystemExit(f"MISMATCH width {vectorised.width} trial {i}: halting time")
        for name in ("distance", "first_step", "path_length", "mean_as", "mean_ae", "mean_ae_printed"):
            mine, theirs = float(getattr(vectorised, name)[i]), ref[name]
            scale = 1.0 if name.startswith("mean_a") else max(abs(theirs), 1e-300)
            # angles near 0 and pi: arccos turns a rounding error δ of the cosine into √(2δ) rad
            tolerance = 1e-5 if name.startswith("mean_a") else 1e-9
            error = abs(mine - theirs) / scale
            if not error <= tolerance:
                raise SystemExit(f"MISMATCH width {vectorised.width} trial {i}: {name} {mine} vs {theirs}")
            worst = max(worst, error if not name.startswith("mean_a") else 0.0)
    return worst


def cli_seconds(runs: int) -> float:
    """Median wall time of ``overparam theory lnn --max-width 8`` in fresh interpreters."""
    script = Path(sys.executable).with_name("overparam")  # the installed console script, as users run it
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from overparam_cli.main import run; run()"]
    )
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(
            [*command, "theory", "lnn", "--max-width", "8"], capture_output=True, text=True
        )
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"overparam theory lnn failed: {result.stderr.strip()}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke test (seconds)")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--max-width", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--loop-trials", type=int, default=None, help="trials run by the loop (extrapolated)")
    parser.add_argument("--cli-runs", type=int, default=None)
    args = parser.parse_args()
    trials = args.trials or (300 if args.quick else 10_000)
    max_width = args.max_width or (8 if args.quick else 64)
    steps = args.steps or (100 if args.quick else 1000)
    loop_trials = args.loop_trials or (2 if args.quick else 5)
    cli_runs = args.cli_runs or (1 if args.quick else 5)
    if loop_trials > trials:
        raise SystemExit("--loop-trials must not exceed --trials")

    data = builtin_dataset()
    moments = LossMoments.from_data(data)
    lr0 = (1.0 - RHO) / (2.0 * moments.largest_eigenvalue)  # lr = lr0 / K gives rho = 0.99 at every width
    widths = range(1, max_width + 1)
    initial = {
        K: sample("ball", 0.5, trials, K, 1, np.random.default_rng(width_seed_sequence(0, K))) for K in widths
    }
    print(
        f"Monte Carlo benchmark: {trials} trials x widths 1..{max_width} x {steps} steps "
        "(fixed, two passes), "
        f"scalar data, lr = {lr0:.4g}/K (rho = {RHO}), float64"
    )

    # The two sides alternate width by width, so that load from other processes on this shared machine
    # falls on both alike; wall and CPU (process) time are both summed per side.
    results, loop_results = {}, {}
    vector_wall = vector_cpu = loop_wall = loop_cpu = 0.0
    for K in widths:
        wall, cpu = time.perf_counter(), time.process_time()
        results[K] = simulate_width(initial[K], moments, lr0 / K, fixed_steps=steps)
        vector_wall += time.perf_counter() - wall
        vector_cpu += time.process_time() - cpu
        wall, cpu = time.perf_counter(), time.process_time()
        loop_results[K] = [loop_trial(initial[K][i], moments, lr0 / K, steps) for i in range(loop_trials)]
        loop_wall += time.perf_counter() - wall
        loop_cpu += time.process_time() - cpu
    scale = trials / loop_trials
    print(f"vectorised: {vector_wall:.2f} s wall ({vector_cpu:.2f} s CPU) for all {trials} trials")
    print(
        f"per-trial loop: {loop_wall:.2f} s wall ({loop_cpu:.2f} s CPU) for {loop_trials} trials, "
        f"extrapolated linearly to {trials} trials: {loop_wall * scale:.1f} s wall "
        f"({loop_cpu * scale:.1f} s CPU)"
    )
    worst = max(compare(results[K], loop_results[K]) for K in widths)
    print(
        f"check: the loop's {loop_trials} trials x {max_width} widths agree with the vectorised run "
        f"(halting times equal; D0, path, first step to relative {worst:.1e}; angles to 1e-5 rad)"
    )
    speedup = loop_wall * scale / vector_wall
    print(
        f"speed-up (loop / vectorised, same work): {speedup:.0f}x wall, "
        f"{loop_cpu * scale / vector_cpu:.0f}x CPU time"
    )

    cli = cli_seconds(cli_runs)
    print(f"overparam theory lnn --max-width 8: median wall {cli:.2f} s over {cli_runs} run(s)")
    print("(measured on a shared 2-core machine: other processes may inflate both timings)")
    print(f"RESULT mc_speedup={speedup:.1f}")
    print(f"RESULT lnn_cli_seconds={cli:.3f}")


if __name__ == "__main__":
    main()
