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
from torch import nn
from tracker_reference import MODELS, BruteForce, loss_of, make_batch, make_optimizer, perturbed_state

from overparam_empirical.tracker import TraversalTracker, fused
from overparam_theory.errors import InputError

torch.set_num_threads(1)
LANES = fused.LANES
COLUMNS = ("step_sq", "w_a_step", "w_b_step", "grad_sq", "grad_init", "grad_ref", "init_sq", "ref_sq")


def numpy_values(w, new, grad, init, cur, groups, ref) -> np.ndarray:
    """The eight columns per group straight from their definitions, in float64 numpy."""
    w, v, g, w0 = (x.astype(np.float64) for x in (w, new, grad, init))
    bounds = np.cumsum([0] + [sum(sizes) for sizes in groups])
    out = np.zeros((len(groups) + 1, 8))
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


class Case:
    """Stored rows, the 'parameters' W_{t+1} and 'gradients' g_t as separate arrays (one slice per
    tensor, read by address like real parameters), and the layout: ``groups`` = tensor sizes per group."""

    def __init__(self, groups, dtype, seed, new=None, grad=None, rows=None):
        sizes = [size for group in groups for size in group]
        n = sum(sizes)
        rng = np.random.default_rng(seed)
        self.groups, self.dtype = groups, np.dtype(dtype)
        self.rows = rng.standard_normal((4, n)).astype(dtype) if rows is None else rows
        self.new = (self.rows[0] + 1e-3 * rng.standard_normal(n)).astype(dtype) if new is None else new
        self.grad = rng.standard_normal(n).astype(dtype) if grad is None else grad
        self.offsets = np.cumsum([0, *sizes], dtype=np.int64)
        self.group_tensors = np.cumsum([0] + [len(group) for group in groups], dtype=np.int64)

    def addresses(self, vector):
        return np.array(
            [vector[s:e].ctypes.data for s, e in zip(self.offsets[:-1], self.offsets[1:], strict=True)],
            dtype=np.int64,
        )

    def run(self, kind, cur, nxt, ref=None, snapshot=None):
        """Run a kernel; checks that it copied W_{t+1} into rows[nxt]; returns the values."""
        kernels = fused.kernels(self.dtype)
        values = np.zeros((len(self.groups) + 1, 8))
        self.rows[nxt] = np.nan
        layout = (self.offsets, self.group_tensors)
        params = self.addresses(self.new)
        if kind == "untracked":
            kernels["untracked"](params, self.rows, cur, nxt, *layout, values)
        else:
            mode = {"plain": fused.PLAIN, "snapshot": fused.SNAPSHOT, "reference": fused.REFERENCE}[kind]
            no_ref, no_snapshot = np.zeros(0), np.zeros((2, 0), self.dtype)
            kernels["tracked"](
                params,
                self.addresses(self.grad),
                self.rows,
                cur,
                nxt,
                *layout,
                mode,
                no_ref if ref is None else ref,
                no_snapshot if snapshot is None else snapshot,
                values,
            )
        assert self.rows[nxt].tobytes() == self.new.tobytes(), "W_{t+1} not copied into rows[nxt]"
        return values

    def expected(self, cur, ref=None):
        return numpy_values(self.rows[cur], self.new, self.grad, self.rows[fused.INIT], cur, self.groups, ref)


