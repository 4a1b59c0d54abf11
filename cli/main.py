"""Entry point of the ``overparam`` command: the typer app and the one-line error policy.

Bad input never produces a traceback: click usage errors and :class:`overparam_theory.InputError`
are printed as a single ``overparam: error: ...`` line on stderr with exit code 2.
"""

from __future__ import annotations

import sys

import typer
from typer.exceptions import Abort, TyperException

from overparam_theory.errors import InputError

app = typer.Typer(
    name="overparam",
    help=(
        "Measure and explain how over-parameterization (width, depth) changes how fast gradient descent "
        "converges. Reproduces 'Empirically characterizing overparameterization impact on convergence' "
        "(ICLR 2019 submission) and goes beyond it."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

theory_app = typer.Typer(
    help="Closed forms, symbolic derivations and Monte Carlo for the paper's theory (no torch needed).",
    no_args_is_help=True,
)
empirical_app = typer.Typer(
    help="Train the paper's benchmarks at growing width, track weight-space traversal, fit power laws.",
    no_args_is_help=True,
)
app.add_typer(theory_app, name="theory")
app.add_typer(empirical_app, name="empirical")


def _register_commands() -> None:
    """Import the modules whose decorators add sub-commands to the apps above."""
    from overparam_cli import empirical_commands, theory_commands  # noqa: F401


def fail(message: str) -> None:
    """Print one error line and exit with status 2 (bad input)."""
    print(f"overparam: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point; ``argv`` defaults to ``sys.argv[1:]``."""
    _register_commands()
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="overparam", standalone_mode=False)
    except TyperException as exc:  # typer >= 0.29 vendors click; its usage errors derive from this
        if type(exc).__name__ == "NoArgsIsHelpError":  # `overparam theory` alone: help already shown
            raise SystemExit(0) from None
        fail(_one_line(exc.format_message()))
    except InputError as exc:
        fail(_one_line(str(exc)))
    except (Abort, KeyboardInterrupt):
        print("overparam: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":  # pragma: no cover
    # Run as a script this file is a second module ("__main__"); the sub-commands register on the
    # apps of the importable `overparam_cli.main`, so dispatch through that one.
    from overparam_cli.main import run as _run

    _run()
