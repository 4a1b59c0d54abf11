"""Small test models and a brute-force reference for the traversal metrics.

The reference keeps float64 copies of W_t and g_t of every step in plain Python lists and computes each
metric straight from its definition with loops over steps and groups — no flat buffers, no Gram
matrices, no rearranged Yin sums — so it shares no code path with the tracker.
"""

from __future__ import annotations

import math

import torch
from torch import nn

VOCAB = 11


class MLP(nn.Module):
    """Two hidden tanh layers and an output layer: no embedding group."""

    def __init__(self, d_in: int = 5, width: int = 7, d_out: int = 3) -> None:
        super().__init__()
        self.first = nn.Linear(d_in, width)
        self.second = nn.Linear(width, width)
        self.head = nn.Linear(width, d_out)
        self.groups = {
            "hidden": ["first.weight", "first.bias", "second.weight", "second.bias"],
            "softmax": ["head.weight", "head.bias"],
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.second(torch.tanh(self.first(x)))))


class LSTMCharLM(nn.Module):
    """Embedding + LSTM + output layer, like a character language model."""

    def __init__(self, width: int = 6, embed: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, embed)
        self.lstm = nn.LSTM(embed, width, batch_first=True)
        self.decoder = nn.Linear(width, VOCAB)
        self.groups = {
            "embedding": ["embed.weight"],
            "hidden": ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0"],
            "softmax": ["decoder.weight", "decoder.bias"],
        }

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.embed(tokens))
        return self.decoder(hidden)


class HighwayCell(nn.Module):
    """One recurrent highway step: `depth` micro-layers s ← h·t + s·(1 − t), the first one fed the input."""

    def __init__(self, embed: int, width: int, depth: int) -> None:
        super().__init__()
        self.input_h = nn.Linear(embed, width, bias=False)
        self.input_t = nn.Linear(embed, width, bias=False)
        self.state_h = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.state_t = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        for layer, (lin_h, lin_t) in enumerate(zip(self.state_h, self.state_t, strict=True)):
            pre_h, pre_t = lin_h(s), lin_t(s)
            if layer == 0:
                pre_h, pre_t = pre_h + self.input_h(x), pre_t + self.input_t(x)
            gate = torch.sigmoid(pre_t)
            s = torch.tanh(pre_h) * gate + s * (1 - gate)
        return s


class RHNLike(nn.Module):
    """Embedding + recurrent highway cell unrolled over time + output layer."""

    def __init__(self, width: int = 5, embed: int = 3, depth: int = 2) -> None:
        super().__init__()
        self.width = width
        self.embedding = nn.Embedding(VOCAB, embed)
        self.cell = HighwayCell(embed, width, depth)
        self.out = nn.Linear(width, VOCAB)
        hidden = ["cell.input_h.weight", "cell.input_t.weight"]
        for kind in ("state_h", "state_t"):
            for layer in range(depth):
                hidden += [f"cell.{kind}.{layer}.weight", f"cell.{kind}.{layer}.bias"]
        self.groups = {
            "embedding": ["embedding.weight"],
            "hidden": hidden,
            "softmax": ["out.weight", "out.bias"],
        }

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens)
        s = x.new_zeros(tokens.shape[0], self.width)
        outputs = []
        for step in range(tokens.shape[1]):
            s = self.cell(x[:, step], s)
            outputs.append(self.out(s))
        return torch.stack(outputs, dim=1)


MODELS = {"mlp": MLP, "lstm": LSTMCharLM, "rhn": RHNLike}


