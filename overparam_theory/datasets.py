"""Small regression data sets for the width-K linear network, and CSV loading.

A data set is a list of inputs ``x_i`` (scalars, or vectors in ``R^d``) with targets ``y_i``. The linear
network of the paper's Appendix B only sees the data through two moments (conventions in
docs/theory.md, loss ``F = (1/n) sum_i (yhat_i - y_i)**2``):

* ``second_moment``  ``Sigma_xx = X^T X / n`` (for scalar input the number ``m2 = mean(x**2)``);
* ``cross_moment``   ``Sigma_xy = X^T y / n`` (for scalar input the number ``mean(x * y)``).

For scalar input the minimiser set of the width-K network is the hyperplane ``sum_k w_k = C`` with
``C = sum_i x_i y_i / sum_i x_i**2 = cross_moment / second_moment``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from overparam_theory.checks import check_int
from overparam_theory.errors import InputError

__all__ = ["RegressionData", "builtin_dataset", "load_csv"]


@dataclass(frozen=True, eq=False)
class RegressionData:
    """Inputs ``x`` (shape ``(n,)`` for scalar input, ``(n, d)`` for vector input) and targets ``y`` (n,).

    Arrays are converted to read-only float64. Raises :class:`InputError` for non-finite values,
    ``n < 1``, mismatched lengths, or inputs that are all zero (then every weight is a minimiser and
    no distance to the minimiser set is defined).
    """

    x: np.ndarray
    y: np.ndarray
    name: str = "data"

    def __post_init__(self) -> None:
        try:
            x = np.array(self.x, dtype=np.float64)
            y = np.array(self.y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{self.name}: inputs and targets must be numbers ({exc})") from None
        if x.ndim not in (1, 2):
            raise InputError(f"{self.name}: x must have shape (n,) or (n, d), got {x.shape}")
        if y.ndim != 1:
            raise InputError(f"{self.name}: y must have shape (n,), got {y.shape}")
        if x.shape[0] < 1:
            raise InputError(f"{self.name}: no data points (n = 0)")
        if x.ndim == 2 and x.shape[1] < 1:
            raise InputError(f"{self.name}: x has zero columns")
        if x.shape[0] != y.shape[0]:
            raise InputError(f"{self.name}: x has {x.shape[0]} rows but y has {y.shape[0]}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise InputError(f"{self.name}: inputs and targets must be finite (found NaN or inf)")
        if not np.any(x != 0.0):
            raise InputError("all inputs are zero: the minimiser set is the whole space")
        x.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    @property
    def n(self) -> int:
        """Number of data points."""
        return int(self.y.shape[0])

    @property
    def input_dim(self) -> int:
        """``d``: 1 for scalar input (``x`` of shape ``(n,)``), else the number of columns of ``x``."""
        return 1 if self.x.ndim == 1 else int(self.x.shape[1])

    @property
    def is_scalar(self) -> bool:
        """True when ``x`` has shape ``(n,)`` (the paper's scalar-input network)."""
        return self.x.ndim == 1

    @property
    def design_matrix(self) -> np.ndarray:
        """``X`` as an ``(n, d)`` array (a column for scalar input)."""
        return self.x.reshape(self.n, -1)

    @property
    def second_moment(self) -> float | np.ndarray:
        """``Sigma_xx = X^T X / n``: a float ``m2 = mean(x**2)`` for scalar input, else a (d, d) array."""
        if self.is_scalar:
            return float(np.mean(self.x * self.x))
        X = self.x
        return X.T @ X / self.n

    @property
    def cross_moment(self) -> float | np.ndarray:
        """``Sigma_xy = X^T y / n``: a float ``mean(x * y)`` for scalar input, else a (d,) array."""
        if self.is_scalar:
            return float(np.mean(self.x * self.y))
        return self.x.T @ self.y / self.n


# The scalar built-in set. x = 0.5, 1, 1.5, 2 gives m2 = 1.875, so at the CLI defaults (lr = 0.1)
# rho(K) = 1 - 2 * 0.1 * K * 1.875 = 1 - 0.375 K: widths 1..5 converge, 6.. diverge (1/(lr m2) = 5.33),
# the fastest width is 3 (|rho| = 0.125). y = 1.1 x + r with r = (0.15, -0.1, 0.15, -0.1) orthogonal to x,
# so C = sum x y / sum x^2 = 1.1: with scale R = 0.5 the paper's condition C >= R sqrt(K) holds for
# K <= 4 (R sqrt(4) = 1.0) and fails for K >= 5 (R sqrt(5) = 1.118).
_BUILTIN_X = (0.5, 1.0, 1.5, 2.0)
_BUILTIN_Y = (0.7, 1.0, 1.8, 2.1)


def builtin_dataset(input_dim: int = 1) -> RegressionData:
    """The small built-in regression data set used by ``overparam theory lnn`` by default.

    ``input_dim = 1`` (scalar input): ``x = (0.5, 1, 1.5, 2)``, ``y = (0.7, 1.0, 1.8, 2.1)``;
    ``m2 = 1.875``, ``C = 1.1``. At the CLI defaults (lr 0.1, scale R = 0.5, widths 1..8):
    ``rho(K) = 1 - 0.375 K``, so widths 1-5 converge and 6-8 diverge (divergence width 6), the fastest
    width is 3, and the paper's condition ``C >= R sqrt(K)`` holds for K <= 4 and fails for K >= 5.

    ``input_dim = d > 1``: ``n = 4d`` points ``X = sqrt(n) H diag(sqrt(lambda))`` with ``H`` the first d
    columns of the orthonormal DCT-II basis of ``R^n``, so ``Sigma_xx = diag(lambda)`` exactly with
    ``lambda = linspace(1.875, 0.625, d)`` (condition number 3, same largest eigenvalue as the scalar set);
    ``y = X v_true + 0.1 sqrt(n) h_d`` with ``v_true = linspace(1.1, 0.6, d)`` and ``h_d`` the next DCT
    column (orthogonal to the columns of X), so the least-squares solution is ``v_true``.
    """
    input_dim = check_int("input_dim", input_dim)
    if input_dim == 1:
        return RegressionData(np.array(_BUILTIN_X), np.array(_BUILTIN_Y), name="builtin")
    d = input_dim
    n = 4 * d
    i = np.arange(n)[:, None] + 0.5
    j = np.arange(d + 1)[None, :]
    basis = np.sqrt(2.0 / n) * np.cos(np.pi * i * j / n)
    basis[:, 0] = 1.0 / np.sqrt(n)
    eigenvalues = np.linspace(1.875, 0.625, d)
    X = np.sqrt(n) * basis[:, :d] * np.sqrt(eigenvalues)[None, :]
    v_true = np.linspace(1.1, 0.6, d)
    y = X @ v_true + 0.1 * np.sqrt(n) * basis[:, d]
    return RegressionData(X, y, name=f"builtin-{d}d")


def load_csv(path: str | Path, input_dim: int = 1) -> RegressionData:
    """Load a regression data set from a CSV file with a header.

    ``input_dim = 1``: columns ``x,y``; ``input_dim = d > 1``: columns ``x1,...,xd,y``. Blank lines are
    skipped. Any problem (missing or unreadable file, wrong header, a non-numeric or non-finite cell, no
    data rows) raises :class:`InputError` with one line naming the file and, for a bad cell, its line.
    """
    input_dim = check_int("input_dim", input_dim)
    path = Path(path)
    expected = ["x", "y"] if input_dim == 1 else [f"x{j}" for j in range(1, input_dim + 1)] + ["y"]
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a CSV file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    rows = csv.reader(text.splitlines())
    header: list[str] | None = None
    values: list[list[float]] = []
    try:
        for line_number, row in enumerate(rows, start=1):
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if header is None:
                header = [cell.lower() for cell in cells]
                if header != expected:
                    raise InputError(
                        f"{path}: line {line_number}: header must be '{','.join(expected)}' "
                        f"for input_dim={input_dim}, got '{','.join(cells)}'"
                    )
                continue
            if len(cells) != len(expected):
                raise InputError(
                    f"{path}: line {line_number}: expected {len(expected)} cells, got {len(cells)}"
                )
            parsed = []
            for column, cell in zip(expected, cells, strict=True):
                try:
                    value = float(cell)
                except ValueError:
                    raise InputError(
                        f"{path}: line {line_number}: column {column}: not a number: {cell!r}"
                    ) from None
                if not math.isfinite(value):
                    raise InputError(f"{path}: line {line_number}: column {column}: not finite: {cell!r}")
                parsed.append(value)
            values.append(parsed)
    except csv.Error as exc:
        raise InputError(f"{path}: malformed CSV ({exc})") from None
    if header is None:
        raise InputError(f"{path}: empty file (expected a header '{','.join(expected)}')")
    if not values:
        raise InputError(f"{path}: no data rows after the header")
    table = np.array(values, dtype=np.float64)
    x = table[:, 0] if input_dim == 1 else table[:, :input_dim]
    return RegressionData(x, table[:, -1], name=path.name)
