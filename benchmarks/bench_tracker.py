"""Overhead of the traversal tracker: training-step time with and without it, side by side in one run.

For an LSTM and an RHN character model at two widths, one model trains on real text (Shakespeare,
the default corpus) with SGD + gradient clipping, B = 32, T = 150 by default, one thread. Consecutive
training steps rotate between three sides (off, snapshots, reference, then reversed, ...), so that
drift and background load hit all sides alike:

* ``off``        — forward, backward, clip, ``optimizer.step()``;
* ``snapshots``  — the same plus ``tracker.step()``: schedule ``every:1`` (every call is tracked), all
                   groups, As online and Ae by snapshots (the default method; the Ae arithmetic itself
                   happens once in ``finalize()``, timed separately and reported per tracked step);
* ``reference``  — the same with ``ae_method="reference"``: both angles computed online every step.

Each tracked side keeps its tracker for 8 of its steps, then finalizes it (timed apart) and builds a
fresh one (untimed), which bounds the snapshot memory. Because the sides interleave, a tracker's Δ spans
three training steps; its cost does not depend on that. A new snapshots tracker reuses the host memory
its predecessor released (see ``overparam_empirical.tracker.snapshots``: recycled buffers, as for the
consecutive runs of a study worker), and one untimed snapshots tracker runs 8 steps before the timed
ones, so every timed snapshot step writes into recycled pages; the cost of snapshots in fresh memory
(first-touch page faults, paid until a process has released that much) is measured separately after
the timed run, on a tracker built after ``release_snapshot_memory()``.
Reported per model: median step time per side, the ratios median(side) / median(off), the median cost
of the ``tracker.step()`` call itself on tracked and untracked steps (the latter measured on a tracker
with schedule ``every:1000000`` after the timed run), the snapshot call on fresh memory, and the
overhead implied for a sparse schedule (``every:10``).
``tracker_call_overhead_*`` = 1 + median(call) / median(off step) is the direct measure of the same
cost and much less sensitive to background load than the ratio of two noisy step-time medians.
The last line is ``RESULT tracker_overhead_max=<largest median ratio over models and tracked sides>``.

The tracker's backend (``--backend``, default ``auto``: the fused numba kernel on a CPU) is prepared —
compiled or loaded from numba's cache — before anything is timed.

Usage: ``python benchmarks/bench_tracker.py [--seq-len 150] [--seconds 40] [--configs lstm:128,...]
[--backend auto|numba|torch]``. Run it on a quiet machine: other processes on the same cores inflate
both sides and add noise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn

from overparam_empirical.data import CharDataset, epoch_batches, load_text
from overparam_empirical.models.rhn import RHNLanguageModel
from overparam_empirical.tracker import TraversalTracker, release_snapshot_memory

SIDES = ("off", "snapshots", "reference")


class LSTMCharModel(nn.Module):
    """nn.Embedding + nn.LSTM + nn.Linear, same forward signature as RHNLanguageModel."""

    def __init__(self, vocab_size: int, width: int, embedding_size: int | None = None) -> None:
        super().__init__()
        embedding_size = embedding_size or width
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.lstm = nn.LSTM(embedding_size, width, batch_first=True)
        self.softmax = nn.Linear(width, vocab_size)

    def forward(self, tokens, state=None):
        outputs, state = self.lstm(self.embedding(tokens), state)
        return self.softmax(outputs), state


def build_model(kind: str, vocab_size: int, width: int) -> nn.Module:
    if kind == "lstm":
        return LSTMCharModel(vocab_size, width)
    if kind == "rhn":
        return RHNLanguageModel(vocab_size, width, depth=10)
    raise SystemExit(f"unknown model kind {kind!r} (lstm, rhn)")


def detach(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


class Trainer:
    """One model, one optimizer, one endless stream of real-text windows shared by all sides."""

    def __init__(self, kind: str, width: int, dataset: CharDataset, batch: int, seq_len: int) -> None:
        torch.manual_seed(0)
        self.model = build_model(kind, dataset.vocab_size, width)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1.0)
        self.batches = epoch_batches(dataset.train, batch, seq_len)
        self.vocab_size = dataset.vocab_size
        self.state = None

    def step(self, tracker: TraversalTracker | None) -> float:
        batch = next(self.batches)
        x, y = torch.from_numpy(batch.x), torch.from_numpy(batch.y)
        if batch.starts_epoch:
            self.state = None
        start = time.perf_counter()
        logits, state = self.model(x, self.state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, self.vocab_size), y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        if tracker is not None:
            self.last_tracker_seconds = timed_tracker_step(tracker)
        elapsed = time.perf_counter() - start
        self.state = detach(state)
        return elapsed


TRACKER_BLOCK = 8
EXTRA_STEPS = 5  # training steps of each after-run measurement (untracked calls, fresh snapshot memory)
BACKEND = "auto"


def make_tracker(side: str, model: nn.Module, schedule: str = "every:1") -> TraversalTracker:
    if side == "snapshots":
        return TraversalTracker(model, schedule=schedule, ae_method="snapshots", backend=BACKEND)
    reference = {name: p.detach().clone() for name, p in model.named_parameters()}
    return TraversalTracker(
        model, schedule=schedule, ae_method="reference", reference=reference, backend=BACKEND
    )


def timed_tracker_step(tracker: TraversalTracker) -> float:
    start = time.perf_counter()
    tracker.step()
    return time.perf_counter() - start


def measure(kind: str, width: int, dataset: CharDataset, args) -> dict:
    trainer = Trainer(kind, width, dataset, args.batch, args.seq_len)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    warm = [trainer.step(None) for _ in range(2)]
    # One untimed snapshot tracker first, as in a study worker after its first run: the timed snapshot
    # trackers then write into recycled memory, every one of them (fresh memory is measured apart below).
    release_snapshot_memory()
    pool_warmer = make_tracker("snapshots", trainer.model)
    for _ in range(TRACKER_BLOCK):
        trainer.step(pool_warmer)
    pool_warmer.finalize()
    per_side = max(args.min_steps, round(args.seconds / (3 * statistics.median(warm))))
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    call_times: dict[str, list[float]] = {side: [] for side in SIDES[1:]}
    finalize_per_step: list[float] = []
    trackers: dict[str, TraversalTracker | None] = {side: None for side in SIDES[1:]}
    counts = dict.fromkeys(SIDES[1:], 0)

    def retire(side: str) -> None:
        tracker = trackers[side]
        start = time.perf_counter()
        tracker.finalize()
        if side == "snapshots":
            finalize_per_step.append((time.perf_counter() - start) / tracker.steps)
        trackers[side] = None

    for cycle in range(per_side):
        order = SIDES if cycle % 2 == 0 else SIDES[::-1]
        for side in order:
            if side == "off":
                times[side].append(trainer.step(None))
                continue
            if trackers[side] is None:
                trackers[side] = make_tracker(side, trainer.model)
            times[side].append(trainer.step(trackers[side]))
            call_times[side].append(trainer.last_tracker_seconds)
            counts[side] += 1
            if counts[side] % TRACKER_BLOCK == 0:
                retire(side)
    for side in SIDES[1:]:
        if trackers[side] is not None:
            retire(side)
    # the tracker.step() call on untracked steps (every-step sums only), for the sparse-schedule estimate
    sparse = make_tracker("reference", trainer.model, schedule="every:1000000")
    untracked = []
    for i in range(EXTRA_STEPS + 1):
        trainer.step(None)
        duration = timed_tracker_step(sparse)
        if i > 0:  # step 0 is tracked
            untracked.append(duration)
    sparse.close()
    # snapshots written to fresh memory: no buffers left from earlier trackers of this process
    release_snapshot_memory()
    fresh = make_tracker("snapshots", trainer.model)
    fresh_calls = []
    for _ in range(EXTRA_STEPS):
        trainer.step(None)
        fresh_calls.append(timed_tracker_step(fresh))
    fresh.close()
    release_snapshot_memory()
    medians = {side: statistics.median(values) for side, values in times.items()}
    call = {side: statistics.median(values) for side, values in call_times.items()}
    untracked_call = statistics.median(untracked)
    sparse_ratio = 1 + (0.9 * untracked_call + 0.1 * call["reference"]) / medians["off"]
    return {
        "model": f"{kind} H={width}",
        "key": f"{kind}_h{width}",
        "params": n_params,
        "steps": {side: len(values) for side, values in times.items()},
        "medians": medians,
        "ratios": {side: medians[side] / medians["off"] for side in SIDES[1:]},
        "call": call,
        "untracked_call": untracked_call,
        "fresh_call": statistics.median(fresh_calls),
        "fresh_call_ratio": 1 + statistics.median(fresh_calls) / medians["off"],
        "sparse_ratio": sparse_ratio,
        # the direct measure: (off step + median tracker.step() call) / off step; far less noisy than
        # the ratio of step medians when other processes share the cores
        "call_ratios": {side: 1 + call[side] / medians["off"] for side in SIDES[1:]},
        "finalize_per_step": statistics.median(finalize_per_step),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="lstm:128,lstm:512,rhn:128,rhn:512", help="kind:width list")
    parser.add_argument("--batch", type=int, default=32, help="batch size B (default 32)")
    parser.add_argument("--seq-len", type=int, default=150, help="BPTT window T in characters (default 150)")
    parser.add_argument("--seconds", type=float, default=40.0, help="target seconds of timed steps per model")
    parser.add_argument(
        "--min-steps", type=int, default=24, help="at least this many steps per side (default 24)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--backend", default="auto", choices=("auto", "numba", "torch"), help="tracker backend (default auto)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    global BACKEND
    BACKEND = args.backend
    # Prepare the backend before anything is timed: the first tracker compiles the numba kernels or
    # loads them from numba's on-disk cache.
    start = time.perf_counter()
    backend = make_tracker("snapshots", nn.Linear(3, 3)).backend
    prepared = time.perf_counter() - start
    source = load_text("shakespeare", max_chars=2_000_000)
    dataset = CharDataset.build(source, fraction=1.0, seed=0)
    print(
        f"tracker overhead | {source.name}, V={dataset.vocab_size}, B={args.batch}, T={args.seq_len}, "
        f"SGD + clip, {args.threads} thread(s), torch {torch.__version__}, tracker backend {backend} "
        f"(ready in {prepared:.1f} s)"
    )
    header = f"{'model':<12} {'params':>10} {'steps/side':>10} {'off ms':>9} {'snap ms':>9} {'ratio':>7}"
    header += f" {'ref ms':>9} {'ratio':>7} {'call snap/ref/untracked ms':>27} {'finalize ms/step':>17}"
    header += f" {'snap fresh mem ms':>17} {'every:10 est.':>13}"
    print(header)
    results = []
    for spec in args.configs.split(","):
        kind, width = spec.split(":")
        result = measure(kind, int(width), dataset, args)
        results.append(result)
        m, ratio, call = result["medians"], result["ratios"], result["call"]
        call_ms = (call["snapshots"], call["reference"], result["untracked_call"])
        calls = "/".join(f"{1e3 * v:.2f}" for v in call_ms)
        print(
            f"{result['model']:<12} {result['params']:>10,} {result['steps']['off']:>10} "
            f"{1e3 * m['off']:>9.2f} {1e3 * m['snapshots']:>9.2f} {ratio['snapshots']:>7.4f} "
            f"{1e3 * m['reference']:>9.2f} {ratio['reference']:>7.4f} {calls:>27} "
            f"{1e3 * result['finalize_per_step']:>17.3f} {1e3 * result['fresh_call']:>17.2f} "
            f"{result['sparse_ratio']:>13.4f}",
            flush=True,
        )
    for result in results:
        for side, value in result["ratios"].items():
            print(f"RESULT tracker_overhead_{result['key']}_{side}={value:.4f}")
        for side, value in result["call_ratios"].items():
            print(f"RESULT tracker_call_overhead_{result['key']}_{side}={value:.4f}")
        fresh = result["fresh_call_ratio"]
        print(f"RESULT tracker_call_overhead_{result['key']}_snapshots_fresh_memory={fresh:.4f}")
        print(f"RESULT tracker_overhead_{result['key']}_every10_estimate={result['sparse_ratio']:.4f}")
    worst_call = max(value for result in results for value in result["call_ratios"].values())
    print(f"RESULT tracker_call_overhead_max={worst_call:.4f}")
    worst = max(value for result in results for value in result["ratios"].values())
    print(f"RESULT tracker_overhead_max={worst:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
