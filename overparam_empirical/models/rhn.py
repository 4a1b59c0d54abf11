"""Recurrent Highway Network character language model (Zilly et al., 2017), width-parameterised.

One RHN layer of recurrence depth ``L`` (the paper's char-LM: ``L = 10``) between a character embedding
and an untied softmax. At every time step the state ``s`` passes through ``L`` highway micro-layers
(``s_0`` is the previous time step's output ``s_L``; ``x`` is the embedded character):

    h_l = tanh(   [l = 1]·W_H x + R_Hl s_{l-1} + b_Hl )        candidate
    t_l = sigmoid([l = 1]·W_T x + R_Tl s_{l-1} + b_Tl )        transform gate
    s_l = h_l ⊙ t_l + s_{l-1} ⊙ (1 − t_l)                      coupled carry gate c = 1 − t

The input enters only the first micro-layer and has no bias of its own (``b_H1``/``b_T1`` already
provide one). Logits are ``softmax.weight · s_L + softmax.bias``.

Parameter layout (shared by both cells, so one ``state_dict`` loads into either):

    embedding.weight     [V, E]
    rhn.input.weight     [2H, E]     rows 0..H-1 = W_H, rows H..2H-1 = W_T
    rhn.micro.<l>.weight [2H, H]     rows 0..H-1 = R_Hl, rows H..2H-1 = R_Tl   (l = 0..L-1)
    rhn.micro.<l>.bias   [2H]        b_Hl then b_Tl
    softmax.weight       [V, H]
    softmax.bias         [V]

Initialisation (with the caller's ``torch.manual_seed``): every weight and bias is drawn
i.i.d. uniform(−a, a) with ``a = 1/sqrt(H)`` (the PyTorch recurrent-layer convention; ``init_range``
overrides ``a``), so all weights start in a small box around the origin, as in the paper's
"random initialization within the proximity of origin". The one exception is the transform-gate
bias ``b_Tl``, set to the constant ``transform_bias = -2``: a negative gate bias makes each micro-layer
start close to the identity (mostly carry), which is what lets gradients pass through ``L·T = 1500``
highway steps early in training (Srivastava et al. 2015 recommend negative initial transform biases,
e.g. −1 to −3, for deep highway stacks; −2 is the value commonly used with RHNs). The constant is the
same at every width, so it does not confound a width sweep, and traversal distances are measured from
the actual initial weights, so it does not bias them either.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from overparam_empirical.models.rhn_fast import rhn_sequence_fast
from overparam_theory.checks import check_int
from overparam_theory.errors import InputError

CELLS = ("fast", "naive")


def rhn_parameter_count(vocab_size: int, width: int, depth: int, embedding_size: int | None = None) -> int:
    """Exact number of trainable parameters of :class:`RHNLanguageModel`.

    With ``V = vocab_size``, ``H = width``, ``L = depth``, ``E = embedding_size`` (default ``H``)::

        P = V·E            embedding
          + 2·E·H          input projections W_H, W_T (first micro-layer only, no bias)
          + L·(2·H² + 2·H) recurrent matrices R_Hl, R_Tl and biases b_Hl, b_Tl
          + H·V + V        untied softmax

    With ``E = H`` this is ``P = 2L·H² + 2H² + (2V + 2L)·H + V`` ≈ ``2(L+1)·H²`` for large ``H``.
    Example: ``V = 98, H = 2004, L = 10`` gives 88,785,314 (the published 1B-Words graph: ≈ 88.8 M).
    """
    vocab_size, width, depth = (
        check_int("vocab_size", vocab_size),
        check_int("width", width),
        check_int("depth", depth),
    )
    embedding = width if embedding_size is None else check_int("embedding_size", embedding_size)
    return (
        vocab_size * embedding
        + 2 * embedding * width
        + depth * (2 * width * width + 2 * width)
        + width * vocab_size
        + vocab_size
    )


class RecurrentHighwayLayer(nn.Module):
    """One RHN layer of recurrence depth ``depth`` over a time-major sequence ``[T, B, E] -> [T, B, H]``.

    ``cell="naive"`` runs the readable reference (a Python loop over time and micro-layers, autograd
    records every operation); ``cell="fast"`` runs :func:`rhn_sequence_fast`, which computes the same
    function with the same parameters and a hand-written backward pass.
    """

    def __init__(self, input_size: int, width: int, depth: int, cell: str = "fast") -> None:
        super().__init__()
        self.input_size = check_int("embedding_size", input_size)
        self.width = check_int("width", width)
        self.depth = check_int("depth", depth)
        self.cell = cell
        self.input = nn.Linear(input_size, 2 * width, bias=False)
        self.micro = nn.ModuleList(nn.Linear(width, 2 * width) for _ in range(depth))

    @property
    def cell(self) -> str:
        return self._cell

    @cell.setter
    def cell(self, value: str) -> None:
        if value not in CELLS:
            raise InputError(f"cell must be one of {', '.join(CELLS)}; got {value!r}")
        self._cell = value

    def forward(self, inputs: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """``inputs [T, B, E]``, ``state [B, H]`` -> (outputs ``s_L`` per step ``[T, B, H]``, last state)."""
        if self._cell == "naive":
            return self.forward_naive(inputs, state)
        projected = self.input(inputs)  # W_H x and W_T x for all time steps in one matmul
        return rhn_sequence_fast(
            projected,
            state,
            [layer.weight for layer in self.micro],
            [layer.bias for layer in self.micro],
        )

    def forward_naive(self, inputs: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Reference implementation: the equations of the module docstring, literally."""
        width = self.width
        outputs = []
        for x in inputs:
            from_input = self.input(x)
            for index, micro_layer in enumerate(self.micro):
                pre = micro_layer(state)
                if index == 0:
                    pre = pre + from_input
                candidate = torch.tanh(pre[:, :width])
                transform = torch.sigmoid(pre[:, width:])
                state = candidate * transform + state * (1 - transform)
            outputs.append(state)
        return torch.stack(outputs), state


