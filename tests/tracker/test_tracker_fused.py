"""The fused numba kernels: against plain float64 numpy, bitwise determinism, exact differences, the
numba and torch backends agreeing on training runs, backend choice and fallback, read-only installs."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from tracker_reference import MODELS, BruteForce, loss_of, make_batch, make_optimizer, perturbed_state

from overparam_empirical.tracker import TraversalTracker, fused
from overparam_theory.errors import InputError

torch.set_num_threads(1)
LANES = fused.LANES
COLUMNS = ("step_sq", "w_a_step", "w_b_step", "grad_sq", "grad_init", "grad_ref", "init_sq", "ref_sq")


def numpy_values(rows: np.ndarray, cur: int, nxt: int, bounds, ref) -> np.ndarray:
    """The eight columns per group straight from their definitions, in float64 numpy."""
    w, v, g, w0 = (rows[i].astype(np.float64) for i in (cur, nxt, fused.GRAD, fused.INIT))
    out = np.zeros((len(bounds), 8))
    for k, (s, e) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        delta, from_init = v[s:e] - w[s:e], w[s:e] - w0[s:e]
        column = {
            "step_sq": delta @ delta,
            "grad_sq": g[s:e] @ g[s:e],
            "grad_init": g[s:e] @ from_init,
            "init_sq": from_init @ from_init,
        }
        column["w_a_step" if cur == fused.W_A else "w_b_step"] = w[s:e] @ delta
        column["w_b_step" if cur == fused.W_A else "w_a_step"] = v[s:e] @ delta
        if ref is not None:
            from_ref = w[s:e] - ref[s:e]
            column["grad_ref"], column["ref_sq"] = g[s:e] @ from_ref, from_ref @ from_ref
        out[k] = [column.get(name, 0.0) for name in COLUMNS]
    out[-1] = out[:-1].sum(axis=0)
    return out


def kernel_values(kind: str, rows, cur, nxt, bounds, ref=None, snapshot=None) -> np.ndarray:
    kernels = fused.kernels(rows.dtype)
    values = np.zeros((len(bounds), 8))
    bounds = np.asarray(bounds, dtype=np.int64)
    if kind == "untracked":
        kernels["untracked"](rows, cur, nxt, bounds, values)
    elif kind == "tracked":
        kernels["tracked"](rows, cur, nxt, bounds, values)
    elif kind == "tracked_snapshot":
        kernels["tracked_snapshot"](rows, cur, nxt, bounds, snapshot, values)
    else:
        kernels["tracked_ref"](rows, cur, nxt, bounds, ref, values)
    return values


def random_rows(n: int, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((4, n)).astype(dtype)
    rows[1] = rows[0] + (1e-3 * rng.standard_normal(n)).astype(dtype)  # a small update, as in training
    return rows


# Group sizes around the lane count: shorter than one block, exact blocks, a block plus a tail.
LAYOUTS = [[1], [LANES - 1, 1], [LANES, 2 * LANES], [LANES + 1, 5, 3 * LANES + 7], [1000, 17, 4099]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", LAYOUTS)
def test_kernels_match_plain_float64(sizes, dtype):
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    rows = random_rows(int(bounds[-1]), dtype, seed=len(sizes))
    ref = np.random.default_rng(1).standard_normal(int(bounds[-1]))
    for cur, nxt in ((fused.W_A, fused.W_B), (fused.W_B, fused.W_A)):
        expected = numpy_values(rows, cur, nxt, bounds, ref)
        snapshot = np.full((2, rows.shape[1]), np.nan, dtype=dtype)
        got = {
            "untracked": kernel_values("untracked", rows, cur, nxt, bounds),
            "tracked": kernel_values("tracked", rows, cur, nxt, bounds),
            "tracked_snapshot": kernel_values("tracked_snapshot", rows, cur, nxt, bounds, snapshot=snapshot),
            "tracked_ref": kernel_values("tracked_ref", rows, cur, nxt, bounds, ref),
        }
        # the snapshot holds (W_t, g_t) bit for bit
        assert snapshot.tobytes() == np.stack([rows[cur], rows[fused.GRAD]]).tobytes()
        assert got["tracked_snapshot"].tobytes() == got["tracked"].tobytes()
        without_ref = [0, 1, 2, 3, 4, 6]
        filled = {
            "untracked": [0, 1, 2],
            "tracked": without_ref,
            "tracked_snapshot": without_ref,
            "tracked_ref": list(range(8)),
        }
        for kind, columns in filled.items():
            np.testing.assert_allclose(got[kind][:, columns], expected[:, columns], rtol=1e-12, atol=1e-300)
            others = [c for c in range(8) if c not in columns]
            assert not got[kind][:, others].any(), f"{kind} wrote columns it does not own"


def test_kernels_are_bitwise_deterministic_and_independent_of_alignment():
    """The summation order depends on element indices only: same bits wherever the data lies."""
    n = 10 * LANES + 13
    bounds = [0, 3 * LANES + 5, n]
    rows = random_rows(n, np.float32, seed=3)
    ref = np.random.default_rng(4).standard_normal(n)
    first = kernel_values("tracked_ref", rows, 0, 1, bounds, ref)
    again = kernel_values("tracked_ref", rows, 0, 1, bounds, ref)
    # the same values at a different address (offset by one float32, so 4-byte aligned only)
    buffer = np.empty(4 * n + 1, dtype=np.float32)
    shifted = buffer[1:].reshape(4, n)
    shifted[...] = rows
    moved = kernel_values("tracked_ref", shifted, 0, 1, bounds, ref.copy())
    assert first.tobytes() == again.tobytes() == moved.tobytes()


def test_differences_are_exact_for_float32():
    """W_{t+1} − W_t is formed in float64: a one-ulp update on a large weight is measured exactly."""
    w = np.array([1e4, -3.0, 2.0**20, 0.1], dtype=np.float32)
    v = np.nextafter(w, np.float32(np.inf))  # each weight moves by one float32 ulp
    rows = np.stack([w, v, np.zeros(4, np.float32), np.zeros(4, np.float32)])
    values = kernel_values("untracked", rows, 0, 1, [0, 4])
    exact_sq = sum((Fraction(float(b)) - Fraction(float(a))) ** 2 for a, b in zip(w, v, strict=True))
    # every difference has ≤ 24 significant bits, so its square and the sum are exact in float64
    assert Fraction(values[0, 0]) == exact_sq
    float32_sq = float(np.sum((v - w) ** 2, dtype=np.float32))
    assert float32_sq != float(exact_sq) or math.isclose(float32_sq, float(exact_sq))  # sanity only


def test_non_finite_weights_propagate():
    rows = random_rows(3 * LANES, np.float32, seed=5)
    rows[1, 7] = np.inf
    values = kernel_values("tracked", rows, 0, 1, [0, LANES, 3 * LANES])
    assert math.isinf(values[0, 0]) and math.isfinite(values[1, 0]) and math.isinf(values[2, 0])
    rows[1, 7] = np.nan
    values = kernel_values("untracked", rows, 0, 1, [0, LANES, 3 * LANES])
    assert math.isnan(values[0, 0]) and math.isfinite(values[1, 0])


# ----------------------------------------------------------------------------------- whole tracker
def train_pair(kind, optimizer, steps, kwargs, dtype=torch.float32):
    """The same run tracked by a numba and a torch tracker at once (both see identical weights)."""
    torch.manual_seed(0)
    model = MODELS[kind]().to(dtype)
    trackers = {b: TraversalTracker(model, backend=b, **kwargs) for b in ("numba", "torch")}
    opt = make_optimizer(optimizer, model.parameters(), 0.05)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        opt.zero_grad()
        x, y = make_batch(kind, generator)
        if kind == "mlp":
            x, y = x.to(dtype), y.to(dtype)
        loss_of(kind, model, (x, y)).backward()
        opt.step()
        for tracker in trackers.values():
            tracker.step()
    return model, trackers


def assert_same_numbers(a, b, what):
    if a is None or b is None or isinstance(a, str | list):
        assert a == b, what
    else:
        assert b == pytest.approx(a, rel=1e-11, abs=1e-14), what


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("schedule", ["every:1", "log:3"])
@pytest.mark.parametrize("ae_method", ["snapshots", "reference"])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_numba_and_torch_backends_agree(kind, ae_method, schedule, dtype):
    torch.manual_seed(0)
    kwargs = {"schedule": schedule, "ae_method": ae_method}
    if ae_method == "reference":
        kwargs["reference"] = perturbed_state(MODELS[kind]().to(dtype), 0.1, seed=2)
    model, trackers = train_pair(kind, "adam", 7, kwargs, dtype)
    star = None if ae_method == "reference" else perturbed_state(model, 0.05, seed=3)
    summaries = {b: t.finalize() if star is None else t.finalize(w_star=star) for b, t in trackers.items()}
    records = {b: t.records() for b, t in trackers.items()}
    assert len(records["numba"]) == len(records["torch"]) > 0
    for a, b in zip(records["numba"], records["torch"], strict=True):
        for key in a:
            assert_same_numbers(a[key], b[key], f"{a['group']}/t={a['step']}/{key}")
    for group, entry in summaries["numba"].items():
        for key, value in entry.items():
            assert_same_numbers(value, summaries["torch"][group][key], f"summary {group}/{key}")
        assert entry["yin_rel_residual"] <= 1e-12
    assert trackers["numba"].config()["backend"] == "numba"
    assert trackers["torch"].config()["backend"] == "torch"


def test_numba_backend_is_bitwise_reproducible():
    runs = []
    for _ in range(2):
        _, trackers = train_pair("rhn", "momentum", 6, {"schedule": "every:1"})
        trackers["numba"].finalize()
        runs.append((trackers["numba"].records(), trackers["numba"].summary()))
    assert runs[0] == runs[1]


def test_numba_matches_brute_force_on_a_large_group():
    """Groups of several thousand parameters (many lane blocks) against the plain-loop reference."""
    torch.manual_seed(0)
    model = MODELS["lstm"](width=48, embed=40)
    reference = BruteForce(model, model.groups)
    tracker = TraversalTracker(model, backend="numba")
    opt = make_optimizer("momentum", model.parameters(), 0.1)
    generator = torch.Generator().manual_seed(1)
    for _ in range(4):
        opt.zero_grad()
        loss_of("lstm", model, make_batch("lstm", generator)).backward()
        opt.step()
        tracker.step()
        reference.record_step()
    star = perturbed_state(model, 0.01, seed=5)
    summary = tracker.finalize(w_star=star)
    assert summary["hidden"]["n_params"] > 50 * LANES
    for record in tracker.records():
        expected = reference.metrics(record["step"], record["group"], star)
        for key in ("distance", "step_size", "grad_norm", "path_length", "distance_to_star"):
            assert record[key] == pytest.approx(expected[key], rel=1e-10), key
        for key in ("as_angle", "ae_angle"):
            if expected[key] is None or math.isnan(expected[key]):
                assert record[key] is None
            else:
                assert record[key] == pytest.approx(expected[key], abs=1e-8), key
    for group in reference.groups:
        lhs, rhs = reference.yin(group, star)
        assert summary[group]["yin_rhs"] == pytest.approx(rhs, rel=1e-9)
        assert summary[group]["yin_rel_residual"] <= 1e-10


# ----------------------------------------------------------------------------------- backend choice
def test_auto_backend_is_numba_on_cpu_for_float32_and_float64():
    assert TraversalTracker(MODELS["mlp"]()).backend == "numba"
    assert TraversalTracker(MODELS["mlp"]().double()).backend == "numba"
    assert TraversalTracker(MODELS["mlp"](), backend="torch").backend == "torch"


def test_half_precision_falls_back_to_torch_and_stays_exact():
    torch.manual_seed(0)
    model = MODELS["mlp"]().to(torch.bfloat16)
    with pytest.raises(InputError, match="backend='numba' is not available: numba has no CPU kernels"):
        TraversalTracker(model, backend="numba")
    tracker = TraversalTracker(model)
    assert tracker.backend == "torch" and tracker.store_dtype == torch.bfloat16
    reference = BruteForce(model, model.groups)
    opt = make_optimizer("sgd", model.parameters(), 0.3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        opt.zero_grad()
        x, y = make_batch("mlp", generator)
        loss_of("mlp", model, (x.to(torch.bfloat16), y.to(torch.bfloat16))).backward()
        opt.step()
        tracker.step()
        reference.record_step()
    for record in tracker.records():
        expected = reference.metrics(record["step"], record["group"], None)
        for key in ("distance", "step_size", "grad_norm", "path_length"):
            assert record[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-300), key


def test_unavailable_numba_falls_back_or_fails_clearly(monkeypatch):
    monkeypatch.setattr(fused, "kernels", lambda dtype: None)
    monkeypatch.setattr(fused, "unavailable_reason", lambda: "ModuleNotFoundError: No module named 'numba'")
    assert TraversalTracker(MODELS["mlp"]()).backend == "torch"
    with pytest.raises(InputError, match="not available: numba failed .*No module named 'numba'"):
        TraversalTracker(MODELS["mlp"](), backend="numba")


def test_bad_backend_name():
    with pytest.raises(InputError, match="backend must be one of auto, numba, torch"):
        TraversalTracker(MODELS["mlp"](), backend="cuda")


# ----------------------------------------------------------------------------------- installs
def test_read_only_install_compiles_in_memory(tmp_path):
    """No writable cache folder anywhere (source folder and home): numba's cache=True would refuse to
    decorate; the kernels must then compile in memory and give the same numbers."""
    package = tmp_path / "ro"
    package.mkdir()
    shutil.copy(Path(fused.__file__), package / "fused_copy.py")
    (package / "__pycache__").write_text("a file where numba wants its cache folder")
    script = textwrap.dedent(
        """
        import numpy as np, sys
        import fused_copy as f
        kernels = f.kernels(np.float32)
        assert kernels is not None, f.unavailable_reason()
        rows = np.arange(4 * 70, dtype=np.float32).reshape(4, 70) / 7
        values = np.zeros((3, 8))
        kernels["tracked"](rows, 0, 1, np.array([0, 65, 70]), values)
        sys.stdout.write(values.tobytes().hex())
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(HOME="/dev/null/home", XDG_CACHE_HOME="/dev/null/cache", PYTHONPATH=str(package))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=package, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = np.arange(4 * 70, dtype=np.float32).reshape(4, 70) / 7
    expected = kernel_values("tracked", rows, 0, 1, [0, 65, 70])
    assert bytes.fromhex(done.stdout) == expected.tobytes()
    assert not (package / "__pycache__").is_dir()
