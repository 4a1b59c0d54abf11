"""Every tracker metric against the brute-force reference, for three small models, SGD/momentum/Adam,
every group, both exact-Ae methods."""

from __future__ import annotations

import math

import pytest
import torch
from tracker_reference import MODELS, BruteForce, loss_of, make_batch, make_optimizer, perturbed_state

from overparam_empirical.tracker import TraversalTracker, assign_groups

torch.set_num_threads(1)
RTOL = 1e-9
FIELDS = ("distance", "relative_distance", "step_size", "grad_norm", "path_length", "as_angle")
STAR_FIELDS = ("distance_to_star", "ae_angle", "ae_paper_ratio", "ae_paper")
LR = {"sgd": 0.3, "momentum": 0.1, "adam": 0.03}


def assert_close(actual, expected, what):
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        assert actual is None, f"{what}: expected undefined, got {actual}"
        return
    assert actual is not None, f"{what}: got None, expected {expected}"
    # arccos is ill-conditioned near 0 and π (an angle of 1e-6 rad moves by ~1e-10 for a cosine
    # rounding of 1e-16), so angles get an absolute tolerance; everything else is relative.
    absolute = 1e-8 if what.endswith(("angle", "ae_paper")) else 1e-12
    assert actual == pytest.approx(expected, rel=RTOL, abs=absolute), what


def train(kind, optimizer, steps, tracker_kwargs, *, clip=None, seed=0, freeze=(), before_build=None):
    torch.manual_seed(seed)
    model = MODELS[kind]()
    for name, p in model.named_parameters():
        if name in freeze:
            p.requires_grad_(False)
    if before_build is not None:
        tracker_kwargs = {**tracker_kwargs, **before_build(model)}
    groups = {g: [n for n in names if n not in freeze] for g, names in model.groups.items()}
    reference = BruteForce(model, groups)
    tracker = TraversalTracker(model, **tracker_kwargs)
    opt = make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad], LR[optimizer])
    generator = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        opt.zero_grad()
        loss_of(kind, model, make_batch(kind, generator)).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        tracker.step()
        reference.record_step()
    return model, tracker, reference


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_automatic_groups_match_hand_written_groups(kind):
    model = MODELS[kind]()
    assert assign_groups(model).tracked == {g: names for g, names in model.groups.items() if names}


# (backend, chunk_elements): the fused numba pass, and the torch path whole and in chunks of 7, which
# splits every group into many chunks (the torch CPU path for large models).
BACKENDS = [("numba", None), ("torch", None), ("torch", 7)]


@pytest.mark.parametrize("backend, chunk", BACKENDS)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_metrics_match_brute_force_with_snapshots(kind, optimizer, backend, chunk):
    steps = 6
    kwargs = {"schedule": "every:1", "chunk_elements": chunk, "backend": backend}
    model, tracker, ref = train(kind, optimizer, steps, kwargs)
    assert tracker.backend == backend
    w_star = perturbed_state(model, 0.05, seed=3)
    summary = tracker.finalize(w_star=w_star)
    records = tracker.records()
    assert [r["step"] for r in records] == [t for t in range(steps) for _ in ref.groups]
    for record in records:
        expected = ref.metrics(record["step"], record["group"], w_star)
        for field in FIELDS + STAR_FIELDS:
            assert_close(
                record[field],
                expected[field],
                f"{kind}/{optimizer}/{record['group']}/t={record['step']}/{field}",
            )
    for group in ref.groups:
        lhs, rhs = ref.yin(group, w_star)
        assert summary[group]["yin_lhs"] == pytest.approx(lhs, rel=1e-9)
        assert summary[group]["yin_rhs"] == pytest.approx(rhs, rel=1e-9)
        assert summary[group]["yin_rel_residual"] <= 1e-10
        final = ref.vec(ref.weights[-1], group) - ref.vec(ref.weights[0], group)
        assert summary[group]["final_distance"] == pytest.approx(float(final.norm()), rel=RTOL)
        steps_norms = [
            float((ref.vec(ref.weights[t + 1], group) - ref.vec(ref.weights[t], group)).norm())
            for t in range(steps)
        ]
        assert summary[group]["path_length"] == pytest.approx(sum(steps_norms), rel=RTOL)
        assert summary[group]["mean_step_size"] == pytest.approx(sum(steps_norms) / steps, rel=RTOL)
        as_values = [ref.metrics(t, group, None)["as_angle"] for t in range(1, steps)]
        assert summary[group]["mean_as"] == pytest.approx(sum(as_values) / len(as_values), rel=RTOL)
        ae_values = [ref.metrics(t, group, w_star)["ae_angle"] for t in range(steps)]
        assert summary[group]["mean_ae"] == pytest.approx(sum(ae_values) / len(ae_values), rel=RTOL)


