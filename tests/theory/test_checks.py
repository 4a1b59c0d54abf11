"""The shared argument checks: what they accept comes back in a plain Python type, the rest is refused."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from overparam_theory.checks import check_int, check_positive
from overparam_theory.errors import InputError


@given(st.integers(min_value=-50, max_value=50), st.integers(min_value=-5, max_value=5))
def test_check_int_accepts_exactly_the_integers_at_or_above_the_minimum(value, minimum):
    for candidate in (value, np.int64(value)):
        if value >= minimum:
            got = check_int("n", candidate, minimum)
            assert got == value and type(got) is int
        else:
            with pytest.raises(InputError, match=rf"^n must be an integer >= {minimum}, got"):
                check_int("n", candidate, minimum)


@pytest.mark.parametrize("value", [True, False, 3.0, "3", None])
def test_check_int_refuses_bools_floats_and_strings(value):
    with pytest.raises(InputError, match="^width must be an integer >= 1"):
        check_int("width", value)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_check_positive_accepts_exactly_the_finite_positive_numbers(value):
    if math.isfinite(value) and value > 0:
        got = check_positive("lr", np.float64(value))
        assert got == value and type(got) is float
    else:
        with pytest.raises(InputError, match="^lr must be a positive finite number"):
            check_positive("lr", value)


@pytest.mark.parametrize("value", ["abc", None, [1.0]])
def test_check_positive_refuses_what_is_not_a_number(value):
    with pytest.raises(InputError, match="^lr must be a positive number, got"):
        check_positive("lr", value)
