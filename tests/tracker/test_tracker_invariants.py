"""Hypothesis invariants over random models, optimizers, schedules and W*."""

from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from overparam_empirical.tracker import TraversalTracker

torch.set_num_threads(1)


class RandomNet(nn.Module):
    def __init__(self, vocab: int, embed: int, widths: list[int], d_out: int, recurrent: bool) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed) if vocab else None
        d = embed if vocab else 3
        self.recurrent = nn.GRU(d, widths[0], batch_first=True) if recurrent else None
        d = widths[0] if recurrent else d
        self.hidden = nn.ModuleList()
        for width in widths:
            self.hidden.append(nn.Linear(d, width))
            d = width
        self.head = nn.Linear(d, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            x = self.embedding(x)
        if self.recurrent is not None:
            x, _ = self.recurrent(x)
        for layer in self.hidden:
            x = torch.tanh(layer(x))
        return self.head(x)


@st.composite
def scenarios(draw):
    return {
        "seed": draw(st.integers(0, 2**16)),
        "vocab": draw(st.sampled_from([0, 5])),
        "embed": draw(st.integers(1, 4)),
        "widths": draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)),
        "d_out": draw(st.integers(1, 3)),
        "recurrent": draw(st.booleans()),
        "optimizer": draw(st.sampled_from(["sgd", "momentum", "adam"])),
        "lr": draw(st.floats(1e-3, 0.5)),
        "steps": draw(st.integers(1, 9)),
        "schedule": draw(st.sampled_from(["every:1", "every:2", "every:3", "log:3"])),
        "w_star": draw(st.sampled_from(["final", "perturbed", "random", "initial"])),
        "star_scale": draw(st.floats(1e-4, 10.0)),
        "dtype": draw(st.sampled_from([torch.float32, torch.float64])),
        "backend": draw(st.sampled_from([("numba", None), ("torch", None), ("torch", 3)])),
    }


def run(s):
    torch.manual_seed(s["seed"])
    model = RandomNet(s["vocab"], s["embed"], s["widths"], s["d_out"], s["recurrent"]).to(s["dtype"])
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    backend, chunk = s["backend"]
    tracker = TraversalTracker(model, schedule=s["schedule"], chunk_elements=chunk, backend=backend)
    params = model.parameters()
    if s["optimizer"] == "adam":
        optimizer = torch.optim.Adam(params, lr=s["lr"])
    else:
        optimizer = torch.optim.SGD(params, lr=s["lr"], momentum=0.9 if s["optimizer"] == "momentum" else 0.0)
    for _ in range(s["steps"]):
        if s["vocab"]:
            x = torch.randint(0, s["vocab"], (2, 4))
        else:
            x = torch.randn(2, 4, 3, dtype=s["dtype"])
        optimizer.zero_grad()
        (model(x) ** 2).mean().backward()
        optimizer.step()
        tracker.step()
    if s["w_star"] == "final":
        w_star = None
    elif s["w_star"] == "initial":
        w_star = initial
    else:
        base = (
            model.state_dict()
            if s["w_star"] == "perturbed"
            else {k: torch.zeros_like(v) for k, v in initial.items()}
        )
        w_star = {k: v + s["star_scale"] * torch.randn_like(v) for k, v in base.items()}
    return tracker, tracker.finalize(w_star=w_star)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_traversal_invariants(s):
    tracker, summary = run(s)
    records = tracker.records()
    assert records
    for record in records:
        # a path is never shorter than the chord between its end points
        assert record["path_length"] >= record["distance"] * (1 - 1e-12) - 1e-15
        for key in ("as_angle", "ae_angle", "ae_paper"):
            value = record[key]
            assert value is None or 0.0 <= value <= math.pi
    for group, entry in summary.items():
        assert entry["path_length"] >= entry["final_distance"] * (1 - 1e-12) - 1e-15
        assert entry["yin_rel_residual"] <= 1e-6, (group, entry["yin_abs_residual"], entry["yin_lhs"])
        for key in ("mean_as", "mean_ae"):
            assert entry[key] is None or 0.0 <= entry[key] <= math.pi
    # the groups partition the parameters: squared norms add up to the 'all' ones
    groups = [g for g in summary if g != "all"]
    for field in ("distance", "step_size", "grad_norm", "distance_to_star"):
        by_step: dict[int, dict[str, float]] = {}
        for record in records:
            by_step.setdefault(record["step"], {})[record["group"]] = record[field]
        for values in by_step.values():
            parts = sum(values[g] ** 2 for g in groups)
            assert math.isclose(parts, values["all"] ** 2, rel_tol=1e-9, abs_tol=1e-24)
    final_parts = sum(summary[g]["final_distance"] ** 2 for g in groups)
    assert math.isclose(final_parts, summary["all"]["final_distance"] ** 2, rel_tol=1e-9, abs_tol=1e-24)
    assert sum(summary[g]["n_params"] for g in groups) == summary["all"]["n_params"]