# Tensor sizes per group around the lane count: shorter than one block, exact blocks, a block plus a
# tail, several tensors per group.
LAYOUTS = [
    [[1]],
    [[LANES - 1], [1]],
    [[LANES], [2 * LANES, 3]],
    [[LANES + 1, 5], [3 * LANES + 7]],
    [[1000, 17], [4099, 64, 65], [2]],
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups", LAYOUTS)
def test_kernels_match_plain_float64(groups, dtype):
    case = Case(groups, dtype, seed=len(groups))
    n = case.rows.shape[1]
    ref = np.random.default_rng(1).standard_normal(n)
    for cur, nxt in ((fused.W_A, fused.W_B), (fused.W_B, fused.W_A)):
        snapshot = np.full((2, n), np.nan, dtype=dtype)
        got = {
            "untracked": case.run("untracked", cur, nxt),
            "plain": case.run("plain", cur, nxt),
            "snapshot": case.run("snapshot", cur, nxt, snapshot=snapshot),
            "reference": case.run("reference", cur, nxt, ref=ref),
        }
        expected = case.expected(cur, ref)
        # the snapshot holds (W_t, g_t) bit for bit
        assert snapshot.tobytes() == np.stack([case.rows[cur], case.grad]).tobytes()
        assert got["snapshot"].tobytes() == got["plain"].tobytes()
        without_ref = [0, 1, 2, 3, 4, 6]
        filled = {
            "untracked": [0, 1, 2],
            "plain": without_ref,
            "snapshot": without_ref,
            "reference": list(range(8)),
        }
        for kind, columns in filled.items():
            np.testing.assert_allclose(got[kind][:, columns], expected[:, columns], rtol=1e-12, atol=1e-300)
            others = [c for c in range(8) if c not in columns]
            assert not got[kind][:, others].any(), f"{kind} wrote columns it does not own"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finalize_kernel_matches_plain_float64(dtype):
    """⟨g_t, W_t − W*⟩ and ‖W_t − W*‖² per stored snapshot and group (the exact Ae of finalize())."""
    sizes = [LANES + 3, 7, 5 * LANES]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    rng = np.random.default_rng(8)
    pairs = rng.standard_normal((3, 2, int(bounds[-1]))).astype(dtype)
    star = rng.standard_normal(int(bounds[-1]))
    dots, squares = np.zeros((3, len(sizes) + 1)), np.zeros((3, len(sizes) + 1))
    fused.kernels(dtype)["star_sums"](pairs, bounds.astype(np.int64), star, dots, squares)
    for k in range(3):
        w, g = pairs[k].astype(np.float64)
        for j, (s, e) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            d = w[s:e] - star[s:e]
            assert dots[k, j] == pytest.approx(g[s:e] @ d, rel=1e-12)
            assert squares[k, j] == pytest.approx(d @ d, rel=1e-12)
        assert dots[k, -1] == pytest.approx(dots[k, :-1].sum(), rel=1e-15)
        assert squares[k, -1] == pytest.approx(squares[k, :-1].sum(), rel=1e-15)


def test_kernels_are_bitwise_deterministic_and_independent_of_alignment():
    """The summation order depends on element indices only: same bits wherever the data lies."""
    groups = [[3 * LANES + 5, 9], [6 * LANES - 1]]
    case = Case(groups, np.float32, seed=3)
    n = case.rows.shape[1]
    ref = np.random.default_rng(4).standard_normal(n)
    first = case.run("reference", 0, 1, ref=ref)
    again = case.run("reference", 0, 1, ref=ref)

    def shifted(array):  # the same values at an address offset by one float32 (4-byte aligned only)
        buffer = np.empty(array.size + 1, dtype=array.dtype)
        out = buffer[1:].reshape(array.shape)
        out[...] = array
        return out

    moved = Case(groups, np.float32, 0, shifted(case.new), shifted(case.grad), shifted(case.rows))
    assert moved.new.ctypes.data % 8 != case.new.ctypes.data % 8 or moved.new.ctypes.data % 16 != 0
    elsewhere = moved.run("reference", 0, 1, ref=shifted(ref))
    assert first.tobytes() == again.tobytes() == elsewhere.tobytes()


def test_differences_are_exact_for_float32():
    """Differences are formed in float64: one-ulp moves on large weights are measured exactly, for
    ‖Δ‖² and for the distance ‖W_t − W_0‖² (no cancellation as in ‖W_t‖² − 2⟨W_t, W_0⟩ + ‖W_0‖²)."""
    w0 = np.array([1e4, -3.0, 2.0**20, 0.1], dtype=np.float32)
    w = np.nextafter(w0, np.float32(np.inf))  # W_t: one float32 ulp from W_0
    new = np.nextafter(w, np.float32(-np.inf))  # W_{t+1}: back by one ulp
    rows = np.stack([w, np.zeros(4, np.float32), np.ones(4, np.float32), w0])
    case = Case([[4]], np.float32, 0, new=new, grad=np.ones(4, np.float32), rows=rows)
    values = case.run("plain", 0, 1)

    def exact_sq(a, b):
        return sum((Fraction(float(x)) - Fraction(float(y))) ** 2 for x, y in zip(a, b, strict=True))

    # every difference has ≤ 24 significant bits, so its square and these sums are exact in float64
    assert Fraction(values[0, fused.C_STEP_SQ]) == exact_sq(new, w)
    assert Fraction(values[0, fused.C_INIT_SQ]) == exact_sq(w, w0) > 0


def test_non_finite_weights_propagate():
    case = Case([[LANES], [2 * LANES]], np.float32, seed=5)
    case.new[7] = np.inf
    values = case.run("plain", 0, 1)
    assert math.isinf(values[0, 0]) and math.isfinite(values[1, 0]) and math.isinf(values[2, 0])
    case.new[7] = np.nan
    values = case.run("untracked", 0, 1)
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
        pairs = (np.arange(2 * 70, dtype=np.float32).reshape(1, 2, 70) / 7)
        dots, squares = np.zeros((1, 3)), np.zeros((1, 3))
        kernels["star_sums"](pairs, np.array([0, 65, 70]), np.linspace(0, 1, 70), dots, squares)
        sys.stdout.write(np.concatenate([dots, squares]).tobytes().hex())
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(HOME="/dev/null/home", XDG_CACHE_HOME="/dev/null/cache", PYTHONPATH=str(package))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=package, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pairs = np.arange(2 * 70, dtype=np.float32).reshape(1, 2, 70) / 7
    dots, squares = np.zeros((1, 3)), np.zeros((1, 3))
    fused.kernels(np.float32)["star_sums"](pairs, np.array([0, 65, 70]), np.linspace(0, 1, 70), dots, squares)
    assert bytes.fromhex(done.stdout) == np.concatenate([dots, squares]).tobytes()
    assert not (package / "__pycache__").is_dir()


class Awkward(nn.Module):
    """Parameters the fused kernel cannot read in place: a transposed (non-contiguous) weight, one
    float32 tensor among float64 ones (the store dtype is float64), plus a plain one."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.transposed = nn.Parameter(torch.randn(6, 4, generator=generator, dtype=torch.float64).t())
        self.single = nn.Parameter(torch.randn(4, generator=generator, dtype=torch.float32))
        self.plain = nn.Parameter(torch.randn(6, 3, generator=generator, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh((x * self.single.double()) @ self.transposed) @ self.plain


def test_parameters_and_gradients_not_readable_in_place_agree_with_torch():
    model = Awkward()
    assert not model.transposed.is_contiguous()
    trackers = {b: TraversalTracker(model, backend=b) for b in ("numba", "torch")}
    assert trackers["numba"].backend == "numba" and trackers["numba"].store_dtype == torch.float64
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    generator = torch.Generator().manual_seed(1)
    for step in range(6):
        optimizer.zero_grad()
        (model(torch.randn(5, 4, generator=generator, dtype=torch.float64)) ** 2).mean().backward()
        if step == 2:
            model.plain.grad = model.plain.grad.t().contiguous().t()  # a non-contiguous gradient
        optimizer.step()
        if step == 3:
            model.single.grad = None  # untouched by this step's loss (its update above still counts)
        if step == 4:
            model.plain.data = model.plain.data.clone()  # new storage: read from its new address
        for tracker in trackers.values():
            tracker.step()
    summaries = {b: t.finalize() for b, t in trackers.items()}
    for a, b in zip(trackers["numba"].records(), trackers["torch"].records(), strict=True):
        for key in a:
            assert_same_numbers(a[key], b[key], f"{a['group']}/t={a['step']}/{key}")
    for group, entry in summaries["numba"].items():
        for key, value in entry.items():
            assert_same_numbers(value, summaries["torch"][group][key], f"summary {group}/{key}")


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_a_resized_parameter_is_refused_not_read_out_of_bounds(backend):
    model = MODELS["mlp"]()
    tracker = TraversalTracker(model, backend=backend)
    optimizer = make_optimizer("sgd", model.parameters(), 0.1)
    generator = torch.Generator().manual_seed(1)
    loss_of("mlp", model, make_batch("mlp", generator)).backward()
    optimizer.step()
    tracker.step()
    model.head.weight.data = torch.zeros(2)  # 2 elements where the tracker laid out 21
    with pytest.raises(RuntimeError):
        tracker.step()
