"""The built-in data sets, RegressionData validation and CSV loading."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from overparam_theory.datasets import RegressionData, builtin_dataset, load_csv
from overparam_theory.errors import InputError


def test_builtin_scalar_moments_and_regimes():
    data = builtin_dataset()
    assert data.is_scalar and data.input_dim == 1 and data.n == 4
    m2 = data.second_moment
    C = data.cross_moment / m2
    assert m2 == pytest.approx(1.875, rel=1e-15)
    assert C == pytest.approx(1.1, rel=1e-14)
    lr, R = 0.1, 0.5
    rho = [1 - 2 * lr * K * m2 for K in range(1, 9)]
    converging = [K for K, r in zip(range(1, 9), rho, strict=True) if abs(r) < 1]
    assert converging == [1, 2, 3, 4, 5]
    assert min(range(1, 9), key=lambda K: abs(rho[K - 1])) == 3
    holds = [K for K in range(1, 9) if C >= R * math.sqrt(K)]
    assert holds == [1, 2, 3, 4]


@pytest.mark.parametrize("d", [2, 3, 7])
def test_builtin_vector_has_the_documented_moments(d):
    data = builtin_dataset(d)
    assert data.input_dim == d and data.n == 4 * d and not data.is_scalar
    np.testing.assert_allclose(data.second_moment, np.diag(np.linspace(1.875, 0.625, d)), atol=1e-13)
    v_star = np.linalg.lstsq(data.x, data.y, rcond=None)[0]
    np.testing.assert_allclose(v_star, np.linspace(1.1, 0.6, d), atol=1e-13)


def test_builtin_is_deterministic():
    a, b = builtin_dataset(4), builtin_dataset(4)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ([0.0, 0.0], [1.0, 2.0], "all inputs are zero"),
        ([1.0, 2.0], [1.0], "rows"),
        ([1.0, np.nan], [1.0, 2.0], "finite"),
        ([1.0, 2.0], [1.0, np.inf], "finite"),
        ([], [], "no data points"),
        ([[[1.0]]], [1.0], "shape"),
        (["a", "b"], [1.0, 2.0], "numbers"),
    ],
)
def test_bad_data_is_refused_with_one_line(x, y, message):
    with pytest.raises(InputError, match=message) as info:
        RegressionData(x, y)
    assert "\n" not in str(info.value)


def test_arrays_are_read_only_copies():
    x = np.array([1.0, 2.0])
    data = RegressionData(x, [1.0, 3.0])
    x[0] = 100.0
    assert data.x[0] == 1.0
    with pytest.raises(ValueError):
        data.x[0] = 5.0


finite = st.floats(-1e3, 1e3, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(arrays(float, (n, 3), elements=finite),
                                                       arrays(float, n, elements=finite))))
def test_moments_match_their_definitions(xy):
    x, y = xy
    if not np.any(x != 0):
        return
    data = RegressionData(x, y)
    np.testing.assert_allclose(data.second_moment, sum(np.outer(r, r) for r in x) / len(y), atol=1e-9)
    np.testing.assert_allclose(data.cross_moment, sum(r * t for r, t in zip(x, y, strict=True)) / len(y),
                               atol=1e-9)
    scalar = RegressionData(x[:, 0], y) if np.any(x[:, 0] != 0) else None
    if scalar is not None:
        assert scalar.second_moment == pytest.approx(float(np.mean(x[:, 0] ** 2)))


def test_load_csv_scalar_and_vector(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n0.5,1\n\n 2 , 3.5\n")
    data = load_csv(path)
    assert np.array_equal(data.x, [0.5, 2.0]) and np.array_equal(data.y, [1.0, 3.5])
    path.write_text("x1,x2,y\n1,0,1\n0,1,2\n1,1,2.5\n")
    data = load_csv(path, input_dim=2)
    assert data.x.shape == (3, 2) and data.input_dim == 2


@pytest.mark.parametrize(
    ("content", "dim", "message"),
    [
        ("", 1, "empty file"),
        ("x,y\n", 1, "no data rows"),
        ("a,b\n1,2\n", 1, "header must be 'x,y'"),
        ("x,y\n1,2\n", 2, "header must be 'x1,x2,y'"),
        ("x,y\n1,2\n3,abc\n", 1, "line 3: column y: not a number: 'abc'"),
        ("x,y\n1,2\nnan,1\n", 1, "line 3: column x: not finite"),
        ("x,y\n1,2,3\n", 1, "line 2: expected 2 cells"),
        ("x,y\n0,2\n0,3\n", 1, "all inputs are zero"),
    ],
)
def test_load_csv_failures_are_one_line(tmp_path, content, dim, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        load_csv(path, input_dim=dim)
    assert "\n" not in str(info.value)


def test_load_csv_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_csv(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="directory"):
        load_csv(tmp_path)
    with pytest.raises(InputError, match="input_dim"):
        load_csv(tmp_path / "nope.csv", input_dim=0)


def test_load_csv_undecodable(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"x,y\n\xff\xfe,1\n")
    with pytest.raises(InputError, match="cannot read"):
        load_csv(path)
