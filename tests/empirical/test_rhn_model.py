"""RHN language model: parameter count, shapes, state carry-over, initialisation, groups, determinism."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from overparam_empirical.models import RHNLanguageModel, rhn_parameter_count
from overparam_theory.errors import InputError


@settings(max_examples=60, deadline=None)
@given(
    vocab=st.integers(1, 40),
    width=st.integers(1, 24),
    depth=st.integers(1, 6),
    embedding=st.one_of(st.none(), st.integers(1, 24)),
)
def test_parameter_count_formula_equals_real_count(vocab, width, depth, embedding):
    model = RHNLanguageModel(vocab, width, depth, embedding, cell="naive")
    assert rhn_parameter_count(vocab, width, depth, embedding) == sum(p.numel() for p in model.parameters())
    assert model.parameter_count() == rhn_parameter_count(vocab, width, depth, embedding)


def test_parameter_count_reproduces_the_published_graph():
    # 1B-Words char-LM graph of the paper's group: hidden 2004, 98 characters, depth 10 -> about 88.8 M
    count = rhn_parameter_count(98, 2004, 10)
    assert count == 88_785_314 and round(count / 1e6, 1) == 88.8
    width, depth, vocab = 2004, 10, 98
    assert count == 2 * depth * width**2 + 2 * width**2 + (2 * vocab + 2 * depth) * width + vocab


@pytest.mark.parametrize("cell", ["naive", "fast"])
def test_shapes_and_zero_initial_state(cell):
    torch.manual_seed(0)
    model = RHNLanguageModel(11, 8, depth=3, embedding_size=5, cell=cell)
    tokens = torch.randint(0, 11, (4, 9))
    logits, state = model(tokens)
    assert logits.shape == (4, 9, 11) and state.shape == (4, 8)
    again, _ = model(tokens, torch.zeros(4, 8))
    assert torch.equal(logits, again)


@pytest.mark.parametrize("cell", ["naive", "fast"])
def test_state_carry_over_equals_one_long_sequence(cell):
    torch.manual_seed(1)
    model = RHNLanguageModel(7, 6, depth=4, cell=cell).double()
    tokens = torch.randint(0, 7, (3, 12))
    whole, final = model(tokens)
    first, state = model(tokens[:, :5])
    second, state = model(tokens[:, 5:], state)
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-12)
    assert torch.allclose(state, final, atol=1e-12)


def test_state_matters():
    torch.manual_seed(2)
    model = RHNLanguageModel(7, 6, depth=2)
    tokens = torch.randint(0, 7, (2, 4))
    assert not torch.allclose(model(tokens)[0], model(tokens, torch.ones(2, 6))[0])


def test_initialisation_is_a_small_box_with_negative_transform_bias():
    torch.manual_seed(3)
    width = 16
    model = RHNLanguageModel(30, width, depth=3)
    bound = 1 / math.sqrt(width)
    for name, parameter in model.named_parameters():
        values = parameter.detach()
        if name.startswith("rhn.micro.") and name.endswith(".bias"):
            assert torch.all(values[width:] == -2.0) and values[:width].abs().max() <= bound
        else:
            assert values.abs().max() <= bound and values.std() > bound / 3, name
    custom = RHNLanguageModel(30, width, depth=3, transform_bias=0.0, init_range=0.01)
    assert custom.rhn.micro[0].bias[width:].abs().max() == 0 and custom.softmax.weight.abs().max() <= 0.01


def test_same_seed_same_weights_and_outputs():
    tokens = torch.randint(0, 20, (2, 6), generator=torch.Generator().manual_seed(0))
    runs = []
    for _ in range(2):
        torch.manual_seed(42)
        model = RHNLanguageModel(20, 10, depth=3)
        runs.append((model.state_dict(), model(tokens)[0]))
    assert all(torch.equal(runs[0][0][k], runs[1][0][k]) for k in runs[0][0])
    assert torch.equal(runs[0][1], runs[1][1])
    torch.manual_seed(43)
    assert not torch.equal(RHNLanguageModel(20, 10, depth=3).softmax.weight, runs[0][0]["softmax.weight"])


def test_state_dict_loads_into_either_cell():
    torch.manual_seed(4)
    fast = RHNLanguageModel(9, 5, depth=2, cell="fast")
    naive = RHNLanguageModel(9, 5, depth=2, cell="naive")
    naive.load_state_dict(fast.state_dict())
    tokens = torch.randint(0, 9, (2, 3))
    assert torch.allclose(fast(tokens)[0], naive(tokens)[0], atol=1e-6)
    assert sorted(fast.state_dict()) == sorted(naive.state_dict())


def test_module_names_and_traversal_groups_partition_the_parameters():
    model = RHNLanguageModel(9, 5, depth=3, embedding_size=4)
    assert {name for name, _ in model.named_children()} == {"embedding", "rhn", "softmax"}
    groups = model.traversal_groups()
    assert set(groups) == {"embedding", "hidden", "softmax"}
    listed = [name for names in groups.values() for name in names]
    assert sorted(listed) == sorted(name for name, _ in model.named_parameters())
    assert groups["embedding"] == ["embedding.weight"]
    assert groups["softmax"] == ["softmax.weight", "softmax.bias"]
    assert "rhn.input.weight" in groups["hidden"] and "rhn.micro.2.bias" in groups["hidden"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocab_size": 0, "width": 4}, "vocab_size"),
        ({"vocab_size": 5, "width": 0}, "width"),
        ({"vocab_size": 5, "width": 4, "depth": 0}, "depth"),
        ({"vocab_size": 5, "width": 4, "embedding_size": -1}, "embedding_size"),
        ({"vocab_size": 5, "width": 2.5}, "width"),
        ({"vocab_size": 5, "width": 4, "cell": "cuda"}, "cell"),
        ({"vocab_size": 5, "width": 4, "init_range": 0.0}, "init_range"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        RHNLanguageModel(**kwargs)
    if "cell" not in kwargs and "init_range" not in kwargs:
        with pytest.raises(InputError, match=message):
            rhn_parameter_count(
                kwargs["vocab_size"], kwargs["width"], kwargs.get("depth", 10), kwargs.get("embedding_size")
            )


def test_bad_forward_arguments():
    model = RHNLanguageModel(5, 4, depth=2)
    with pytest.raises(InputError, match="tokens"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(InputError, match="state"):
        model(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 4))
    with pytest.raises(InputError, match="at least one time step"):
        model(torch.zeros(2, 0, dtype=torch.long))
