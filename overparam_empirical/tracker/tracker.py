"""TraversalTracker: how far, how straight and in what direction the weights travel during training.

Step indexing. The tracker copies W_0 (the weights when it is built). The t-th call of :meth:`step`
(t = 0, 1, ...) must follow the t-th ``optimizer.step()``; it sees

* W_t     — the weights kept by the previous call (W_0 for t = 0),
* g_t     — ``p.grad`` now: the gradient computed at W_t, as the optimizer used it (after any
            gradient clipping done in place, e.g. ``clip_grad_norm_``),
* W_{t+1} — the weights now, and Δ_t = W_{t+1} − W_t, the update actually applied (with momentum or
            Adam it differs from −η g_t; that is the point of measuring it).

Every call (tracked or not) adds ‖Δ_t‖ to the path length and ‖Δ_t‖², ⟨W_t, Δ_t⟩ to the Yin sums, in
float64 on the parameters' device, without a host synchronisation. A *tracked* call (see
:mod:`.schedule`) also records, per group, ‖W_t − W_0‖, ‖Δ_t‖, ‖g_t‖, the path length Σ_{s<t}‖Δ_s‖ up to
W_t, As(t) = ∠(g_t, W_t − W_0) and (method permitting) Ae(t) = ∠(g_t, W_t − W*). A record for step t
therefore describes the point W_t and the update taken from it; the end point W_T (T = number of calls)
appears in the summary.

Arithmetic. Tracked parameters are laid out group after group in flat rows kept in the parameters' own
dtype (lossless), so that a group is a contiguous slice; two rows alternate as W_t and W_{t+1}, so the
weights are copied once per step. Differences (Δ_t, W_t − W_0, W_t − W*) are formed explicitly in
float64 — exact for float32/float16/bfloat16 parameters, so no cancellation — and every inner product is
accumulated in float64. Two backends do this (same numbers up to float64 rounding):

* ``numba`` (default on a CPU for float32/float64 parameters, :mod:`.fused`): one pass per step that
  reads W_{t+1} and g_t straight from the parameters and their gradients, W_t and W_0 from the rows,
  writes W_{t+1} into the row that holds W_t at the next step and, with snapshots, (W_t, g_t) into the
  snapshot store; the step's scalars go to numpy views of the CPU buffers.
* ``torch`` (CUDA, half precision, or on request): one ``torch._foreach_copy_`` of the weights (and the
  gradients), then chunk by chunk (32 Ki elements on CPU, so the float64 scratch stays in cache; a whole
  group per chunk on CUDA) a float64 conversion, explicit differences and ``torch.mv``/``torch.dot``
  written into preallocated float64 tensors. The scalars of a tracked step stay on the device in a row
  buffer copied to the host once per 1024 tracked steps or when results are read; nothing in a step
  synchronises with the host.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from overparam_empirical.tracker import fused
from overparam_empirical.tracker.groups import ALL_GROUP, GROUP_NAMES, assign_groups
from overparam_empirical.tracker.metrics import angle, paper_ae, path_mean, safe_sqrt, yin_check
from overparam_empirical.tracker.schedule import Schedule, parse_schedule
from overparam_empirical.tracker.snapshots import SnapshotStore
from overparam_theory.errors import InputError
from overparam_theory.files import atomic_write_text

AE_METHODS = ("snapshots", "reference", "none")
BACKENDS = ("auto", "numba", "torch")
SCHEMA_VERSION = 1
DEFAULT_SNAPSHOT_MEMORY_BYTES = 2**30
_ROW_BLOCK = 1024
_FINALIZE_BLOCK_BYTES = 256 * 2**20

# Rows of the stored vectors (parameters' dtype, lossless): _W_A and _W_B alternate as W_t and W_{t+1}.
_W_A, _W_B, _GRAD, _INIT = range(4)
# Rows of the float64 chunk scratch: rows 1..4 receive the stored rows converted; row 4 (W_0) is then
# overwritten with W_t − W_0, so that [g, W_t − W_0, W_t − W*] are adjacent for one matrix-vector product.
_S_DELTA, _S_W_A, _S_W_B, _S_GRAD, _S_FROM_INIT, _S_FROM_REF = range(6)
# Chunk length for the float64 work on CPU: 6 scratch rows × 32 Ki × 8 B = 1.5 MiB stays in cache.
_CPU_CHUNK = 1 << 15
# Columns of the per-step inner products, one row per group (+ all):
# ‖Δ‖², ⟨W_A, Δ⟩, ⟨W_B, Δ⟩ (one of them is ⟨W_t, Δ⟩), ‖g‖², ⟨g, W_t − W_0⟩, ⟨g, W_t − W*⟩,
# ‖W_t − W_0‖², ‖W_t − W*‖².
_C_STEP_SQ, _C_W_A_STEP, _C_W_B_STEP, _C_GRAD_SQ, _C_GRAD_INIT, _C_GRAD_REF, _C_INIT_SQ, _C_REF_SQ = range(8)
_N_COLUMNS = 8
_C_W_STEP = {_W_A: _C_W_A_STEP, _W_B: _C_W_B_STEP}

StateLike = Mapping[str, torch.Tensor] | nn.Module


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class TraversalTracker:
    """Measure weight-space traversal per parameter group in any PyTorch training loop.

    Usage::

        tracker = TraversalTracker(model, schedule="log:20")
        for batch in data:
            loss = loss_fn(model(batch)); optimizer.zero_grad(); loss.backward()
            optimizer.step()
            tracker.step()                       # after optimizer.step(), before the next zero_grad
            if evaluating: tracker.report_validation(valid_loss)
        tracker.finalize(w_star="best")          # or a state dict, or None for the final weights
        tracker.records(); tracker.summary(); tracker.to_json("traversal.json")

    Parameters
    ----------
    model:
        the ``nn.Module`` being trained; its parameters must be on one device. Build the tracker after
        moving the model to that device and before the first ``optimizer.step()``.
    schedule:
        which steps are recorded in full: ``"every:N"``, ``"log:N"`` (≈ N per decade), an int N, or a
        callable ``t -> bool``. Path length and Yin sums are accumulated on every step regardless.
    groups:
        ``{group: [fnmatch patterns on parameter names]}`` moving parameters to ``embedding``, ``hidden``
        or ``softmax`` (see :mod:`.groups` for the automatic rule and ``model.traversal_groups()``).
    ae_method:
        how Ae(t) = ∠(g_t, W_t − W*) is made exact although W* is known only at the end:
        ``"snapshots"`` keeps (W_t, g_t) of every tracked step (2 × params × itemsize bytes each) and
        computes Ae in float64 in :meth:`finalize`; ``"reference"`` takes W* up front (``reference``;
        e.g. the best weights of a first run, replayed with the same seed) and computes Ae online with no
        storage; ``"none"`` skips Ae.
    reference:
        W* for ``ae_method="reference"``: a state dict (or module) holding every tracked parameter.
    snapshot_dir:
        folder for the snapshot spill file once ``snapshot_memory_bytes`` is used up (default: the
        system temporary folder). The file is deleted by :meth:`finalize` / :meth:`close`.
    snapshot_memory_bytes:
        host memory for snapshots before spilling to the file (default 1 GiB).
    check_first_step:
        make the first :meth:`step` fail if no gradient exists or the weights have not changed since the
        tracker was built (the usual sign of calling it before ``optimizer.step()``). Pass False when the
        first update may legitimately be a no-op (``torch.amp.GradScaler`` skipping an overflowed step,
        a zero learning rate).
    chunk_elements:
        torch backend only: length of the chunks in which the float64 arithmetic is done (default: 32768
        on CPU, so the scratch stays in cache; a whole group at once on CUDA). Changes only the
        summation order.
    backend:
        how the per-step inner products are computed: ``"numba"`` — one fused pass per step that reads
        the parameters and gradients in place (:mod:`.fused`; CPU, float32/float64 parameters; 2–4×
        cheaper than torch on a CPU); ``"torch"`` — torch kernels (any device and dtype); ``"auto"``
        (default) — numba where it applies and works, else torch. Both give the same numbers up to
        float64 rounding (different summation order). ``self.backend`` and ``config()`` say which ran.
    """

    def __init__(
        self,
        model: nn.Module,
        schedule: Schedule = "every:1",
        groups: Mapping[str, Sequence[str]] | None = None,
        ae_method: str = "snapshots",
        reference: StateLike | None = None,
        snapshot_dir: str | os.PathLike | None = None,
        snapshot_memory_bytes: int = DEFAULT_SNAPSHOT_MEMORY_BYTES,
        check_first_step: bool = True,
        chunk_elements: int | None = None,
        backend: str = "auto",
    ) -> None:
        if backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if ae_method not in AE_METHODS:
            raise InputError(f"ae_method must be one of {', '.join(AE_METHODS)}, got {ae_method!r}")
        if ae_method == "reference" and reference is None:
            raise InputError("ae_method='reference' needs reference= (the W* state dict)")
        if ae_method != "reference" and reference is not None:
            raise InputError(f"reference= is only used with ae_method='reference', not {ae_method!r}")
        if ae_method != "snapshots" and snapshot_dir is not None:
            raise InputError(f"snapshot_dir= is only used with ae_method='snapshots', not {ae_method!r}")
        self._schedule: Callable[[int], bool] = parse_schedule(schedule)
        # A stable label (no memory address) so that checkpoints from another process still match.
        self._schedule_spec = (
            schedule
            if isinstance(schedule, str | int)
            else "callable:" + getattr(schedule, "__qualname__", type(schedule).__name__)
        )
        self.assignment = assign_groups(model, groups)
        self.ae_method = ae_method
        self._check_first_step = bool(check_first_step)

        named = dict(model.named_parameters())
        self._names = self.assignment.tracked_names
        self._params: list[torch.Tensor] = [named[name] for name in self._names]
        devices = {p.device for p in self._params}
        if len(devices) > 1:
            raise InputError(f"tracked parameters live on several devices ({sorted(map(str, devices))})")
        self.device: torch.device = devices.pop()
        for name, p in zip(self._names, self._params, strict=True):
            if not p.is_floating_point():
                raise InputError(f"parameter {name!r} has non-floating dtype {p.dtype}")
        self.store_dtype = self._params[0].dtype  # lossless for every parameter
        for p in self._params[1:]:
            self.store_dtype = torch.promote_types(self.store_dtype, p.dtype)

        # Layout: groups one after another, each a contiguous slice [start, end).
        self.group_names: list[str] = list(self.assignment.tracked)
        self._segments: list[tuple[int, int]] = []
        offset = 0
        self._offsets: list[int] = []
        for group in self.group_names:
            start = offset
            for name in self.assignment.tracked[group]:
                self._offsets.append(offset)
                offset += named[name].numel()
            self._segments.append((start, offset))
        self.n_params = offset
        self._group_sizes = [end - start for start, end in self._segments] + [offset]
        self.report_groups: list[str] = [*self.group_names, ALL_GROUP]
        n_groups = len(self.group_names)

        self._rows = torch.zeros((4, self.n_params), dtype=self.store_dtype, device=self.device)
        self._row_views = [self._param_views(row) for row in (_W_A, _W_B, _GRAD)]
        self._cur = _W_A  # the row holding W_t
        self._values = torch.zeros((n_groups + 1, _N_COLUMNS), dtype=torch.float64, device=self.device)
        # acc[0] = Σ‖Δ_t‖², acc[1] = Σ⟨W_t, Δ_t⟩, acc[2] = Σ‖Δ_t‖ (path length), per group + all.
        self._acc = torch.zeros((3, n_groups + 1), dtype=torch.float64, device=self.device)
        self._row_width = _N_COLUMNS + 1
        self._row_block = torch.zeros(
            (_ROW_BLOCK, n_groups + 1, self._row_width), dtype=torch.float64, device=self.device
        )
        self._row_fill = 0
        self._host_rows: list[np.ndarray] = []
        self._tracked_steps: list[int] = []

        with torch.no_grad():
            torch._foreach_copy_(self._row_views[_W_A], self._params)
            self._rows[_INIT].copy_(self._rows[_W_A])
            self._w0 = self._rows[_INIT]
            w0 = self._w0.double()
            init_sq = self._group_dots(w0, w0)
            self._ref: torch.Tensor | None = None
            ref_to_init_sq = None
            if ae_method == "reference":
                self._ref = self._flatten_state(reference, "reference")
                ref_to_init = self._ref - w0
                ref_to_init_sq = self._group_dots(ref_to_init, ref_to_init)
                del ref_to_init
            del w0
        self._init_sq = init_sq.cpu().numpy()
        self._ref_to_init_sq = None if ref_to_init_sq is None else ref_to_init_sq.cpu().numpy()
        if chunk_elements is None:
            chunk_elements = 0 if self.device.type == "cuda" else _CPU_CHUNK
        if isinstance(chunk_elements, bool) or not isinstance(chunk_elements, int) or chunk_elements < 0:
            raise InputError(
                f"chunk_elements must be a positive integer (0 = whole groups), got {chunk_elements!r}"
            )
        self._fused = self._choose_backend(backend)
        self.backend = "torch" if self._fused is None else "numba"
        if self._fused is None:
            self._build_chunk_plan(chunk_elements or None)
        else:
            self._plan, self._scratch, self._chunk_values = [], None, None
            # numpy views sharing memory with the CPU tensors (the kernels write into them in place)
            self._rows_np = self._rows.numpy()
            self._values_np = self._values.numpy()
            self._acc_np = self._acc.numpy()
            self._row_block_np = self._row_block.numpy()
            self._ref_np = None if self._ref is None else self._ref.numpy()
            self._bounds_np = np.array([0] + [end for _, end in self._segments], dtype=np.int64)
            self._offsets_np = np.array([*self._offsets, self.n_params], dtype=np.int64)
            counts = [len(self.assignment.tracked[group]) for group in self.group_names]
            self._group_tensors_np = np.cumsum([0, *counts], dtype=np.int64)
            # where the kernel reads W_{t+1} and g_t from, refreshed at every step (see _fused_sources)
            self._param_addresses = np.zeros(len(self._params), dtype=np.int64)
            self._sizes = [p.numel() for p in self._params]
            self._grad_addresses = np.zeros(len(self._params), dtype=np.int64)
            self._no_ref = np.zeros(0)
            self._no_snapshot = np.zeros((2, 0), dtype=self._rows_np.dtype)

        self._snapshots: SnapshotStore | None = None
        if ae_method == "snapshots":
            self._snapshots = SnapshotStore(
                self.n_params, self.store_dtype, self.device, snapshot_memory_bytes, snapshot_dir
            )

        self._t = 0
        self._validation: list[tuple[int, float]] = []
        self._best: tuple[int, float] | None = None
        self._best_w: torch.Tensor | None = None
        self._final: dict[str, Any] | None = None
        self._records_cache: list[dict[str, Any]] | None = None

    # ------------------------------------------------------------------ layout helpers
    def _choose_backend(self, backend: str) -> dict[str, Callable[..., Any]] | None:
        """The fused numba kernels when ``backend`` allows them and they apply, else None (torch)."""
        if backend == "torch":
            return None
        kernels, reason = None, None
        if self.device.type != "cpu":
            reason = f"the parameters are on {self.device}, numba kernels run on the CPU"
        elif self.store_dtype not in (torch.float32, torch.float64):
            reason = f"numba has no CPU kernels for {self.store_dtype}"
        else:
            kernels = fused.kernels(np.float32 if self.store_dtype == torch.float32 else np.float64)
            if kernels is None:
                reason = f"numba failed ({fused.unavailable_reason()})"
        if kernels is None and backend == "numba":
            raise InputError(f"backend='numba' is not available: {reason}")
        return kernels

    def _param_views(self, row: int) -> list[torch.Tensor]:
        return [
            self._rows[row, offset : offset + p.numel()].view(p.shape)
            for offset, p in zip(self._offsets, self._params, strict=True)
        ]

    def _build_chunk_plan(self, chunk: int | None) -> None:
        """Split every group into chunks (never across groups) and prepare their views once.

        For each chunk: the stored rows to convert, the float64 scratch rows, and the output slots of
        its inner products. With one chunk per group the dots write straight into the group rows.
        """
        longest = max(end - start for start, end in self._segments)
        width = longest if chunk is None else min(chunk, longest)
        self._scratch = torch.zeros((6, width), dtype=torch.float64, device=self.device)
        spans = []
        for group, (start, end) in enumerate(self._segments):
            for a in range(start, end, width):
                spans.append((group, a, min(end, a + width)))
        self._one_chunk_per_group = len(spans) == len(self._segments)
        if self._one_chunk_per_group:
            self._chunk_values = self._values[: len(self._segments)]
        else:
            self._chunk_values = torch.zeros(
                (len(spans), _N_COLUMNS), dtype=torch.float64, device=self.device
            )
            self._chunk_group = torch.tensor([g for g, _, _ in spans], dtype=torch.long, device=self.device)
        plan = []
        for index, (_, a, b) in enumerate(spans):
            scratch = self._scratch[:, : b - a]
            out = self._chunk_values[index]
            plan.append(
                {
                    "source2": self._rows[_W_A : _W_B + 1, a:b],
                    "source4": self._rows[_W_A : _INIT + 1, a:b],
                    "target2": scratch[_S_W_A : _S_W_B + 1],
                    "target4": scratch[_S_W_A : _S_FROM_INIT + 1],
                    "delta": scratch[_S_DELTA],
                    "step_rows": scratch[_S_DELTA : _S_W_B + 1],
                    "weights": {_W_A: scratch[_S_W_A], _W_B: scratch[_S_W_B]},
                    "grad": scratch[_S_GRAD],
                    "grad_rows": scratch[_S_GRAD : (_S_FROM_REF if self._ref is None else _S_FROM_REF + 1)],
                    "from_init": scratch[_S_FROM_INIT],
                    "from_ref": scratch[_S_FROM_REF],
                    "ref": None if self._ref is None else self._ref[a:b],
                    "out_step": out[_C_STEP_SQ : _C_W_B_STEP + 1],
                    "out_grad": out[_C_GRAD_SQ : (_C_GRAD_REF if self._ref is None else _C_GRAD_REF + 1)],
                    "out_init_sq": out[_C_INIT_SQ],
                    "out_ref_sq": out[_C_REF_SQ],
                }
            )
        self._plan = plan

    def _group_dots(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """⟨a, b⟩ per group and for all (flat float64 vectors in the tracker's layout), on the device."""
        parts = [torch.dot(a[s:e], b[s:e]) for s, e in self._segments]
        parts.append(torch.stack(parts).sum())
        return torch.stack(parts)

    def _flatten_state(self, state: StateLike, what: str) -> torch.Tensor:
        """A state dict / module -> flat float64 vector over the tracked parameters, on the device."""
        if isinstance(state, nn.Module):
            state = state.state_dict()
        if not isinstance(state, Mapping):
            raise InputError(f"{what} must be a state dict or an nn.Module, got {type(state).__name__}")
        flat = torch.empty(self.n_params, dtype=torch.float64, device=self.device)
        for name, offset, p in zip(self._names, self._offsets, self._params, strict=True):
            if name not in state:
                raise InputError(f"{what} has no entry for tracked parameter {name!r}")
            value = state[name]
            if not isinstance(value, torch.Tensor):
                raise InputError(f"{what}[{name!r}] is not a tensor")
            if value.shape != p.shape:
                raise InputError(
                    f"{what}[{name!r}] has shape {tuple(value.shape)}, the parameter {tuple(p.shape)}"
                )
            flat[offset : offset + p.numel()].copy_(value.detach().reshape(-1))
        return flat

    # ------------------------------------------------------------------ training-time API
    @property
    def steps(self) -> int:
        """Number of :meth:`step` calls so far (T)."""
        return self._t

    @property
    def finalized(self) -> bool:
        return self._final is not None

    @torch.no_grad()
    def step(self) -> None:
        """Account for the update just applied by the optimizer (call right after ``optimizer.step()``)."""
        if self._final is not None:
            raise InputError("tracker.step() called after finalize(); build a new tracker for a new run")
        t = self._t
        first_check = t == 0 and self._check_first_step
        if t == 0:
            for name, p in zip(self._names, self._params, strict=True):
                if p.device != self.device:
                    raise InputError(
                        f"parameter {name!r} moved from {self.device} to {p.device} after the tracker "
                        "was built"
                    )
        tracked = bool(self._schedule(t))
        grads = None
        if tracked or first_check:
            grads = [p.grad for p in self._params]
            if all(g is None for g in grads):
                raise InputError(
                    "tracker.step(): no tracked parameter has a gradient; call it after loss.backward() and "
                    "optimizer.step(), before optimizer.zero_grad()"
                )
        cur = self._cur
        nxt = _W_A + _W_B - cur
        # The fused kernel writes the snapshot while it reads W_t and g_t, except on a step that may still
        # be refused (the first-call check), which must leave no trace.
        fused_snapshot = (
            tracked and self._fused is not None and self._snapshots is not None and not first_check
        )
        if self._fused is not None:
            self._fused_step(tracked, cur, nxt, grads, first_check, fused_snapshot)
        else:
            torch._foreach_copy_(self._row_views[nxt], self._params)
            if tracked:
                self._copy_grads(grads)
            self._torch_step(tracked, cur, nxt)
        n_groups = len(self._segments)
        if first_check and float(self._values[n_groups, _C_STEP_SQ]) == 0.0:
            raise InputError(
                "tracker.step(): the weights have not changed since the tracker was built; call it right "
                "after optimizer.step() (pass check_first_step=False if the first update is a no-op)"
            )
        if self._fused is not None:
            self._fused_accumulate(tracked, cur)
        else:
            self._torch_accumulate(tracked, cur)
        if tracked:
            self._tracked_steps.append(t)
            if self._snapshots is not None and not fused_snapshot:
                self._snapshots.append(self._rows[cur], self._rows[_GRAD])
        self._cur = nxt
        self._t = t + 1
        self._records_cache = None

    def _fused_step(
        self, tracked: bool, cur: int, nxt: int, grads: list | None, first_check: bool, snapshot: bool
    ) -> None:
        """The step in one pass (numba, CPU): reads W_{t+1} from the parameters and g_t from their
        gradients, copies W_{t+1} into row ``nxt``, computes the inner products and, with ``snapshot``,
        stores (W_t, g_t) in the next snapshot slot."""
        layout = (self._offsets_np, self._group_tensors_np)
        params = self._fused_sources(nxt)
        if not tracked:
            self._fused["untracked"](params, self._rows_np, cur, nxt, *layout, self._values_np)
            return
        if first_check:
            # the step may still be refused: keep g_t in its row, so that a snapshot can be taken after
            # the check (and nothing is reserved before it)
            self._copy_grads(grads)
            self._grad_addresses[:] = [view.data_ptr() for view in self._row_views[_GRAD]]
        else:
            self._fused_grad_sources(grads)
        if self._ref_np is not None:
            mode, ref, target = fused.REFERENCE, self._ref_np, self._no_snapshot
        elif snapshot:
            mode, ref, target = fused.SNAPSHOT, self._no_ref, self._snapshots.reserve().numpy()
        else:
            mode, ref, target = fused.PLAIN, self._no_ref, self._no_snapshot
        self._fused["tracked"](
            params, self._grad_addresses, self._rows_np, cur, nxt, *layout, mode, ref, target, self._values_np
        )

    def _fused_sources(self, nxt: int) -> np.ndarray:
        """The addresses of W_{t+1} per tracked tensor for the kernel: the parameter's own memory when it
        is a contiguous CPU tensor of the store dtype (the usual case), else a copy in row ``nxt``."""
        addresses, dtype, sizes = self._param_addresses, self.store_dtype, self._sizes
        for i, p in enumerate(self._params):
            # (a parameter resized since the tracker was built goes through the copy, which refuses it)
            if p.is_cpu and p.dtype == dtype and p.is_contiguous() and p.numel() == sizes[i]:
                addresses[i] = p.data_ptr()
            else:
                view = self._row_views[nxt][i]
                view.copy_(p)
                addresses[i] = view.data_ptr()
        return addresses

    def _fused_grad_sources(self, grads: list[torch.Tensor | None]) -> None:
        """The addresses of g_t per tracked tensor: the gradient's own memory when it is a dense,
        contiguous CPU tensor of the store dtype, else a copy in the gradient row (zeros for ``None``,
        densified when sparse)."""
        addresses, dtype, sizes = self._grad_addresses, self.store_dtype, self._sizes
        for i, g in enumerate(grads):
            if (
                g is not None
                and g.layout == torch.strided
                and g.is_cpu
                and g.dtype == dtype
                and g.is_contiguous()
                and g.numel() == sizes[i]
            ):
                addresses[i] = g.data_ptr()
                continue
            view = self._row_views[_GRAD][i]
            if g is None:
                view.zero_()  # a parameter the loss did not touch this step: zero gradient
            else:
                view.copy_(g.to_dense() if g.is_sparse else g)
            addresses[i] = view.data_ptr()

    def _fused_accumulate(self, tracked: bool, cur: int) -> None:
        """Row storage and every-step sums on the numpy views (no torch dispatch: a few µs)."""
        values, acc = self._values_np, self._acc_np
        if tracked:
            if self._row_fill == _ROW_BLOCK:
                self._flush_rows()
            row = self._row_block_np[self._row_fill]
            row[:, :_N_COLUMNS] = values
            row[:, _N_COLUMNS] = acc[2]  # path length up to W_t (before adding ‖Δ_t‖)
            self._row_fill += 1
        step_sq = values[:, _C_STEP_SQ]
        acc[0] += step_sq
        acc[1] += values[:, _C_W_STEP[cur]]
        acc[2] += np.sqrt(np.maximum(step_sq, 0.0))  # NaN stays NaN, as torch's clamp(min=0)

    def _torch_step(self, tracked: bool, cur: int, nxt: int) -> None:
        """The step's inner products with torch kernels, chunk by chunk (any device and dtype)."""
        dot, sub, mv = torch.dot, torch.sub, torch.mv
        for chunk in self._plan:
            # float64 copies of (W_A, W_B) — plus g and W_0 on tracked steps — in one conversion
            if tracked:
                chunk["target4"].copy_(chunk["source4"])
            else:
                chunk["target2"].copy_(chunk["source2"])
            delta, weights = chunk["delta"], chunk["weights"][cur]
            sub(chunk["weights"][nxt], weights, out=delta)
            mv(chunk["step_rows"], delta, out=chunk["out_step"])  # ‖Δ‖², ⟨W_A, Δ⟩, ⟨W_B, Δ⟩
            if tracked:
                from_init = chunk["from_init"]
                sub(weights, from_init, out=from_init)  # the row held W_0; now W_t − W_0
                if chunk["ref"] is not None:
                    sub(weights, chunk["ref"], out=chunk["from_ref"])
                    dot(chunk["from_ref"], chunk["from_ref"], out=chunk["out_ref_sq"])
                # ‖g‖², ⟨g, W_t − W_0⟩ and, with a reference, ⟨g, W_t − W*⟩
                mv(chunk["grad_rows"], chunk["grad"], out=chunk["out_grad"])
                dot(from_init, from_init, out=chunk["out_init_sq"])
        if not self._one_chunk_per_group:
            self._values.zero_()
            self._values.index_add_(0, self._chunk_group, self._chunk_values)
        values, n_groups = self._values, len(self._segments)
        torch.sum(values[:n_groups], dim=0, out=values[n_groups])

    def _torch_accumulate(self, tracked: bool, cur: int) -> None:
        """Row storage and every-step sums with torch ops (on the device: no host synchronisation)."""
        values = self._values
        step_sq = values[:, _C_STEP_SQ]
        if tracked:
            self._store_row(values)
        self._acc[0].add_(step_sq)
        self._acc[1].add_(values[:, _C_W_STEP[cur]])
        self._acc[2].add_(step_sq.clamp(min=0).sqrt())

    def _copy_grads(self, grads: list[torch.Tensor | None]) -> None:
        targets, sources = [], []
        for view, grad in zip(self._row_views[_GRAD], grads, strict=True):
            if grad is None:
                view.zero_()  # a parameter the loss did not touch this step: zero gradient
            else:
                targets.append(view)
                sources.append(grad.to_dense() if grad.is_sparse else grad)
        torch._foreach_copy_(targets, sources)

    def _store_row(self, values: torch.Tensor) -> None:
        if self._row_fill == _ROW_BLOCK:
            self._flush_rows()
        row = self._row_block[self._row_fill]
        row[:, :_N_COLUMNS].copy_(values)
        row[:, _N_COLUMNS].copy_(self._acc[2])  # path length up to W_t (before adding ‖Δ_t‖)
        self._row_fill += 1

    def _flush_rows(self) -> None:
        if self._row_fill:
            self._host_rows.append(self._row_block[: self._row_fill].to("cpu", copy=True).numpy())
            self._row_fill = 0

    @torch.no_grad()
    def report_validation(self, loss: float | torch.Tensor) -> None:
        """Note the validation loss at the current weights W_t (t = steps so far).

        The weights of the lowest finite loss are kept (one float64 copy), for ``finalize(w_star="best")``.
        """
        if self._final is not None:
            raise InputError("report_validation() called after finalize()")
        value = float(loss)
        self._validation.append((self._t, value))
        if math.isfinite(value) and (self._best is None or value < self._best[1]):
            self._best = (self._t, value)
            if self._best_w is None:
                self._best_w = self._rows[self._cur].clone()
            else:
                self._best_w.copy_(self._rows[self._cur])

    # ------------------------------------------------------------------ checkpoints
    @torch.no_grad()
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume tracking in a new process (CPU tensors and plain Python values).

        Weight vectors are stored in the parameters' dtype (lossless: they are parameter values); the
        reference and the sums in float64. With ``ae_method="snapshots"`` the stored snapshots are
        included, so prefer a ``log:N`` schedule when checkpointing long runs.
        """
        if self._final is not None:
            raise InputError("state_dict() after finalize(): the run is over, use to_dict() for the results")
        self._flush_rows()
        rows = self._host_rows_array()

        def host(vector: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
            return None if vector is None else vector.to("cpu", dtype, copy=True)

        snapshots = None
        if self._snapshots is not None:
            blocks = [block.clone() for _, block in self._snapshots.iterate(len(self._snapshots) or 1)]
            snapshots = (
                torch.cat(blocks) if blocks else torch.empty((0, 2, self.n_params), dtype=self.store_dtype)
            )
        return {
            "version": SCHEMA_VERSION,
            "names": list(self._names),
            "groups": {group: list(names) for group, names in self.assignment.tracked.items()},
            "ae_method": self.ae_method,
            "schedule": str(self._schedule_spec),
            "steps": self._t,
            "weights": host(self._rows[self._cur], self.store_dtype),
            "initial": host(self._w0, self.store_dtype),
            "reference": host(self._ref, torch.float64),
            "best_weights": host(self._best_w, self.store_dtype),
            "best": None if self._best is None else [self._best[0], self._best[1]],
            "validation": [[step, loss] for step, loss in self._validation],
            "sums": self._acc.to("cpu", copy=True),
            "rows": torch.from_numpy(rows.copy()),
            "tracked_steps": list(self._tracked_steps),
            "snapshots": snapshots,
        }

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict` of a tracker built the same way (same model, groups, method).

        Call it on a fresh tracker, before its first :meth:`step`; the model must already hold the
        checkpointed weights (W_t of the saved state), as after ``model.load_state_dict``.
        """
        if self._t != 0 or self._final is not None:
            raise InputError("load_state_dict() must be called on a fresh tracker, before any step()")
        if not isinstance(state, Mapping) or state.get("version") != SCHEMA_VERSION:
            raise InputError("not a traversal tracker state (or one from an incompatible version)")
        expected = {
            "names": list(self._names),
            "groups": {group: list(names) for group, names in self.assignment.tracked.items()},
            "ae_method": self.ae_method,
            "schedule": str(self._schedule_spec),
        }
        for key, value in expected.items():
            if state.get(key) != value:
                raise InputError(f"tracker state does not match this tracker: different {key}")
        rows = state["rows"].numpy()
        if rows.ndim != 3 or rows.shape[1:] != (len(self.report_groups), self._row_width):
            raise InputError("tracker state does not match this tracker: row layout differs")
        self._cur = _W_A
        self._rows[_W_A].copy_(state["weights"])
        self._rows[_INIT].copy_(state["initial"])
        w0 = self._w0.double()
        if self._ref is not None:
            self._ref.copy_(state["reference"])
            ref_to_init = self._ref - w0
            self._ref_to_init_sq = self._group_dots(ref_to_init, ref_to_init).cpu().numpy()
        self._init_sq = self._group_dots(w0, w0).cpu().numpy()
        best = state["best_weights"]
        self._best_w = None if best is None else best.to(self.device, self.store_dtype, copy=True)
        self._best = None if state["best"] is None else (int(state["best"][0]), float(state["best"][1]))
        self._validation = [(int(step), float(loss)) for step, loss in state["validation"]]
        self._acc.copy_(state["sums"])
        self._host_rows = [rows.copy()] if len(rows) else []
        self._row_fill = 0
        self._tracked_steps = [int(t) for t in state["tracked_steps"]]
        if self._snapshots is not None:
            for pair in state["snapshots"]:
                self._snapshots.append(pair[0], pair[1])
        self._t = int(state["steps"])
        self._check_first_step = False  # the first call of this process continues a run
        self._records_cache = None

    def _resolve_w_star(self, w_star: StateLike | str | None) -> tuple[torch.Tensor, str]:
        if self.ae_method == "reference":
            if w_star is not None and w_star != "reference":
                raise InputError(
                    "with ae_method='reference', W* is the reference: call finalize() without w_star"
                )
            return self._ref, "reference"
        if w_star is None or (isinstance(w_star, str) and w_star == "final"):
            return self._rows[self._cur].double(), "final"
        if isinstance(w_star, str):
            if w_star != "best":
                raise InputError(
                    f"w_star must be None, 'final', 'best', a state dict or a module, got {w_star!r}"
                )
            if self._best_w is None:
                raise InputError("finalize(w_star='best') needs report_validation() calls with a finite loss")
            return self._best_w.double(), "best"
        return self._flatten_state(w_star, "w_star"), "given"

    @torch.no_grad()
    def finalize(self, w_star: StateLike | str | None = None) -> dict[str, dict[str, Any]]:
        """Fix W*, compute the exact Ae of every tracked step and check the Yin identity; returns summary().

        ``w_star``: None or ``"final"`` = the weights at the last :meth:`step` (W_T); ``"best"`` = the
        weights at the lowest loss passed to :meth:`report_validation`; or a state dict / module. With
        ``ae_method="reference"`` W* is the reference and ``w_star`` must be omitted. Releases the work
        buffers and snapshots; further :meth:`step` calls raise.
        """
        if self._final is not None:
            raise InputError("finalize() was already called")
        if self._t == 0:
            raise InputError("finalize() before any tracker.step(): nothing was tracked")
        star, label = self._resolve_w_star(w_star)
        self._flush_rows()
        final, init = self._rows[self._cur].double(), self._w0.double()
        final_from_star, init_from_star, displacement = final - star, init - star, final - init
        del final, init
        sums = torch.stack(
            [
                self._group_dots(final_from_star, final_from_star),  # ‖W_T − W*‖²
                self._group_dots(init_from_star, init_from_star),  # ‖W_0 − W*‖²
                self._group_dots(star, displacement),  # ⟨W*, W_T − W_0⟩
                self._group_dots(displacement, displacement),  # ‖W_T − W_0‖²
            ]
        )
        del final_from_star, init_from_star, displacement
        host = torch.cat([sums, self._acc]).cpu().numpy()
        final_to_star_sq, init_to_star_sq, star_dot_disp, final_from_init_sq = host[:4]
        sum_step_sq, sum_w_dot_step, path_length = host[4:]

        ae_dot = ae_sq = None
        if self._snapshots is not None:
            ae_dot, ae_sq = self._ae_from_snapshots(star)
            self._snapshots.close()
        self._final = {
            "w_star": label,
            "best": self._best,
            "final_to_star_sq": final_to_star_sq,
            "init_to_star_sq": init_to_star_sq,
            "star_dot_displacement": star_dot_disp,
            "final_from_init_sq": final_from_init_sq,
            "sum_step_sq": sum_step_sq,
            "sum_w_dot_step": sum_w_dot_step,
            "path_length": path_length,
            "ae_dot": ae_dot,
            "ae_sq": ae_sq,
        }
        # Training is over: drop the device buffers (the snapshot store is already closed).
        self._rows = self._w0 = self._ref = self._best_w = self._scratch = self._chunk_values = None
        self._row_views, self._plan = [], []
        if self._fused is not None:
            self._rows_np = self._ref_np = None
        self._records_cache = None
        return self.summary()

    def _ae_from_snapshots(self, star: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """⟨g_t, W_t − W*⟩ and ‖W_t − W*‖² per tracked step and group, float64, from the stored snapshots."""
        store = self._snapshots
        n_groups = len(self._segments)
        dots = np.empty((len(store), n_groups + 1))
        squares = np.empty((len(store), n_groups + 1))
        if self._fused is not None:  # one pass per snapshot, no float64 temporaries
            per_block = max(1, _FINALIZE_BLOCK_BYTES // max(1, store.snapshot_bytes))
            star_np, bounds = star.contiguous().numpy(), self._bounds_np
            for first, block in store.iterate(per_block):
                stop = first + block.shape[0]
                self._fused["star_sums"](
                    block.numpy(), bounds, star_np, dots[first:stop], squares[first:stop]
                )
            return dots, squares
        per_block = max(1, _FINALIZE_BLOCK_BYTES // (3 * 8 * max(1, self.n_params)))
        for first, block in store.iterate(per_block):
            pair = block.to(device=self.device, dtype=torch.float64)
            weights_from_star = pair[:, 0] - star
            grads = pair[:, 1]
            columns_dot, columns_sq = [], []
            for s, e in self._segments:
                d = weights_from_star[:, s:e]
                columns_dot.append(torch.linalg.vecdot(grads[:, s:e], d))
                columns_sq.append(torch.linalg.vecdot(d, d))
            block_dot = torch.stack(columns_dot, dim=1)
            block_sq = torch.stack(columns_sq, dim=1)
            both = (
                torch.stack(
                    [
                        torch.cat([block_dot, block_dot.sum(1, keepdim=True)], dim=1),
                        torch.cat([block_sq, block_sq.sum(1, keepdim=True)], dim=1),
                    ]
                )
                .cpu()
                .numpy()
            )
            dots[first : first + pair.shape[0]] = both[0]
            squares[first : first + pair.shape[0]] = both[1]
        return dots, squares

    def close(self) -> None:
        """Release the snapshot store (memory and spill file) without finalizing."""
        if self._snapshots is not None:
            self._snapshots.close()

    def __enter__(self) -> TraversalTracker:
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is None and self._final is None and self._t > 0:
            self.finalize()
        else:
            self.close()
        return False

    # ------------------------------------------------------------------ results
    def _host_rows_array(self) -> np.ndarray:
        if self._final is None:
            self._flush_rows()
        n_report = len(self.report_groups)
        if not self._host_rows:
            return np.zeros((0, n_report, self._row_width))
        if len(self._host_rows) > 1:
            self._host_rows = [np.concatenate(self._host_rows)]
        return self._host_rows[0]

    def _step_metrics(self) -> dict[str, np.ndarray]:
        """Per tracked step × report group arrays of every record field (NaN = undefined)."""
        rows = self._host_rows_array()
        step_sq, grad_sq, init_sq = rows[..., _C_STEP_SQ], rows[..., _C_GRAD_SQ], rows[..., _C_INIT_SQ]
        with np.errstate(divide="ignore", invalid="ignore"):
            w0_norm = safe_sqrt(self._init_sq)
            relative = np.where(w0_norm > 0, safe_sqrt(init_sq) / np.where(w0_norm > 0, w0_norm, 1), np.nan)
        metrics = {
            "distance": safe_sqrt(init_sq),
            "relative_distance": relative,
            "step_size": safe_sqrt(step_sq),
            "grad_norm": safe_sqrt(grad_sq),
            "path_length": rows[..., _N_COLUMNS],
            "as_angle": angle(rows[..., _C_GRAD_INIT], grad_sq, init_sq),
        }
        nan = np.full(step_sq.shape, np.nan)
        star_dot = star_sq = star_to_init_sq = None
        if self.ae_method == "reference":
            star_dot, star_sq = rows[..., _C_GRAD_REF], rows[..., _C_REF_SQ]
            star_to_init_sq = self._ref_to_init_sq
        elif self._final is not None and self._final["ae_dot"] is not None:
            star_dot, star_sq = self._final["ae_dot"], self._final["ae_sq"]
            star_to_init_sq = self._final["init_to_star_sq"]
        if star_dot is None:
            metrics.update(distance_to_star=nan, ae_angle=nan, ae_paper=nan, ae_paper_ratio=nan)
        else:
            ratio, paper = paper_ae(star_dot, grad_sq, safe_sqrt(star_to_init_sq))
            metrics.update(
                distance_to_star=safe_sqrt(star_sq),
                ae_angle=angle(star_dot, grad_sq, star_sq),
                ae_paper=paper,
                ae_paper_ratio=ratio,
            )
        return metrics

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per (tracked step, group); schema in docs/tracker.md. ``None`` = undefined."""
        if self._records_cache is None:
            metrics = self._step_metrics()
            rows = []
            for i, step in enumerate(self._tracked_steps):
                for j, group in enumerate(self.report_groups):
                    row: dict[str, Any] = {"step": step, "group": group}
                    for key, values in metrics.items():
                        row[key] = _json_float(values[i, j])
                    rows.append(row)
            self._records_cache = rows
        return [dict(row) for row in self._records_cache]

    @torch.no_grad()
    def summary(self) -> dict[str, dict[str, Any]]:
        """Per-group totals and means (JSON-ready); W*-dependent fields are None before :meth:`finalize`."""
        if self._final is not None:
            f = self._final
            final_from_init_sq, sum_step_sq = f["final_from_init_sq"], f["sum_step_sq"]
            sum_w_dot_step, path_length = f["sum_w_dot_step"], f["path_length"]
        else:
            displacement = self._rows[self._cur].double() - self._w0.double()
            host = torch.cat([self._group_dots(displacement, displacement)[None], self._acc]).cpu().numpy()
            final_from_init_sq, sum_step_sq, sum_w_dot_step, path_length = host
        metrics = self._step_metrics()
        tracked = np.asarray(self._tracked_steps, dtype=np.int64)
        result: dict[str, dict[str, Any]] = {}
        for j, group in enumerate(self.report_groups):
            tracked_names = self._names if group == ALL_GROUP else self.assignment.tracked[group]
            if group == ALL_GROUP:
                frozen = [name for g in GROUP_NAMES for name in self.assignment.frozen[g]]
            else:
                frozen = list(self.assignment.frozen[group])
            w0_norm = math.sqrt(max(self._init_sq[j], 0.0))
            distance = math.sqrt(max(final_from_init_sq[j], 0.0))
            ratio = metrics["ae_paper_ratio"][:, j]
            entry: dict[str, Any] = {
                "n_params": self._group_sizes[j],
                "parameters": list(tracked_names),
                "frozen_parameters": frozen,
                "n_steps": self._t,
                "n_tracked": len(self._tracked_steps),
                "initial_norm": w0_norm,
                "final_distance": distance,
                "relative_final_distance": distance / w0_norm if w0_norm > 0 else math.nan,
                "path_length": path_length[j],
                "mean_step_size": path_length[j] / self._t if self._t else math.nan,
                "sum_step_sq": sum_step_sq[j],
                "sum_w_dot_step": sum_w_dot_step[j],
                "mean_grad_norm": path_mean(tracked, metrics["grad_norm"][:, j], self._t),
                "mean_as": path_mean(tracked, metrics["as_angle"][:, j], self._t),
                "mean_ae": path_mean(tracked, metrics["ae_angle"][:, j], self._t),
                "mean_ae_paper": path_mean(tracked, metrics["ae_paper"][:, j], self._t),
                "ae_paper_undefined": int(np.sum(np.isfinite(ratio) & (np.abs(ratio) > 1.0))),
                # Exactly zero gradients at tracked steps usually mean zero_grad() ran before step().
                "zero_grad_steps": int(np.sum(metrics["grad_norm"][:, j] == 0.0)),
                "w_star": None,
                "distance_init_to_star": math.nan,
                "distance_final_to_star": math.nan,
                "yin_lhs": math.nan,
                "yin_rhs": math.nan,
                "yin_cross_sum": math.nan,
                "yin_abs_residual": math.nan,
                "yin_rel_residual": math.nan,
            }
            if self._final is not None:
                f = self._final
                entry["w_star"] = f["w_star"]
                entry["distance_init_to_star"] = math.sqrt(max(f["init_to_star_sq"][j], 0.0))
                entry["distance_final_to_star"] = math.sqrt(max(f["final_to_star_sq"][j], 0.0))
                entry.update(
                    yin_check(
                        float(f["final_to_star_sq"][j]),
                        float(f["init_to_star_sq"][j]),
                        float(sum_step_sq[j]),
                        float(sum_w_dot_step[j]),
                        float(f["star_dot_displacement"][j]),
                    )
                )
            result[group] = {
                key: (_json_float(value) if isinstance(value, float | np.floating) else value)
                for key, value in entry.items()
            }
        for group in GROUP_NAMES:  # a group that exists only as frozen parameters is still reported
            if group not in result and self.assignment.frozen[group]:
                result[group] = {
                    "n_params": 0,
                    "parameters": [],
                    "frozen_parameters": list(self.assignment.frozen[group]),
                }
        return result

    def config(self) -> dict[str, Any]:
        """What was tracked and how (JSON-ready)."""
        best = self._best if self._final is None else self._final["best"]
        return {
            "schema_version": SCHEMA_VERSION,
            "schedule": str(self._schedule_spec),
            "ae_method": self.ae_method,
            "groups": {group: list(self.assignment.tracked[group]) for group in self.group_names},
            "n_params": self.n_params,
            "device": str(self.device),
            "store_dtype": str(self.store_dtype).removeprefix("torch."),
            "backend": self.backend,
            "n_steps": self._t,
            "tracked_steps": list(self._tracked_steps),
            "validation": [{"step": s, "loss": _json_float(v)} for s, v in self._validation],
            "best_validation": None if best is None else {"step": best[0], "loss": best[1]},
            "finalized": self._final is not None,
        }

    def to_records(self) -> list[dict[str, Any]]:
        """One flat table for a results store: the step rows (``kind="step"``) then one
        ``kind="summary"`` row per group (summary fields, list-valued ones left out)."""
        rows = [{"kind": "step", **row} for row in self.records()]
        for group, entry in self.summary().items():
            flat = {key: value for key, value in entry.items() if not isinstance(value, list)}
            rows.append({"kind": "summary", "group": group, **flat})
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Everything: ``{"config", "summary", "records"}``, JSON-ready."""
        return {"config": self.config(), "summary": self.summary(), "records": self.records()}

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON atomically (temporary file + rename); returns the path."""
        target = Path(path)
        if not target.parent.is_dir():
            raise InputError(f"cannot write {target}: folder {target.parent} does not exist")
        if target.is_dir():
            raise InputError(f"cannot write {target}: it is a folder")
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        atomic_write_text(target, text)
        return target