@pytest.mark.parametrize("backend, chunk", [("numba", None), ("torch", 5)])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_reference_method_matches_snapshots_and_brute_force(kind, backend, chunk):
    torch.manual_seed(0)
    w_star = perturbed_state(MODELS[kind](), 0.1, seed=7)  # an arbitrary fixed W*, known up front
    _, online, ref = train(
        kind,
        "adam",
        5,
        {"ae_method": "reference", "reference": w_star, "chunk_elements": chunk, "backend": backend},
    )
    _, stored, _ = train(kind, "adam", 5, {"ae_method": "snapshots"})
    online_summary = online.finalize()
    stored.finalize(w_star=w_star)
    for a, b in zip(online.records(), stored.records(), strict=True):
        expected = ref.metrics(a["step"], a["group"], w_star)
        for field in STAR_FIELDS:
            assert_close(a[field], expected[field], f"reference/{a['group']}/{field}")
            assert_close(b[field], a[field], f"snapshots vs reference/{a['group']}/{field}")
    assert online_summary["all"]["w_star"] == "reference"
    assert online_summary["all"]["yin_rel_residual"] <= 1e-10


def test_final_and_best_w_star():
    model, tracker, ref = train("lstm", "sgd", 6, {})
    # Made-up validation losses reported after each step; the lowest follows the 4th update (t = 3).
    losses = [5.0, 4.0, 3.0, 1.0, 2.0, 2.5]
    best_tracker_model, best_tracker, best_ref = train("lstm", "sgd", 0, {})
    opt = make_optimizer("sgd", best_tracker_model.parameters(), LR["sgd"])
    generator = torch.Generator().manual_seed(1)
    for t in range(6):
        opt.zero_grad()
        loss_of("lstm", best_tracker_model, make_batch("lstm", generator)).backward()
        opt.step()
        best_tracker.step()
        best_ref.record_step()
        best_tracker.report_validation(losses[t])
    best_tracker.finalize(w_star="best")
    w4 = best_ref.weights[4]  # reported after four updates, so it evaluated W_4
    for record in best_tracker.records():
        expected = best_ref.metrics(record["step"], record["group"], w4)
        assert_close(record["ae_angle"], expected["ae_angle"], f"best/{record['group']}/ae_angle")
    assert best_tracker.config()["best_validation"] == {"step": 4, "loss": 1.0}

    tracker.finalize()  # W* = final weights
    final = ref.weights[-1]
    for record in tracker.records():
        expected = ref.metrics(record["step"], record["group"], final)
        assert_close(record["ae_angle"], expected["ae_angle"], f"final/{record['group']}/ae_angle")
    assert tracker.summary()["all"]["distance_final_to_star"] == 0.0


