"""Cost of the end-of-study work (load, analysis, figures, report) at the two presets' grid sizes.

Builds two synthetic study stores with planted laws (the test helper ``tests/empirical/char_lm_synthetic``):
the small preset's grid and the paper preset's grid (widths x fractions x seeds read from the presets:
24 and 360 runs today), each with ~40 tracked steps per run and group, and times,
side by side in one process: reading the store, ``analyze`` (bootstrap replicates per fit: ``--n-boot``),
``make_figures`` and ``write_report``. The ratio paper/small says how the cost grows with the grid
(the bootstrap refits dominate: fits x replicates, not runs).

Usage: ``python benchmarks/bench_analysis.py [--n-boot 1000] [--repeats 3]``. The last lines are
``RESULT name=value``. On a shared machine absolute seconds drop; the ratios are what this measures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "empirical"))

from char_lm_synthetic import Plant, build_store  # noqa: E402

from overparam_empirical.analysis import StudyRows, analyze  # noqa: E402
from overparam_empirical.figures import make_figures  # noqa: E402
from overparam_empirical.report import write_report  # noqa: E402


def grids() -> dict[str, Plant]:
    """The presets' own grids, so that the benchmark follows them when they change."""
    from overparam_empirical.benchmarks import get_benchmark

    benchmark = get_benchmark("char-lm")
    return {
        name: Plant(widths=preset.widths, fractions=preset.fractions, seeds=preset.seeds, track_steps=40)
        for name, preset in ((name, benchmark.preset(name)) for name in ("small", "paper"))
    }


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure(folder: Path, plant: Plant, n_boot: int, repeats: int, name: str) -> dict[str, float]:
    build_store(folder, plant)
    load, rows = timed(lambda: StudyRows.from_store(folder), repeats)
    fit, result = timed(lambda: analyze(rows, n_boot=n_boot), repeats)
    draw, figures = timed(lambda: make_figures(rows, result, folder), 1)
    write, _ = timed(lambda: write_report(folder, rows, result, figures), repeats)
    print(
        f"{name:5s}: {len(rows.runs):3d} runs, {len(rows.traversal):6d} traversal rows | load {load:6.2f} s"
        f" | analyze {fit:6.2f} s | figures {draw:6.2f} s ({len(figures.written)} files)"
        f" | report {write:5.2f} s"
    )
    return {"load": load, "analyze": fit, "figures": draw, "report": write}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    seconds: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, plant in grids().items():
            seconds[name] = measure(Path(tmp) / name, plant, args.n_boot, args.repeats, name)
    for part in ("load", "analyze", "figures", "report"):
        ratio = seconds["paper"][part] / max(seconds["small"][part], 1e-9)
        print(f"paper/small {part}: {ratio:.1f}x")
    total = {name: sum(parts.values()) for name, parts in seconds.items()}
    print(f"RESULT end_of_study_seconds_small={total['small']:.1f}")
    print(f"RESULT end_of_study_seconds_paper={total['paper']:.1f}")


if __name__ == "__main__":
    main()
