"""Initialisation laws for the first-layer weights ``W0`` of the width-K linear network.

Each law has one scale parameter (``R`` or ``sigma``) and lives in the full weight space ``R^N`` with
``N = K * d`` (width times input dimension):

* ``ball``     uniform in the ball ``||W0|| <= R`` of ``R^N`` (the paper's law, Appendix B);
* ``cube``     i.i.d. coordinates ``U(-R, R)``;
* ``gaussian`` i.i.d. coordinates ``N(0, sigma**2)``.

Moments per coordinate (all laws are centred and exchangeable):
``E[w**2] = R**2 / (N + 2)`` (ball), ``R**2 / 3`` (cube), ``sigma**2`` (gaussian). The ball's radius
``||W0||/R`` has density ``N r**(N-1)`` on ``[0, 1]``, so ``E||W0||**2 = R**2 N / (N + 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from overparam_theory.checks import check_int, check_positive
from overparam_theory.errors import InputError

__all__ = ["INIT_LAW_NAMES", "InitLaw", "get_init_law", "sample", "as_generator"]

INIT_LAW_NAMES: tuple[str, ...] = ("ball", "cube", "gaussian")


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a generator or an integer seed (``None`` is refused: seed it)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer) or rng < 0:
        raise InputError(f"rng must be a numpy Generator or a non-negative integer seed, got {rng!r}")
    return np.random.default_rng(int(rng))


@dataclass(frozen=True)
class InitLaw:
    """One initialisation law: ``name`` in :data:`INIT_LAW_NAMES` and its ``scale`` (R or sigma)."""

    name: str
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in INIT_LAW_NAMES:
            raise InputError(
                f"unknown init law {self.name!r}; valid laws: {', '.join(INIT_LAW_NAMES)}"
            )
        object.__setattr__(self, "scale", check_positive("scale", self.scale))

    def coordinate_variance(self, width: int, input_dim: int = 1) -> float:
        """``E[w**2]`` of one coordinate of ``W0`` in ``R^(width*input_dim)``."""
        n_weights = check_int("width", width) * check_int("input_dim", input_dim)
        if self.name == "ball":
            return self.scale**2 / (n_weights + 2)
        if self.name == "cube":
            return self.scale**2 / 3.0
        return self.scale**2

    def sum_variance(self, width: int) -> float:
        """``Var(sum_k w_k)`` for scalar input: ``width * coordinate_variance`` (coordinates uncorrelated)."""
        return width * self.coordinate_variance(width, 1)

    def sample(
        self, n_trials: int, width: int, input_dim: int, rng: np.random.Generator | int
    ) -> np.ndarray:
        """``n_trials`` independent draws of ``W0``, shape ``(n_trials, width, input_dim)``, float64."""
        return sample(self, self.scale, n_trials, width, input_dim, rng)


def get_init_law(name: str, scale: float = 1.0) -> InitLaw:
    """The law called ``name`` with the given scale; unknown names raise :class:`InputError`."""
    if not isinstance(name, str):
        raise InputError(f"init law must be a name, one of {', '.join(INIT_LAW_NAMES)}; got {name!r}")
    return InitLaw(name.strip().lower(), scale)


def sample(
    law: str | InitLaw,
    scale: float,
    n_trials: int,
    width: int,
    input_dim: int,
    rng: np.random.Generator | int,
) -> np.ndarray:
    """Draw ``n_trials`` initial weight matrices, shape ``(n_trials, width, input_dim)``, vectorised.

    ``law`` is a name or an :class:`InitLaw` (whose own scale is then ignored in favour of ``scale``).
    Ball: a standard Gaussian direction in ``R^N`` (N = width * input_dim), normalised, times the
    radius ``R * U**(1/N)``, ``U ~ U(0, 1)``; that radius law makes the point uniform in the ball.
    """
    name = law.name if isinstance(law, InitLaw) else get_init_law(law).name
    scale = check_positive("scale", scale)
    n_trials = check_int("n_trials", n_trials)
    width = check_int("width", width)
    input_dim = check_int("input_dim", input_dim)
    gen = as_generator(rng)
    shape = (n_trials, width, input_dim)
    if name == "cube":
        return gen.uniform(-scale, scale, size=shape)
    if name == "gaussian":
        return scale * gen.standard_normal(shape)
    n_weights = width * input_dim
    direction = gen.standard_normal((n_trials, n_weights))
    norms = np.linalg.norm(direction, axis=1, keepdims=True)
    # A zero Gaussian vector has probability zero; guard anyway so no NaN can appear.
    norms = np.where(norms > 0.0, norms, 1.0)
    radius = scale * gen.uniform(0.0, 1.0, size=(n_trials, 1)) ** (1.0 / n_weights)
    return (direction / norms * radius).reshape(shape)
