"""Time-to-convergence from a validation curve, and the early-stopping rule that ends a run.

The paper (Section 3.1) measures "the number of iterations to reach to 1 % of the minimum validation
loss". Validation loss is only known at evaluation steps ``s_0 < s_1 < ... < s_n``, so every event is
reported with the bracket in which it happened:

* ``steps_to_min = s_j`` with ``j = argmin_i L_i`` (the first one on ties); the minimum of the
  underlying curve was reached after ``s_{j-1}`` and at or before ``s_j`` — bracket ``(s_{j-1}, s_j]``;
* ``steps_to_within = s_i`` with ``i`` the first index with ``L_i <= L_min + within * |L_min|``
  (``= (1 + within) * L_min`` for the positive losses of a language model) — bracket ``(s_{i-1}, s_i]``.

For the first evaluation there is no earlier one; its bracket is ``(s_0, s_0]`` (``lo == hi``), which
says "at or before the first evaluation". A training loop that evaluates at step 0 makes this exact.

A non-finite loss (NaN / inf) marks divergence: the curve is analysed up to the last finite value
before it and ``diverged`` is set. Nothing here raises on numerical trouble; bad *input* (unsorted
steps, mismatched lengths, negative tolerance) raises :class:`~overparam_theory.errors.InputError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from overparam_theory.errors import InputError

__all__ = ["Convergence", "EarlyStopping", "analyze_curve", "within_threshold"]


@dataclass(frozen=True)
class Convergence:
    """Convergence events of one validation curve (steps are optimizer steps, i.e. gradient updates)."""

    steps_to_min: int | None  # first evaluation step with the minimum finite loss; None: no finite eval
    min_bracket: tuple[int, int] | None  # (previous eval step, steps_to_min]: where the minimum happened
    steps_to_within: int | None  # first evaluation step with loss <= within_threshold(min_loss)
    within_bracket: tuple[int, int] | None  # (previous eval step, steps_to_within]
    min_loss: float  # the minimum finite loss (NaN when there was none)
    within: float  # relative tolerance of steps_to_within (the paper's 1 % is 0.01)
    diverged: bool  # a non-finite loss occurred; everything above uses the finite prefix only
    diverged_at: int | None  # first evaluation step with a non-finite loss
    n_evals: int  # finite evaluations analysed

    def to_dict(self) -> dict:
        return asdict(self)


def within_threshold(min_loss: float, within: float) -> float:
    """Largest loss counted as "within ``within`` of the minimum": ``min + within * |min|``."""
    return min_loss + within * abs(min_loss)


def analyze_curve(steps: Sequence[int], losses: Sequence[float], within: float = 0.01) -> Convergence:
    """Steps to the minimum and to within ``within`` (relative) of it, with evaluation brackets.

    ``steps`` must be strictly increasing non-negative integers, one per entry of ``losses``.
    """
    steps = [int(s) for s in steps]
    losses = [float(x) for x in losses]
    if len(steps) != len(losses):
        raise InputError(f"curve has {len(steps)} steps but {len(losses)} losses")
    if not (math.isfinite(within) and within >= 0):
        raise InputError(f"within must be a finite number >= 0, got {within}")
    if any(s < 0 for s in steps) or any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise InputError("curve steps must be non-negative and strictly increasing")

    diverged_at = next((s for s, x in zip(steps, losses, strict=True) if not math.isfinite(x)), None)
    n = len(steps) if diverged_at is None else steps.index(diverged_at)
    steps, losses = steps[:n], losses[:n]
    if n == 0:
        return Convergence(None, None, None, None, math.nan, within, diverged_at is not None, diverged_at, 0)

    j = min(range(n), key=losses.__getitem__)  # min() returns the first index on ties
    min_loss = losses[j]
    threshold = within_threshold(min_loss, within)
    i = next(k for k in range(n) if losses[k] <= threshold)  # exists: k = j qualifies

    def bracket(k: int) -> tuple[int, int]:
        return (steps[k - 1] if k > 0 else steps[k], steps[k])

    return Convergence(
        steps_to_min=steps[j],
        min_bracket=bracket(j),
        steps_to_within=steps[i],
        within_bracket=bracket(i),
        min_loss=min_loss,
        within=within,
        diverged=diverged_at is not None,
        diverged_at=diverged_at,
        n_evals=n,
    )


@dataclass
class EarlyStopping:
    """Stop once the validation minimum has clearly passed.

    An evaluation *improves* when ``loss < anchor * (1 - min_delta)``, ``anchor`` = the loss of the last
    improvement (relative ``min_delta``; for non-positive ``anchor`` the rule uses
    ``anchor - min_delta * |anchor|``). ``best_loss`` / ``best_step`` follow the plain minimum (any
    decrease), which is what the caller keeps as W*; the patience counter only restarts on an
    improvement larger than ``min_delta``, so slow creeping decreases do not keep a run alive for ever.

    Stopping, after ``patience`` consecutive evaluations without improvement:

    * at once (reason ``"patience"``) when the run overfits: the validation loss exceeds the training
      loss passed to :meth:`update` by at least ``min_gap`` (relative: ``loss − train ≥ min_gap·|loss|``),
      or when no training loss is given or ``min_gap`` is 0 (the plain patience rule);
    * otherwise only after ``stall_factor × patience`` evaluations without improvement (reason
      ``"stall"``): a curve that flattened without overfitting (the paper's "runs out of capacity").

    Why the gap: an early *plateau* (a char LM sits near the unigram entropy, ≈ 3.3 nats, for several
    hundred steps at small learning rates) looks like a passed minimum to the plain rule, but training
    and validation loss are equal there (measured gap ≤ 0.5 %), while every real minimum measured on the
    char-LM benchmark had a gap of 10–19 % (docs/training.md, "Early stopping guard").

    Non-finite losses stop at once (reason ``"non-finite"``). The object is plain data
    (``state_dict`` / ``load_state_dict``) so that a checkpoint can store it.
    """

    patience: int = 5
    min_delta: float = 0.0
    min_gap: float = 0.0  # generalization gap a patience stop needs (0: the plain patience rule)
    stall_factor: int = 3  # without that gap, stop after stall_factor × patience evaluations
    best_loss: float = math.inf  # plain minimum seen so far
    best_step: int | None = None
    anchor_loss: float = math.inf  # loss of the last significant improvement (patience reference)
    evals_since_improvement: int = 0
    stopped: bool = False
    reason: str | None = None  # "patience", "stall" or "non-finite" once stopped

    def __post_init__(self) -> None:
        if not (isinstance(self.patience, int) and self.patience >= 1):
            raise InputError(f"patience must be an integer >= 1 (evaluations), got {self.patience!r}")
        if not (math.isfinite(self.min_delta) and 0 <= self.min_delta < 1):
            raise InputError(f"min_delta must be in [0, 1) (relative), got {self.min_delta!r}")
        if not (math.isfinite(self.min_gap) and 0 <= self.min_gap < 1):
            raise InputError(f"min_gap must be in [0, 1) (relative), got {self.min_gap!r}")
        if not (isinstance(self.stall_factor, int) and self.stall_factor >= 1):
            raise InputError(f"stall_factor must be an integer >= 1, got {self.stall_factor!r}")

    def update(self, step: int, loss: float, train_loss: float | None = None) -> bool:
        """Record one evaluation (and the training loss around it); True when training should stop now."""
        if self.stopped:
            return True
        if not math.isfinite(loss):
            self.stopped, self.reason = True, "non-finite"
            return True
        if loss < self.best_loss:
            self.best_loss, self.best_step = loss, step
        if loss < self.anchor_loss - self.min_delta * abs(self.anchor_loss) or math.isinf(self.anchor_loss):
            self.anchor_loss = loss
            self.evals_since_improvement = 0
        else:
            self.evals_since_improvement += 1
            if self.evals_since_improvement >= self.patience:
                if self._overfits(loss, train_loss):
                    self.stopped, self.reason = True, "patience"
                elif self.evals_since_improvement >= self.stall_factor * self.patience:
                    self.stopped, self.reason = True, "stall"
        return self.stopped

    def _overfits(self, loss: float, train_loss: float | None) -> bool:
        if self.min_gap == 0 or train_loss is None or not math.isfinite(train_loss):
            return True
        return loss - train_loss >= self.min_gap * abs(loss)

    def is_best(self, step: int) -> bool:
        """True when the evaluation at ``step`` is the current minimum (the caller saves W*)."""
        return self.best_step == step

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
