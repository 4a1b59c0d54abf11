"""The fast cell computes exactly the naive cell's function: values and gradients, several shapes."""

from __future__ import annotations

import pytest
import torch

from overparam_empirical.models import RHNLanguageModel
from overparam_empirical.models.rhn_fast import rhn_sequence_fast


def _values_and_grads(model, tokens, state, cell):
    model.cell = cell
    state = state.clone().requires_grad_(True)
    logits, final = model(tokens, state)
    # a loss that weights every output and the final state differently
    weights = torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).view_as(logits)
    loss = (
        (logits * weights).sum()
        + (final**2).sum()
        + torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1))
    )
    grads = torch.autograd.grad(loss, [state, *model.parameters()])
    return logits.detach(), final.detach(), grads


@pytest.mark.parametrize(
    "vocab, width, depth, embedding, batch, steps",
    [(13, 8, 10, 8, 3, 7), (5, 3, 1, 2, 1, 1), (20, 16, 3, 24, 4, 15), (7, 32, 5, None, 2, 40)],
)
def test_fast_equals_naive_float64(vocab, width, depth, embedding, batch, steps):
    torch.manual_seed(width + depth)
    model = RHNLanguageModel(vocab, width, depth, embedding).double()
    with torch.no_grad():  # gates away from near-carry, but not so large that the dynamics turn chaotic
        for parameter in model.parameters():
            parameter.normal_(0, 1.2 / width**0.5)
    tokens = torch.randint(0, vocab, (batch, steps))
    state = torch.randn(batch, width, dtype=torch.float64)
    naive = _values_and_grads(model, tokens, state, "naive")
    fast = _values_and_grads(model, tokens, state, "fast")
    assert torch.allclose(naive[0], fast[0], rtol=0, atol=1e-12)
    assert torch.allclose(naive[1], fast[1], rtol=0, atol=1e-12)
    for (name, _), g_naive, g_fast in zip(
        [("state", None), *model.named_parameters()], naive[2], fast[2], strict=True
    ):
        assert torch.allclose(g_naive, g_fast, rtol=1e-10, atol=1e-10), name


@pytest.mark.parametrize("width", [16, 64])
def test_fast_equals_naive_float32_at_default_init(width):
    torch.manual_seed(0)
    model = RHNLanguageModel(50, width, depth=10)
    tokens = torch.randint(0, 50, (4, 30))
    naive = _values_and_grads(model, tokens, torch.zeros(4, width), "naive")
    fast = _values_and_grads(model, tokens, torch.zeros(4, width), "fast")
    assert torch.allclose(naive[0], fast[0], atol=1e-6)
    for g_naive, g_fast in zip(naive[2], fast[2], strict=True):
        assert torch.allclose(g_naive, g_fast, atol=1e-6, rtol=1e-5)


def test_fast_function_passes_gradcheck():
    torch.manual_seed(5)
    steps, batch, width, depth = 4, 2, 3, 3
    projected = torch.randn(steps, batch, 2 * width, dtype=torch.float64, requires_grad=True)
    state = torch.randn(batch, width, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(2 * width, width, dtype=torch.float64, requires_grad=True) for _ in range(depth)]
    biases = [torch.randn(2 * width, dtype=torch.float64, requires_grad=True) for _ in range(depth)]

    def run(projected, state, *parameters):
        return rhn_sequence_fast(projected, state, parameters[:depth], parameters[depth:])

    assert torch.autograd.gradcheck(run, (projected, state, *weights, *biases))


def test_fast_cell_in_no_grad_evaluation():
    torch.manual_seed(6)
    model = RHNLanguageModel(9, 6, depth=3)
    tokens = torch.randint(0, 9, (2, 5))
    with torch.no_grad():
        fast, _ = model(tokens)
        model.cell = "naive"
        naive, _ = model(tokens)
    assert not fast.requires_grad and torch.allclose(fast, naive, atol=1e-6)


def test_double_backward_through_the_fast_cell_is_refused():
    torch.manual_seed(7)
    model = RHNLanguageModel(9, 4, depth=2)
    loss = model(torch.randint(0, 9, (2, 3)))[0].square().sum()
    grads = torch.autograd.grad(loss, list(model.parameters()), create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        sum(g.sum() for g in grads).backward()
