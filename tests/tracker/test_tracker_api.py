"""Group assignment, schedules, bad use (clear InputError), output formats, context-manager form."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from tracker_reference import MLP, LSTMCharLM, RHNLike, loss_of, make_batch

from overparam_empirical.tracker import (
    TraversalTracker,
    assign_groups,
    parse_schedule,
    release_snapshot_memory,
)
from overparam_theory.errors import InputError

torch.set_num_threads(1)


def one_update(model, kind="lstm", optimizer=None, seed=0):
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    loss_of(kind, model, make_batch(kind, torch.Generator().manual_seed(seed))).backward()
    optimizer.step()
    return optimizer


# ---------------------------------------------------------------------------------------- groups
def test_patterns_override_the_automatic_rule():
    model = LSTMCharLM()
    assignment = assign_groups(model, {"softmax": ["lstm.*_hh_*"], "embedding": ["decoder.bias"]})
    assert assignment.tracked["softmax"] == ["lstm.weight_hh_l0", "lstm.bias_hh_l0", "decoder.weight"]
    assert assignment.tracked["embedding"] == ["embed.weight", "decoder.bias"]
    assert assignment.tracked["hidden"] == ["lstm.weight_ih_l0", "lstm.bias_ih_l0"]


def test_model_traversal_groups_takes_precedence_and_patterns_beat_it():
    class Declared(MLP):
        def traversal_groups(self):
            return {"embedding": ["first.weight"], "softmax": ["second.weight"]}

    model = Declared()
    assignment = assign_groups(model)
    assert assignment.tracked["embedding"] == ["first.weight"]
    assert assignment.tracked["softmax"] == ["second.weight", "head.weight", "head.bias"]
    assert assignment.tracked["hidden"] == ["first.bias", "second.bias"]
    overridden = assign_groups(model, {"hidden": ["first.weight"]})
    assert "embedding" not in overridden.tracked


def test_tied_weight_counts_as_embedding():
    model = LSTMCharLM(width=4, embed=4)
    model.decoder.weight = model.embed.weight
    assignment = assign_groups(model)
    assert assignment.tracked["embedding"] == ["embed.weight"]
    assert assignment.tracked["softmax"] == ["decoder.bias"]


def test_project_rhn_model_declares_its_groups():
    rhn = pytest.importorskip("overparam_empirical.models.rhn")
    model = rhn.RHNLanguageModel(vocab_size=13, width=8, depth=2)
    tracked = assign_groups(model).tracked
    assert set(tracked) == {"embedding", "hidden", "softmax"}
    assert sum(len(v) for v in tracked.values()) == len(list(model.parameters()))


@pytest.mark.parametrize(
    "groups, message",
    [
        ({"decoder": ["decoder.*"]}, "unknown group 'decoder'"),
        ({"all": ["decoder.*"]}, "cannot be assigned"),
        ({"softmax": ["nothing.*"]}, "matches no parameter name"),
        ({"softmax": ["decoder.*"], "hidden": ["decoder.bias"]}, "matches patterns of both"),
        ({"softmax": [3]}, "is not a string"),
        (["decoder.*"], "must be a dict"),
    ],
)
def test_bad_group_specifications(groups, message):
    with pytest.raises(InputError, match=message):
        TraversalTracker(LSTMCharLM(), groups=groups)


def test_bad_traversal_groups_method():
    class Bad(MLP):
        def traversal_groups(self):
            return {"hidden": ["no.such.weight"]}

    with pytest.raises(InputError, match="unknown parameter 'no.such.weight'"):
        TraversalTracker(Bad())


def test_model_without_parameters_or_all_frozen():
    with pytest.raises(InputError, match="has no parameters"):
        TraversalTracker(nn.ReLU())
    model = MLP()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(InputError, match="no trainable parameters"):
        TraversalTracker(model)
    with pytest.raises(InputError, match="needs a torch.nn.Module"):
        TraversalTracker({"w": torch.zeros(3)})


# ---------------------------------------------------------------------------------------- schedules
def test_schedules():
    every = parse_schedule("every:4")
    assert [t for t in range(13) if every(t)] == [0, 4, 8, 12]
    assert [t for t in range(7) if parse_schedule(3)(t)] == [0, 3, 6]
    log = parse_schedule("log:10")
    tracked = [t for t in range(100_000) if log(t)]
    assert tracked[:8] == [0, 1, 2, 3, 4, 5, 7, 9]
    per_decade = [sum(1 for t in tracked if 10**d <= t + 1 < 10 ** (d + 1)) for d in range(2, 5)]
    assert per_decade == [10, 10, 10]
    assert log(9) and not log(8)  # out-of-order queries still answer correctly
    custom = parse_schedule(lambda t: t in (2, 5))
    assert [t for t in range(8) if custom(t)] == [2, 5]


@pytest.mark.parametrize("bad", ["every:0", "log:", "sometimes", "every:-1", 0, True, 2.5])
def test_bad_schedules(bad):
    with pytest.raises(InputError, match="schedule"):
        parse_schedule(bad)


# ---------------------------------------------------------------------------------------- bad use
def test_step_before_any_backward():
    tracker = TraversalTracker(LSTMCharLM())
    with pytest.raises(InputError, match="no tracked parameter has a gradient"):
        tracker.step()


def test_step_after_backward_but_before_optimizer_step():
    model = LSTMCharLM()
    tracker = TraversalTracker(model)
    loss_of("lstm", model, make_batch("lstm", torch.Generator().manual_seed(0))).backward()
    with pytest.raises(InputError, match="weights have not changed"):
        tracker.step()
    # the failed call left no trace: once the optimizer has stepped, tracking works
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    tracker.step()
    assert tracker.steps == 1 and tracker.records()[0]["step"] == 0


def test_no_op_first_update_allowed_when_asked():
    model = MLP()
    tracker = TraversalTracker(model, check_first_step=False)
    one_update(model, "mlp", torch.optim.SGD(model.parameters(), lr=0.0))
    tracker.step()
    assert tracker.records()[-1]["step_size"] == 0.0


def test_zero_grad_before_step_is_reported():
    model = MLP()
    optimizer = one_update(model, "mlp")
    tracker = TraversalTracker(model, check_first_step=False)
    optimizer.zero_grad(set_to_none=True)
    with pytest.raises(InputError, match="before optimizer.zero_grad"):
        tracker.step()


def test_lifecycle_errors(tmp_path):
    model = MLP()
    tracker = TraversalTracker(model)
    with pytest.raises(InputError, match="before any tracker.step"):
        tracker.finalize()
    one_update(model, "mlp")
    tracker.step()
    with pytest.raises(InputError, match="report_validation"):
        tracker.finalize(w_star="best")
    with pytest.raises(InputError, match="w_star must be"):
        tracker.finalize(w_star="smallest")
    with pytest.raises(InputError, match="no entry for tracked parameter 'head.bias'"):
        tracker.finalize(w_star={k: v for k, v in model.state_dict().items() if k != "head.bias"})
    with pytest.raises(InputError, match="has shape"):
        tracker.finalize(w_star={**model.state_dict(), "head.bias": torch.zeros(5)})
    with pytest.raises(InputError, match="does not exist"):
        tracker.to_json(tmp_path / "missing" / "t.json")
    tracker.finalize()
    with pytest.raises(InputError, match="already called"):
        tracker.finalize()
    with pytest.raises(InputError, match="after finalize"):
        tracker.step()
    with pytest.raises(InputError, match="after finalize"):
        tracker.report_validation(1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ae_method": "sketch"}, "ae_method must be one of"),
        ({"ae_method": "reference"}, "needs reference="),
        ({"reference": {}}, "only used with ae_method='reference'"),
        ({"ae_method": "none", "snapshot_dir": "/tmp"}, "only used with ae_method='snapshots'"),
        ({"ae_method": "reference", "reference": {"first.weight": torch.zeros(7, 5)}}, "no entry"),
        ({"ae_method": "reference", "reference": 3}, "state dict or an nn.Module"),
        ({"snapshot_memory_bytes": -1}, "budget"),
        ({"chunk_elements": -1}, "chunk_elements"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        TraversalTracker(MLP(), **kwargs)


def test_reference_method_refuses_another_w_star():
    model = MLP()
    tracker = TraversalTracker(model, ae_method="reference", reference=MLP())
    one_update(model, "mlp")
    tracker.step()
    with pytest.raises(InputError, match="W\\* is the reference"):
        tracker.finalize(w_star=model.state_dict())


# ---------------------------------------------------------------------------------------- outputs
def run_short(tmp_path=None, **kwargs):
    torch.manual_seed(0)
    model = RHNLike()
    tracker = TraversalTracker(model, **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for t in range(5):
        one_update(model, "rhn", optimizer, seed=t)
        tracker.step()
        tracker.report_validation(torch.tensor(3.0 - 0.1 * t))
    return model, tracker


def test_records_summary_and_json_round_trip(tmp_path):
    _, tracker = run_short()
    before = tracker.summary()
    assert before["all"]["yin_rel_residual"] is None and before["all"]["mean_ae"] is None
    assert all(r["ae_angle"] is None for r in tracker.records())
    tracker.finalize(w_star="best")
    path = tracker.to_json(tmp_path / "traversal.json")
    document = json.loads(path.read_text())
    assert document["config"]["schema_version"] == 1
    assert document["config"]["best_validation"]["step"] == 5
    assert document["config"]["tracked_steps"] == [0, 1, 2, 3, 4]
    assert document["records"] == tracker.records()
    assert document["summary"] == tracker.summary()
    assert set(document["summary"]) == {"embedding", "hidden", "softmax", "all"}
    row = document["records"][-1]
    assert set(row) == {
        "step", "group", "distance", "relative_distance", "step_size", "grad_norm", "path_length",
        "as_angle", "distance_to_star", "ae_angle", "ae_paper", "ae_paper_ratio",
    }  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["traversal.json"]  # no temporary left behind
    table = tracker.to_records()
    assert sum(r["kind"] == "step" for r in table) == 20
    summaries = [r for r in table if r["kind"] == "summary"]
    assert [r["group"] for r in summaries] == ["embedding", "hidden", "softmax", "all"]
    assert all(not isinstance(v, list) for r in summaries for v in r.values())


def test_angles_at_step_zero_are_undefined_and_excluded_from_means():
    _, tracker = run_short()
    summary = tracker.finalize()
    first = [r for r in tracker.records() if r["step"] == 0]
    assert all(r["as_angle"] is None and r["distance"] == 0.0 for r in first)
    later = [r["as_angle"] for r in tracker.records() if r["group"] == "all" and r["step"] > 0]
    assert summary["all"]["mean_as"] == pytest.approx(sum(later) / len(later))
    # W* = final weights: Ae is defined at every tracked step (W_t ≠ W_T for t < T)
    assert all(r["ae_angle"] is not None for r in tracker.records())


def test_context_manager_finalizes_with_final_weights():
    model = MLP()
    with TraversalTracker(model, ae_method="none") as tracker:
        for seed in range(3):
            one_update(model, "mlp", seed=seed)
            tracker.step()
    assert tracker.finalized
    summary = tracker.summary()
    assert summary["all"]["w_star"] == "final" and summary["all"]["yin_rel_residual"] < 1e-12
    assert summary["all"]["mean_ae"] is None


def test_context_manager_cleans_up_on_error(tmp_path):
    model = MLP()
    with pytest.raises(RuntimeError, match="boom"):
        with TraversalTracker(model, snapshot_dir=tmp_path, snapshot_memory_bytes=0) as tracker:
            for seed in range(3):
                one_update(model, "mlp", seed=seed)
                tracker.step()
            raise RuntimeError("boom")
    assert not tracker.finalized
    assert list(tmp_path.iterdir()) == []


def test_diverged_weights_are_recorded_not_raised():
    model = MLP()
    tracker = TraversalTracker(model)
    one_update(model, "mlp")
    tracker.step()
    with torch.no_grad():
        model.head.weight.fill_(math.inf)
    tracker.step()
    summary = tracker.finalize()
    assert summary["softmax"]["final_distance"] is None
    assert summary["softmax"]["yin_rel_residual"] is None
    json.dumps(tracker.to_dict(), allow_nan=False)


def test_summary_before_and_after_finalize_agree_on_path():
    _, tracker = run_short(ae_method="none")
    before = tracker.summary()
    after = tracker.finalize()
    for group in before:
        for key in ("path_length", "final_distance", "sum_step_sq", "mean_as", "n_params"):
            assert after[group][key] == before[group][key]


# ---------------------------------------------------------------------------------------- checkpoints
def _resumable_run(split: int | None, ae_method: str, steps: int = 7):
    """Train an RHN-like model; with ``split``, checkpoint after that many steps and resume afresh."""
    import io

    torch.manual_seed(0)
    model = RHNLike()
    reference = {k: v + 0.01 for k, v in model.state_dict().items()}
    kwargs = {"schedule": "every:2", "ae_method": ae_method}
    if ae_method == "reference":
        kwargs["reference"] = reference
    tracker = TraversalTracker(model, **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for t in range(steps):
        if t == split:
            saved = io.BytesIO()
            torch.save(
                {"model": model.state_dict(), "opt": optimizer.state_dict(), "tracker": tracker.state_dict()},
                saved,
            )
            saved.seek(0)
            checkpoint = torch.load(saved, weights_only=True)
            torch.manual_seed(123)
            model = RHNLike()  # a new process: fresh model, optimizer and tracker
            tracker = TraversalTracker(model, **kwargs)
            model.load_state_dict(checkpoint["model"])
            optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
            optimizer.load_state_dict(checkpoint["opt"])
            tracker.load_state_dict(checkpoint["tracker"])
        one_update(model, "rhn", optimizer, seed=t)
        tracker.step()
        tracker.report_validation(float((t - 3) ** 2))
    tracker.finalize(w_star=None if ae_method == "reference" else "best")
    return tracker


@pytest.mark.parametrize("ae_method", ["snapshots", "reference"])
def test_checkpoint_and_resume_gives_identical_results(ae_method):
    straight = _resumable_run(None, ae_method)
    resumed = _resumable_run(3, ae_method)
    assert resumed.records() == straight.records()
    assert resumed.summary() == straight.summary()
    assert resumed.config() == straight.config()


def test_resume_into_a_different_tracker_is_refused():
    model = MLP()
    tracker = TraversalTracker(model)
    one_update(model, "mlp")
    tracker.step()
    state = tracker.state_dict()
    with pytest.raises(InputError, match="different ae_method"):
        TraversalTracker(model, ae_method="none").load_state_dict(state)
    with pytest.raises(InputError, match="different groups"):
        TraversalTracker(model, groups={"softmax": ["second.*"]}).load_state_dict(state)
    with pytest.raises(InputError, match="fresh tracker"):
        tracker.load_state_dict(state)
    with pytest.raises(InputError, match="not a traversal tracker state"):
        TraversalTracker(model).load_state_dict({"version": 99})


# ---------------------------------------------------------------------------------------- snapshot memory
def test_snapshot_memory_released_by_finalize_is_reused_with_identical_results():
    from overparam_empirical.tracker import snapshots

    release_snapshot_memory()
    _, first = run_short()
    first.finalize()
    pooled = {buffer.data_ptr() for _, buffer in snapshots._pool}
    assert pooled, "finalize() should hand the snapshot buffers to the process pool"
    _, second = run_short()
    assert {buffer.data_ptr() for _, buffer in second._snapshots._buffers} <= pooled
    second.finalize()
    assert second.records() == first.records()
    assert second.summary() == first.summary()
    assert release_snapshot_memory() >= len(pooled) * snapshots._CHUNK_BYTES
    assert release_snapshot_memory() == 0


def test_snapshot_pool_is_bounded(monkeypatch):
    from overparam_empirical.tracker import snapshots

    release_snapshot_memory()
    monkeypatch.setattr(snapshots, "POOL_LIMIT_BYTES", snapshots._CHUNK_BYTES)
    stores = [snapshots.SnapshotStore(10, torch.float32, torch.device("cpu"), 2**20) for _ in range(3)]
    for store in stores:
        store.append(torch.ones(10), torch.zeros(10))
    for store in stores:
        store.close()
    assert len(snapshots._pool) == 1
    assert release_snapshot_memory() == snapshots._CHUNK_BYTES


def test_snapshot_pool_hands_out_the_most_written_buffer_first():
    """Pages written before are mapped: reusing the buffer written furthest saves the most page faults."""
    from overparam_empirical.tracker import snapshots

    release_snapshot_memory()
    n = 2**20  # 8 MiB per float32 snapshot, 8 per 64 MiB chunk

    def store():
        return snapshots.SnapshotStore(n, torch.float32, torch.device("cpu"), 2**30)

    full, partial = store(), store()
    for _ in range(full.chunk_len + 1):  # one full chunk, one with a single snapshot
        full.append(torch.ones(n), torch.zeros(n))
    partial.append(torch.ones(n), torch.zeros(n))
    full.close()
    partial.close()
    one = 8 * 2**20
    assert sorted(extent for extent, _ in snapshots._pool) == [one, one, full.chunk_len * one]
    third = store()
    third.append(torch.ones(n), torch.zeros(n))
    assert third._buffers[0][0] == full.chunk_len * one
    third.close()
    release_snapshot_memory()