class RHNLanguageModel(nn.Module):
    """Character LM: ``embedding -> rhn (1 layer, depth L) -> softmax`` (untied).

    ``forward(tokens [B, T] int64, state [B, H] | None) -> (logits [B, T, V], state [B, H])``.
    ``state=None`` starts from zeros. The returned state is still attached to the graph: for
    truncated BPTT pass ``state.detach()`` into the next window.
    """

    def __init__(
        self,
        vocab_size: int,
        width: int,
        depth: int = 10,
        embedding_size: int | None = None,
        cell: str = "fast",
        *,
        transform_bias: float = -2.0,
        init_range: float | None = None,
    ) -> None:
        super().__init__()
        embedding_size = width if embedding_size is None else embedding_size
        self.vocab_size = check_int("vocab_size", vocab_size)
        self.width = check_int("width", width)
        self.depth = check_int("depth", depth)
        self.embedding_size = check_int("embedding_size", embedding_size)
        if init_range is not None and not (math.isfinite(init_range) and init_range > 0):
            raise InputError(f"init_range must be a positive number, got {init_range!r}")
        if not math.isfinite(transform_bias):
            raise InputError(f"transform_bias must be finite, got {transform_bias!r}")
        self.transform_bias = float(transform_bias)
        self.init_range = 1.0 / math.sqrt(width) if init_range is None else float(init_range)
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.rhn = RecurrentHighwayLayer(embedding_size, width, depth, cell)
        self.softmax = nn.Linear(width, vocab_size)
        self.reset_parameters()

    @property
    def cell(self) -> str:
        return self.rhn.cell

    @cell.setter
    def cell(self, value: str) -> None:
        self.rhn.cell = value

    def reset_parameters(self) -> None:
        """uniform(−init_range, init_range) everywhere; transform-gate biases = ``transform_bias``."""
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.uniform_(-self.init_range, self.init_range)
            for layer in self.rhn.micro:
                layer.bias[self.width :].fill_(self.transform_bias)

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> Tensor:
        """Zero state ``[batch_size, H]`` (the state at the start of every stream)."""
        weight = self.softmax.weight
        return torch.zeros(
            batch_size, self.width, device=device or weight.device, dtype=dtype or weight.dtype
        )

    def forward(self, tokens: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if tokens.dim() != 2:
            raise InputError(f"tokens must have shape [batch, time], got {tuple(tokens.shape)}")
        if tokens.shape[1] < 1:
            raise InputError("tokens must have at least one time step")
        if state is None:
            state = self.initial_state(tokens.shape[0])
        elif state.shape != (tokens.shape[0], self.width):
            raise InputError(
                f"state must have shape [{tokens.shape[0]}, {self.width}], got {tuple(state.shape)}"
            )
        embedded = self.embedding(tokens.t())  # time-major [T, B, E]: the recurrence walks dim 0
        outputs, state = self.rhn(embedded, state)
        logits = self.softmax(outputs.transpose(0, 1))
        return logits, state

    def traversal_groups(self) -> dict[str, list[str]]:
        """Parameter names per layer group for the traversal tracker (embedding / hidden / softmax)."""
        names = [name for name, _ in self.named_parameters()]
        return {
            "embedding": [n for n in names if n.startswith("embedding.")],
            "hidden": [n for n in names if n.startswith("rhn.")],
            "softmax": [n for n in names if n.startswith("softmax.")],
        }

    def parameter_count(self) -> int:
        return rhn_parameter_count(self.vocab_size, self.width, self.depth, self.embedding_size)
