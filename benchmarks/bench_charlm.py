"""RHN char-LM training throughput: the naive reference cell vs the fast cell, side by side in one run.

For each width H (default 64, 128, 256) two RHN language models with identical initial weights (depth 10,
embedding size H, the paper's char-LM) train on real text (Shakespeare by default) with plain SGD,
batch B = 32, sequence length T = 150, one thread, state carried across windows (truncated BPTT).
One timed unit is a full training step: forward, cross-entropy, backward, ``optimizer.step()``.
Steps alternate between the two cells (the order flips every repetition) so that drift from other
processes hits both alike; the first step of each cell is an untimed warm-up. Reported: median
characters per second (B·T / wall-clock step time) per cell, the speed-up fast/naive, the same speed-up
measured in CPU time of the training thread (less sensitive to other processes on a shared machine), and
the difference between the two cells' losses at the first step (same weights, same batch: they must agree).

The last line is ``RESULT rhn_speedup_min=<smallest speed-up over the widths>``.

Usage: ``python benchmarks/bench_charlm.py [--widths 64,128,256] [--repeats 7] [--quick]``.
On a shared machine the absolute numbers drop; the ratios are what this benchmark is for.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from overparam_empirical.data import CharDataset, epoch_batches, load_text
from overparam_empirical.models import RHNLanguageModel


def train_step(model, optimizer, batch, state):
    logits, state = model(torch.from_numpy(batch.x), state)
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), torch.from_numpy(batch.y).reshape(-1)
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item(), state.detach()


def measure(width: int, dataset: CharDataset, args) -> dict:
    sides = {}
    for cell in ("naive", "fast"):
        torch.manual_seed(args.seed)  # identical initial weights for both cells
        model = RHNLanguageModel(dataset.vocab_size, width, depth=args.depth, cell=cell)
        sides[cell] = {
            "model": model,
            "optimizer": torch.optim.SGD(model.parameters(), lr=args.lr),
            "batches": epoch_batches(dataset.train, args.batch, args.seq_len),
            "state": model.initial_state(args.batch),
            "rates": [],
            "cpu_rates": [],
        }
    first_losses = {}
    for repeat in range(args.repeats + 1):
        order = ("naive", "fast") if repeat % 2 == 0 else ("fast", "naive")
        for cell in order:
            side = sides[cell]
            batch = next(side["batches"])
            if batch.starts_epoch:
                side["state"] = side["model"].initial_state(args.batch)
            start, start_cpu = time.perf_counter(), time.thread_time()
            loss, side["state"] = train_step(side["model"], side["optimizer"], batch, side["state"])
            elapsed, elapsed_cpu = time.perf_counter() - start, time.thread_time() - start_cpu
            if repeat == 0:
                first_losses[cell] = loss  # warm-up step: not timed
            else:
                side["rates"].append(batch.x.size / elapsed)
                side["cpu_rates"].append(batch.x.size / elapsed_cpu)
    naive, fast = (statistics.median(sides[c]["rates"]) for c in ("naive", "fast"))
    naive_cpu, fast_cpu = (statistics.median(sides[c]["cpu_rates"]) for c in ("naive", "fast"))
    return {
        "width": width,
        "params": sides["fast"]["model"].parameter_count(),
        "naive": naive,
        "fast": fast,
        "speedup": fast / naive,
        "speedup_cpu": fast_cpu / naive_cpu,
        "loss_gap": abs(first_losses["naive"] - first_losses["fast"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--widths", default="64,128,256", help="comma-separated hidden sizes (default 64,128,256)"
    )
    parser.add_argument(
        "--depth", type=int, default=10, help="RHN recurrence depth (default 10, the paper's)"
    )
    parser.add_argument("--batch", type=int, default=32, help="batch size B (default 32)")
    parser.add_argument("--seq-len", type=int, default=150, help="BPTT window T in characters (default 150)")
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per cell and width (default 7)")
    parser.add_argument("--lr", type=float, default=0.8, help="SGD learning rate (default 0.8, the paper's)")
    parser.add_argument("--corpus", default="shakespeare", help="corpus name or path (default shakespeare)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: widths 32,64, T=30, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.widths, args.seq_len, args.repeats = "32,64", 30, 2
    torch.set_num_threads(args.threads)
    widths = [int(w) for w in args.widths.split(",")]

    source = load_text(args.corpus, max_chars=2_000_000)
    dataset = CharDataset.build(source, fraction=1.0, seed=0)
    print(
        f"corpus {source.name}: {len(dataset.train):,} training characters, vocabulary {dataset.vocab_size}"
    )
    if source.credit:
        print(f"  {source.credit}")
    print(
        f"RHN depth {args.depth}, B={args.batch}, T={args.seq_len}, SGD lr {args.lr}, "
        f"{args.threads} thread(s), {args.repeats} timed steps per cell (interleaved), medians; "
        f"torch {torch.__version__}\n"
    )
    header = (
        f"{'H':>5} {'params':>11} {'naive chars/s':>14} {'fast chars/s':>13} {'speed-up':>9} "
        f"{'(CPU time)':>10} {'loss gap':>9}"
    )
    print(header)
    print("-" * len(header))
    results = []
    for width in widths:
        r = measure(width, dataset, args)
        results.append(r)
        print(
            f"{r['width']:>5} {r['params']:>11,} {r['naive']:>14,.0f} {r['fast']:>13,.0f} "
            f"{r['speedup']:>8.2f}x {r['speedup_cpu']:>9.2f}x {r['loss_gap']:>9.1e}",
            flush=True,
        )
    print()
    for r in results:
        print(f"RESULT rhn_chars_per_s_naive_H{r['width']}={r['naive']:.0f}")
        print(f"RESULT rhn_chars_per_s_fast_H{r['width']}={r['fast']:.0f}")
        print(f"RESULT rhn_speedup_H{r['width']}={r['speedup']:.3f}")
        print(f"RESULT rhn_speedup_cpu_time_H{r['width']}={r['speedup_cpu']:.3f}")
    print(f"RESULT rhn_speedup_min={min(r['speedup'] for r in results):.3f}")


if __name__ == "__main__":
    main()
