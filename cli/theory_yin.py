"""``overparam theory yin``: the Yin et al. recursion (paper eq. 2-4), derived with sympy, and its bound.

Without numbers it prints the derivation (each step verified symbolically by
:func:`overparam_theory.yin.derive_yin`), as pretty-printed formulas or, with ``--latex``, as LaTeX.
Given ``--d0 --lr --alignment --grad-sq --eps`` (all five, or none) it evaluates the halting-time bound
``T >= (d0^2 - eps) / (2 lr A - lr^2 S)`` or says why it does not apply.
"""

from __future__ import annotations

from typing import Annotated

import typer
from overparam_cli.main import theory_app

from overparam_theory.errors import InputError

NUMBER_OPTIONS = ("--d0", "--lr", "--alignment", "--grad-sq", "--eps")

NOTES = (
    "Conventions: F(W) = (1/n) sum_i f_i(W), GD W_{t+1} = W_t - eta grad F(W_t); W* any fixed point "
    "(usually the minimiser GD reaches).",
    "The any-update identity is pure algebra: it holds for SGD, momentum, Adam, with Delta_t the actual "
    "step.",
    "A and S are averages over the same T steps, so the bound is a consistency relation, not a "
    "prediction, unless A and S are bounded independently of T (strong convexity / smoothness).",
    "Paper (Sec. 4.2): eq. (4) writes the sums of expectations as T times an average; the plain-text copy "
    "of the paper loses Greek letters (eta, nabla, epsilon), and what remains, '+ 2||F(W(t-1))||2' and "
    "'- 2 <W(t-1) - W*, F>', is consistent with eta^2 ||grad F||^2 - 2 eta <., .>: no dropped eta^2 can be "
    "confirmed from it (see docs/theory.md).",
)


def _print_derivation(latex: bool) -> None:
    import sympy as sp
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    from overparam_theory.yin import derive_yin

    derivation = derive_yin()
    if latex:
        print("% Yin et al. recursion (paper Sec. 4.2, eq. 2-4); every step verified with sympy")
        for title, expr, note in derivation.steps:
            print(f"% {title}")
            print(f"% ({note})")
            print(r"\[ " + sp.latex(expr) + r" \]")
        for note in NOTES:
            print(f"% {note}")
        return
    console = Console(highlight=False)
    console.print(
        Panel(
            "Yin et al. recursion (paper Sec. 4.2, eq. 2-4), derived from the update rule; "
            f"sympy verified {len(derivation.checks)} checks: {', '.join(derivation.checks)}",
            title="overparam theory yin",
        )
    )
    for number, (title, expr, note) in enumerate(derivation.steps, start=1):
        console.print(Text(f"{number}. {title}", style="bold"))
        console.print(Text(sp.pretty(expr, use_unicode=True)))
        console.print(Text(f"   {note}", style="dim"))
        console.print()
    for note in NOTES:
        console.print(Text(f"* {note}"))


def _print_bound(d0: float, lr: float, alignment: float, grad_sq: float, eps: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from overparam_theory.yin import halting_time_bound

    result = halting_time_bound(d0, lr, alignment, grad_sq, eps)
    table = Table(title="T >= (d0^2 - eps) / (2 lr A - lr^2 S)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("d0 = ||W_0 - W*||", f"{d0:.6g}")
    table.add_row("lr (eta)", f"{lr:.6g}")
    table.add_row("A = mean <W_t - W*, grad F>", f"{alignment:.6g}")
    table.add_row("S = mean ||grad F||^2", f"{grad_sq:.6g}")
    table.add_row("eps (on ||W_T - W*||^2)", f"{eps:.6g}")
    table.add_row("2 lr A - lr^2 S", f"{result.denominator:.6g}")
    table.add_row("bound on T", "does not apply" if result.bound is None else f"{result.bound:.6g}")
    table.add_row("smallest integer T", "-" if result.steps is None else str(result.steps))
    console = Console(highlight=False)
    console.print(table)
    console.print(result.reason)


@theory_app.command(
    "yin",
    help=(
        "Derive the Yin et al. recursion ||W_T - W*||^2 = ||W_0 - W*||^2 + eta^2 sum ||grad F||^2 "
        "- 2 eta sum <W_t - W*, grad F> with sympy (general T, and for any update rule), and the "
        "halting-time bound T >= (d0^2 - eps)/(2 eta A - eta^2 S) with its conditions. Give all five numbers "
        "(--d0 --lr --alignment --grad-sq --eps) to evaluate the bound, or none to see the derivation."
    ),
)
def yin_command(
    latex: Annotated[
        bool,
        typer.Option("--latex", help="Print the derivation as LaTeX instead of pretty-printed formulas."),
    ] = False,
    d0: Annotated[
        float | None,
        typer.Option(
            "--d0",
            help="Direct distance ||W_0 - W*|| from the init to the final weights (weight units; the "
            "distance, not its square; >= 0). No default: give all five numbers or none.",
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option("--lr", help="Learning rate eta of gradient descent (> 0; 1/gradient units)."),
    ] = None,
    alignment: Annotated[
        float | None,
        typer.Option(
            "--alignment",
            help="A: the trajectory average over t < T of <W_t - W*, grad F(W_t)> (weight x gradient units; "
            "any sign).",
        ),
    ] = None,
    grad_sq: Annotated[
        float | None,
        typer.Option(
            "--grad-sq",
            help="S: the trajectory average over t < T of ||grad F(W_t)||^2 (squared gradient units; >= 0).",
        ),
    ] = None,
    eps: Annotated[
        float | None,
        typer.Option(
            "--eps",
            help="Tolerance on the squared distance ||W_T - W*||^2 (the paper's epsilon; squared weight "
            "units; > 0).",
        ),
    ] = None,
) -> None:
    values = {"--d0": d0, "--lr": lr, "--alignment": alignment, "--grad-sq": grad_sq, "--eps": eps}
    given = [name for name, value in values.items() if value is not None]
    if given and len(given) != len(values):
        missing = [name for name in NUMBER_OPTIONS if values[name] is None]
        raise InputError(f"give all of {' '.join(NUMBER_OPTIONS)} or none; missing {' '.join(missing)}")
    if given:
        _print_bound(d0, lr, alignment, grad_sq, eps)  # type: ignore[arg-type]
        return
    _print_derivation(latex)
