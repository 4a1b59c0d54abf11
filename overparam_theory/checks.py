"""Argument checks shared by the whole toolkit: each returns the value in its plain Python type or raises
:class:`~overparam_theory.errors.InputError` with one line naming the argument and what it got.
"""

from __future__ import annotations

import math

import numpy as np

from overparam_theory.errors import InputError

__all__ = ["check_int", "check_positive"]


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an ``int >= minimum``; bools and floats (even 3.0) are refused, numpy ints accepted."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive(name: str, value: object) -> float:
    """``value`` as a finite ``float > 0`` (anything ``float()`` takes, e.g. ``"0.1"`` or a numpy scalar)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0.0):
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return number
