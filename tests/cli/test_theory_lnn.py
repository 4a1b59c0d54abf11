"""``overparam theory lnn``: output against the closed forms, files, option errors, and no torch import."""

import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from overparam_cli.main import run

from overparam_theory import lnn
from overparam_theory.datasets import builtin_dataset, load_csv


def overparam(capsys, *args):
    """Run the command in-process; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        run(["theory", "lnn", *args])
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def assert_one_line_error(code, err, fragment):
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("overparam: error:"), err
    assert fragment in lines[0], lines[0]


@pytest.fixture
def bad_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n1.0,2.0\n2.0,abc\n")
    return path


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--max-width", "0"], "--max-width"),
        (["--max-width", "-3"], "--max-width"),
        (["--max-width", "abc"], "--max-width"),
        (["--lr", "0"], "--lr"),
        (["--lr", "-1"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--trials", "0"], "--trials"),
        (["--init", "foo"], "--init"),
        (["--scale", "0"], "--scale"),
        (["--eps", "1.5"], "--eps"),
        (["--seed", "-1"], "--seed"),
        (["--input-dim", "0"], "--input-dim"),
        (["--lr-scaling", "sqrt"], "--lr-scaling"),
        (["--second-layer-init", "law"], "--train-second-layer"),
        (["--data", "{missing}"], "no such file"),
        (["--data", "{bad}"], "not a number"),
        (["--data", "{bad}", "--input-dim", "2"], "header"),
        (["--plot", "{out}.jpg"], "suffix"),
        (["--plot", "{out}"], "suffix"),
        (["--json", "{tmp}/no/such/folder/out.json"], "does not exist"),
        (["--json", "{tmp}"], "directory"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, bad_csv, args, fragment):
    json_out, plot_out = tmp_path / "result.json", tmp_path / "result.png"
    values = {"missing": tmp_path / "missing.csv", "bad": bad_csv, "out": tmp_path / "plot", "tmp": tmp_path}
    args = [a.format(**values) for a in args]
    extra = [] if "--json" in args else ["--json", str(json_out)]
    extra += [] if "--plot" in args else ["--plot", str(plot_out)]
    before = sorted(p.name for p in tmp_path.iterdir())
    extra += [] if "--trials" in args else ["--trials", "10"]
    code, out, err = overparam(capsys, *args, *extra)
    assert_one_line_error(code, err, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, not even a temp file


def test_json_matches_the_closed_forms_and_the_plot_is_a_png(capsys, tmp_path):
    json_out, plot_out = tmp_path / "lnn.json", tmp_path / "lnn.png"
    code, out, err = overparam(
        capsys,
        "--max-width",
        "7",
        "--trials",
        "3000",
        "--seed",
        "3",
        "--json",
        str(json_out),
        "--plot",
        str(plot_out),
    )
    assert code == 0, err
    for header in ("E[D0]", "MC D0", "converges", "divergence width", "fastest width", "exponents"):
        assert header in out
    payload = json.loads(json_out.read_text())
    assert payload["options"]["max_width"] == 7 and payload["options"]["trials"] == 3000
    data = builtin_dataset()
    m2 = float(np.mean(data.x**2))
    assert payload["divergence_width"] == lnn.divergence_width(data, 0.1) == 6
    assert payload["fastest_width"] == lnn.fastest_width(data, 0.1, 7) == 3
    rows = payload["widths"]
    assert [r["width"] for r in rows] == list(range(1, 8))
    for row in rows:
        K = row["width"]
        for key in (
            "width",
            "rho",
            "expected_distance",
            "mc_distance_mean",
            "mc_distance_ci",
            "halting_time",
            "mc_halting_time_mean",
            "expected_step0",
            "converges",
        ):
            assert key in row
        dyn = lnn.lnn_dynamics(data, K, 0.1)
        assert row["rho"] == pytest.approx(1 - 2 * 0.1 * K * m2, abs=1e-12)
        assert row["expected_distance"] == pytest.approx(lnn.expected_direct_distance(data, K, "ball", 0.5))
        assert row["expected_step0"] == pytest.approx(lnn.expected_first_step(data, K, 0.1, "ball", 0.5))
        assert row["converges"] is dyn.converges is (K < 6)
        if row["converges"]:
            assert row["halting_time"] == dyn.halting_time(1e-3) == row["mc_halting_time_mean"]
            low, high = row["mc_distance_ci"]
            half = (high - low) / 2
            # the 95% interval is ±1.96 SE: allow 4.5 SE before calling the Monte Carlo wrong
            assert abs(row["mc_distance_mean"] - row["expected_distance"]) <= 4.5 / 1.96 * half
            assert row["mc_converged_fraction"] == 1.0
        else:
            assert row["halting_time"] is None and row["mc_distance_mean"] is None
            assert row["mc_diverged_fraction"] == 1.0
    assert payload["exponents"]["expected_distance"] == pytest.approx(0.5, abs=0.01)  # C/sqrt(K) regime
    assert plot_out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(plot_out).shape[0] > 500


def test_svg_plot_and_vector_input_data_file(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2))
    y = X @ np.array([0.8, -0.4]) + 0.1 * rng.normal(size=12)
    csv = tmp_path / "data.csv"
    csv.write_text("x1,x2,y\n" + "\n".join(f"{a},{b},{c}" for (a, b), c in zip(X, y, strict=True)) + "\n")
    plot_out, json_out = tmp_path / "out.svg", tmp_path / "out.json"
    code, out, err = overparam(
        capsys,
        *("--data", str(csv), "--input-dim", "2", "--max-width", "3", "--lr", "0.05", "--trials", "500"),
        *("--plot", str(plot_out), "--json", str(json_out)),
    )
    assert code == 0, err
    assert ET.parse(plot_out).getroot().tag.endswith("svg")
    payload = json.loads(json_out.read_text())
    data = load_csv(csv, 2)
    for row in payload["widths"]:
        dyn = lnn.lnn_dynamics(data, row["width"], 0.05)
        assert row["halting_time"] is None  # two rates: the halting time depends on the init
        assert row["halting_time_bounds"] == list(dyn.halting_time_bounds(1e-3))
        low, high = row["halting_time_bounds"]
        assert low <= row["mc_halting_time_mean"] <= high


def test_inverse_width_scaling_makes_halting_time_width_independent(capsys, tmp_path):
    json_out = tmp_path / "out.json"
    code, _, err = overparam(
        capsys, "--lr-scaling", "inverse-width", "--lr", "0.3", "--max-width", "10", "--trials", "200",
        "--json", str(json_out),
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(json_out.read_text())
    halting = {row["halting_time"] for row in payload["widths"]} | {
        row["mc_halting_time_mean"] for row in payload["widths"]
    }
    assert halting == {lnn.lnn_dynamics(builtin_dataset(), 1, 0.3).halting_time(1e-3)}
    assert payload["divergence_width"] is None and all(row["converges"] for row in payload["widths"])


def test_trainable_second_layer_has_no_closed_form_columns(capsys, tmp_path):
    json_out = tmp_path / "out.json"
    code, out, err = overparam(
        capsys, "--train-second-layer", "--max-width", "3", "--lr", "0.05", "--trials", "300",
        "--json", str(json_out),
    )  # fmt: skip
    assert code == 0, err
    assert "TRAINABLE second layer" in out and "no closed form" in out
    payload = json.loads(json_out.read_text())
    for row in payload["widths"]:
        assert row["rho"] is None and row["expected_distance"] is None and row["halting_time"] is None
        assert row["mc_distance_mean"] > 0 and math.isfinite(row["mc_halting_time_mean"])
    assert payload["options"]["train_second_layer"] is True


def test_halting_time_exponent_is_fitted_where_wider_converges_faster(capsys, tmp_path):
    json_out = tmp_path / "out.json"
    code, out, err = overparam(capsys, "--trials", "200", "--json", str(json_out))
    assert code == 0, err
    exponents = json.loads(json_out.read_text())["exponents"]
    # built-in data, lr 0.1: T = 15, 5, 4, 10, 52 for K = 1..5; the fastest width is 3
    assert exponents["fitted_widths"] == [1, 2, 3, 4, 5]
    assert exponents["halting_time_fitted_widths"] == [1, 2, 3]
    slope = np.polyfit(np.log([1, 2, 3]), np.log([15, 5, 4]), 1)[0]
    assert exponents["halting_time"] == pytest.approx(-slope) and exponents["halting_time"] > 1
    assert exponents["mc_halting_time"] == pytest.approx(exponents["halting_time"])
    # over every converging width the two branches mix: a negative "exponent", reported under its own key
    assert exponents["halting_time_all_converging"] == pytest.approx(-0.458, abs=1e-3)
    assert "the branch where wider converges faster" in " ".join(out.split())
    code, _, err = overparam(
        capsys, "--trials", "100", "--lr-scaling", "inverse-width", "--max-width", "6",
        "--json", str(json_out),
    )  # fmt: skip
    assert code == 0, err
    exponents = json.loads(json_out.read_text())["exponents"]
    assert exponents["halting_time_fitted_widths"] == [1, 2, 3, 4, 5, 6]  # every width ties
    assert exponents["halting_time"] == pytest.approx(0.0, abs=1e-12)


def test_same_seed_same_json(capsys, tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for path in (first, second):
        code, _, err = overparam(
            capsys, "--max-width", "4", "--trials", "300", "--seed", "9", "--json", str(path)
        )
        assert code == 0, err
    assert first.read_text() == second.read_text()


def test_the_command_does_not_import_torch_or_matplotlib():
    script = (
        "import sys\n"
        "import overparam_theory\n"
        "from overparam_cli.main import run\n"
        "try:\n"
        "    run(['theory', 'lnn', '--max-width', '3', '--trials', '100'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "heavy = ('torch', 'matplotlib', 'sympy', 'mpmath', 'scipy.integrate', 'scipy.optimize')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # no torch ever; matplotlib only for --plot; sympy is not needed for this command, nor are mpmath,
    # scipy.integrate and scipy.optimize for the default (ball) law: ~0.3 s of start-up time
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_importing_the_error_type_stays_light():
    """Every command imports overparam_theory.errors: that must not pull in the closed forms (scipy)."""
    script = (
        "import sys\n"
        "from overparam_theory.errors import InputError\n"
        "import overparam_cli.main\n"
        "print(sorted(m for m in ('scipy', 'mpmath', 'overparam_theory.lnn') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