def make_batch(kind: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if kind == "mlp":
        x = torch.randn(8, 5, generator=generator)
        return x, torch.randn(8, 3, generator=generator)
    tokens = torch.randint(0, VOCAB, (3, 7), generator=generator)
    return tokens[:, :-1], tokens[:, 1:]


def loss_of(kind: str, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    out = model(x)
    if kind == "mlp":
        return ((out - y) ** 2).mean()
    return nn.functional.cross_entropy(out.reshape(-1, VOCAB), y.reshape(-1))


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(name)


class BruteForce:
    """Records float64 copies of W_t, g_t for every step and computes metrics from the definitions."""

    def __init__(self, model: nn.Module, groups: dict[str, list[str]]) -> None:
        self.model = model
        self.groups = {g: names for g, names in groups.items() if names}
        self.groups["all"] = [n for names in self.groups.values() for n in names]
        self.weights = [self._copy_weights()]  # W_0, W_1, ...
        self.grads: list[dict[str, torch.Tensor]] = []  # g_0, g_1, ...

    def _copy_weights(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().double().clone() for n, p in self.model.named_parameters()}

    def record_step(self) -> None:
        """Call after optimizer.step(): g_t is p.grad now, W_{t+1} the weights now."""
        grads = {}
        for n, p in self.model.named_parameters():
            grads[n] = (
                torch.zeros_like(p, dtype=torch.float64)
                if p.grad is None
                else p.grad.to_dense().double().clone()
            )
        self.grads.append(grads)
        self.weights.append(self._copy_weights())

    def vec(self, state: dict[str, torch.Tensor], group: str) -> torch.Tensor:
        return torch.cat([state[n].reshape(-1) for n in self.groups[group]])

    @staticmethod
    def angle(a: torch.Tensor, b: torch.Tensor) -> float:
        na, nb = float(a.norm()), float(b.norm())
        if na == 0 or nb == 0:
            return math.nan
        return math.acos(max(-1.0, min(1.0, float(a @ b) / (na * nb))))

    def metrics(self, t: int, group: str, w_star: dict[str, torch.Tensor] | None) -> dict[str, float]:
        w0 = self.vec(self.weights[0], group)
        wt = self.vec(self.weights[t], group)
        g = self.vec(self.grads[t], group)
        step = self.vec(self.weights[t + 1], group) - wt
        path = 0.0
        for s in range(t):
            path += float((self.vec(self.weights[s + 1], group) - self.vec(self.weights[s], group)).norm())
        out = {
            "distance": float((wt - w0).norm()),
            "relative_distance": float((wt - w0).norm()) / float(w0.norm()),
            "step_size": float(step.norm()),
            "grad_norm": float(g.norm()),
            "path_length": path,
            "as_angle": self.angle(g, wt - w0),
        }
        if w_star is not None:
            ws = self.vec(w_star, group)
            out["distance_to_star"] = float((wt - ws).norm())
            out["ae_angle"] = self.angle(g, wt - ws)
            ratio = float(g @ (wt - ws)) / (float((ws - w0).norm()) * float(g.norm()))
            out["ae_paper_ratio"] = ratio
            out["ae_paper"] = math.acos(ratio) if abs(ratio) <= 1 else math.nan
        return out

    def yin(self, group: str, w_star: dict[str, torch.Tensor]) -> tuple[float, float]:
        """(‖W_T − W*‖², ‖W_0 − W*‖² + Σ‖Δ_t‖² + 2Σ⟨W_t − W*, Δ_t⟩) summed step by step."""
        ws = self.vec(w_star, group)
        rhs = float((self.vec(self.weights[0], group) - ws).norm() ** 2)
        for t in range(len(self.grads)):
            wt = self.vec(self.weights[t], group)
            step = self.vec(self.weights[t + 1], group) - wt
            rhs += float(step @ step) + 2 * float((wt - ws) @ step)
        lhs = float((self.vec(self.weights[-1], group) - ws).norm() ** 2)
        return lhs, rhs


def perturbed_state(model: nn.Module, scale: float, seed: int) -> dict[str, torch.Tensor]:
    """A W* that is not on the trajectory: the current weights plus Gaussian noise."""
    generator = torch.Generator().manual_seed(seed)
    return {
        n: (p.detach() + scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
        for n, p in model.named_parameters()
    }
