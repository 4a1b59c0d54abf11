"""``overparam theory yin``: derivation output, LaTeX, the bound, and the one-line error policy."""

import pytest
from overparam_cli.main import run

NUMBERS = ["--d0", "2", "--lr", "0.1", "--alignment", "1", "--grad-sq", "3", "--eps", "0.01"]


def invoke(capsys, *args):
    with pytest.raises(SystemExit) as info:
        run(["theory", "yin", *args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_derivation_is_printed(capsys):
    code, out, err = invoke(capsys)
    assert code == 0 and err == ""
    assert "Telescoping" in out and "η" in out and "sympy verified 9 checks" in out
    assert "consistency relation" in out


def test_latex(capsys):
    code, out, _ = invoke(capsys, "--latex")
    assert code == 0
    assert r"\sum_{t=0}^{T - 1}" in out and r"\geq \frac{D_{0}^{2} - \epsilon}" in out
    assert "╲" not in out


def test_bound_is_evaluated(capsys):
    code, out, _ = invoke(capsys, *NUMBERS)
    assert code == 0
    assert "23.4706" in out and "24" in out


def test_bound_that_does_not_apply_is_a_result_not_an_error(capsys):
    args = list(NUMBERS)
    args[5] = "0.1"  # A = 0.1 < lr S / 2
    code, out, _ = invoke(capsys, *args)
    assert code == 0 and "does not apply" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--d0", "2", "--lr", "0.1"], "give all of --d0 --lr --alignment --grad-sq --eps or none"),
        (["--eps", "0.1"], "missing --d0 --lr --alignment --grad-sq"),
        (NUMBERS[:3] + ["-0.1"] + NUMBERS[4:], "lr must be > 0"),
        (NUMBERS[:1] + ["nan"] + NUMBERS[2:], "d0 must be finite"),
        (NUMBERS[:9] + ["0"], "eps must be > 0"),
        (NUMBERS[:7] + ["-3"] + NUMBERS[8:], "grad_sq must be >= 0"),
        (["--d0", "abc"], "Invalid value for '--d0'"),
    ],
)
def test_bad_numbers_exit_2_with_one_line(capsys, args, message):
    code, out, err = invoke(capsys, *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("overparam: error:") and message in lines[0]
    assert "Traceback" not in err


def test_help_explains_units(capsys):
    code, out, _ = invoke(capsys, "--help")
    assert code == 0
    flat = " ".join(out.split())
    for phrase in ("weight units", "squared gradient units", "the paper's epsilon", "--latex"):
        assert phrase in flat