@pytest.mark.parametrize("schedule, expected_steps", [("every:3", [0, 3, 6, 9]), ("log:4", [0, 1, 2, 5, 9])])
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_sparse_schedules_keep_every_step_sums_exact(schedule, expected_steps, backend):
    steps = 11
    model, tracker, ref = train("rhn", "momentum", steps, {"schedule": schedule, "backend": backend})
    w_star = perturbed_state(model, 0.02, seed=1)
    summary = tracker.finalize(w_star=w_star)
    records = tracker.records()
    assert sorted({r["step"] for r in records}) == expected_steps
    for record in records:
        expected = ref.metrics(record["step"], record["group"], w_star)
        for field in FIELDS + STAR_FIELDS:
            assert_close(record[field], expected[field], f"{schedule}/{record['group']}/{field}")
    for group in ref.groups:
        lhs, rhs = ref.yin(group, w_star)
        assert summary[group]["yin_rhs"] == pytest.approx(rhs, rel=1e-9)
        assert summary[group]["yin_rel_residual"] <= 1e-10
        assert summary[group]["n_tracked"] == len(expected_steps)


def test_gradient_clipping_records_the_clipped_gradient():
    _, tracker, ref = train("lstm", "sgd", 4, {}, clip=0.05)
    for record in tracker.records():
        expected = ref.metrics(record["step"], record["group"], None)
        assert_close(record["grad_norm"], expected["grad_norm"], "clipped grad norm")
        if record["group"] == "all":
            assert record["grad_norm"] <= 0.05 * (1 + 1e-6)


def test_frozen_parameters_are_excluded_and_reported():
    frozen = ("embed.weight", "decoder.bias")
    _, tracker, ref = train("lstm", "adam", 4, {}, freeze=frozen)
    summary = tracker.finalize()
    assert {r["group"] for r in tracker.records()} == {"hidden", "softmax", "all"}
    assert summary["embedding"] == {"n_params": 0, "parameters": [], "frozen_parameters": ["embed.weight"]}
    assert summary["softmax"]["frozen_parameters"] == ["decoder.bias"]
    assert summary["all"]["frozen_parameters"] == ["embed.weight", "decoder.bias"]
    assert summary["softmax"]["parameters"] == ["decoder.weight"]
    for record in tracker.records():
        expected = ref.metrics(record["step"], record["group"], ref.weights[-1])
        for field in FIELDS + ("ae_angle",):
            assert_close(record[field], expected[field], f"frozen/{record['group']}/{field}")


def test_spilled_snapshots_give_the_same_angles_and_file_is_removed(tmp_path):
    _, in_memory, _ = train("rhn", "adam", 7, {})
    _, spilled, _ = train("rhn", "adam", 7, {"snapshot_dir": tmp_path, "snapshot_memory_bytes": 0})
    assert spilled._snapshots.spilled > 0
    assert list(tmp_path.iterdir()), "the spill file should exist during training"
    in_memory.finalize()
    spilled.finalize()
    assert spilled.records() == in_memory.records()
    assert list(tmp_path.iterdir()) == []


def test_same_seed_gives_identical_records():
    _, first, _ = train("mlp", "adam", 5, {})
    _, second, _ = train("mlp", "adam", 5, {})
    first.finalize()
    second.finalize()
    assert first.records() == second.records()
    assert first.summary() == second.summary()


def test_sparse_embedding_gradients():
    def sparse(model):
        model.embed.sparse = True
        return {}

    _, tracker, ref = train("lstm", "sgd", 3, {}, before_build=sparse)
    for record in tracker.records():
        expected = ref.metrics(record["step"], record["group"], None)
        assert_close(record["grad_norm"], expected["grad_norm"], f"sparse/{record['group']}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    results = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = MODELS["mlp"]().double().to(device)
        tracker = TraversalTracker(model, snapshot_memory_bytes=0)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        generator = torch.Generator().manual_seed(1)
        for _ in range(5):
            opt.zero_grad()
            x, y = (v.double().to(device) for v in make_batch("mlp", generator))
            ((model(x) - y) ** 2).mean().backward()
            opt.step()
            tracker.step()
        tracker.finalize()
        results[device] = tracker.records()
    for a, b in zip(results["cpu"], results["cuda"], strict=True):
        for field in FIELDS + ("ae_angle",):
            if a[field] is None:
                assert b[field] is None
            else:
                assert b[field] == pytest.approx(a[field], rel=1e-9, abs=1e-12)
