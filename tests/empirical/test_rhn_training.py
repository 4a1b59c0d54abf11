"""A few SGD steps of truncated BPTT on the committed Shakespeare excerpt reduce the training loss."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from overparam_empirical.data import CharDataset, epoch_batches, eval_batches, load_text
from overparam_empirical.models import RHNLanguageModel

FIXTURES = Path(__file__).resolve().parents[1] / "data"


def _mean_loss(model, tokens, batch, seq):
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in eval_batches(tokens, batch, seq):
            logits, _ = model(torch.from_numpy(x))
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1), reduction="sum"
            ).item()
            count += y.size
    return total / count


@pytest.mark.parametrize("cell", ["fast", "naive"])
def test_sgd_reduces_training_loss(cell):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    data = CharDataset.build(load_text(FIXTURES / "shakespeare_hamlet_excerpt.txt"), 1.0)
    model = RHNLanguageModel(data.vocab_size, 32, depth=3, cell=cell)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    before = _mean_loss(model, data.train, 8, 50)
    state = None
    for batch in itertools.islice(epoch_batches(data.train, 8, 50), 40):
        if batch.starts_epoch or state is None:
            state = model.initial_state(8)
        logits, state = model(torch.from_numpy(batch.x), state.detach())
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, data.vocab_size), torch.from_numpy(batch.y).reshape(-1)
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    after = _mean_loss(model, data.train, 8, 50)
    assert before > 3.5  # ≈ log(vocab) at the start
    assert after < before - 0.5, (before, after)
