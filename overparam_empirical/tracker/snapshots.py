"""Storage of (W_t, g_t) at tracked steps, for the exact end-of-run angle Ae(t) = ∠(g_t, W_t − W*).

W* (the weights of minimum validation loss) is known only when training ends, so the tracker keeps the
two vectors it needs of every tracked step. They are stored in the parameters' own dtype (the widest
one when dtypes are mixed), which is lossless: the values *are* that dtype. Cost: 2 × (trainable
parameters) × itemsize bytes per tracked step — use a ``log:N`` schedule for long runs.

Snapshots fill host-memory chunks (page-locked when the model is on CUDA, so that the device→host copy
is asynchronous) up to ``memory_bytes``; beyond that each full chunk is appended to a raw file in
``spill_dir`` and read back through ``numpy.memmap`` when the angles are computed. The file is deleted
by :meth:`SnapshotStore.close` (and when the store is garbage-collected).

Recycling. The first write to fresh memory costs a page fault per 4 KiB page — measured ≈ 1.1 ns per
float32 on the project's VM, i.e. ≈ 2 ns per parameter per tracked step, more than the fused kernel's
whole pass over the weights. So host chunks (64 MiB buffers) released by :meth:`SnapshotStore.close`
(which ``finalize()`` calls) are kept, up to :data:`POOL_LIMIT_BYTES` per process, and handed to the next
store of the process — the next run of a study worker, the next tracker of a benchmark — as torch's
pinned-memory allocator already does for the CUDA case. :func:`release_snapshot_memory` frees them.
Snapshots beyond what earlier stores released still pay the page faults.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from overparam_theory.errors import InputError

_CHUNK_BYTES = 64 * 2**20
POOL_LIMIT_BYTES = 512 * 2**20  # released host chunks kept for reuse, per process

# Released uint8 CPU buffers of _CHUNK_BYTES, with how many leading bytes were ever written (those pages
# are mapped: writing them again costs no page fault). The most written buffer is handed out first.
_pool: list[tuple[int, torch.Tensor]] = []
_pool_lock = threading.Lock()


def _take_buffer() -> tuple[int, torch.Tensor]:
    """A buffer for a new chunk and its written extent: recycled if one is free, else fresh (extent 0)."""
    with _pool_lock:
        if _pool:
            best = max(range(len(_pool)), key=lambda i: _pool[i][0])
            return _pool.pop(best)
    return 0, torch.empty(_CHUNK_BYTES, dtype=torch.uint8)


def _give_buffers(buffers: list[tuple[int, torch.Tensor]]) -> None:
    """Keep released buffers for reuse, the most written first, up to POOL_LIMIT_BYTES in all."""
    with _pool_lock:
        _pool.extend(buffers)
        _pool.sort(key=lambda entry: -entry[0])
        del _pool[max(0, POOL_LIMIT_BYTES // _CHUNK_BYTES) :]


def release_snapshot_memory() -> int:
    """Free the host memory kept from closed snapshot stores; returns how many bytes were released."""
    with _pool_lock:
        released = len(_pool) * _CHUNK_BYTES
        _pool.clear()
    return released


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


class SnapshotStore:
    """Append-only store of ``(2, n_elements)`` snapshots: row 0 = W_t, row 1 = g_t."""

    def __init__(
        self,
        n_elements: int,
        dtype: torch.dtype,
        device: torch.device,
        memory_bytes: int,
        spill_dir: str | os.PathLike | None = None,
    ) -> None:
        if memory_bytes < 0:
            raise InputError(f"snapshot memory budget must be >= 0 bytes, got {memory_bytes}")
        self.n_elements = n_elements
        self.dtype = dtype
        self.device = device
        self.memory_bytes = memory_bytes
        self.snapshot_bytes = 2 * n_elements * torch.empty((), dtype=dtype).element_size()
        self.chunk_len = max(1, min(_CHUNK_BYTES, max(memory_bytes, 1)) // self.snapshot_bytes)
        self._pin = device.type == "cuda"
        # Chunks that fit a standard buffer come from (and go back to) the process's recycled buffers.
        self._recycle = not self._pin and self.chunk_len * self.snapshot_bytes <= _CHUNK_BYTES
        self._buffers: list[tuple[int, torch.Tensor]] = []  # (written extent before this store, buffer)
        self._resident: list[torch.Tensor] = []
        self._current: torch.Tensor | None = None
        self._fill = 0
        self._n_spilled = 0
        self._spill_dir = Path(spill_dir) if spill_dir is not None else Path(tempfile.gettempdir())
        self._spill_path: str | None = None
        self._spill_file = None
        self._cleanup: weakref.finalize | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._resident) * self.chunk_len + self._n_spilled + self._fill

    @property
    def spilled(self) -> int:
        """How many snapshots live in the spill file."""
        return self._n_spilled

    @property
    def spill_path(self) -> str | None:
        return self._spill_path

    def _new_chunk(self) -> torch.Tensor:
        shape = (self.chunk_len, 2, self.n_elements)
        if not self._recycle:
            return torch.empty(shape, dtype=self.dtype, pin_memory=self._pin)
        extent, buffer = _take_buffer()
        self._buffers.append((extent, buffer))
        return buffer[: self.chunk_len * self.snapshot_bytes].view(self.dtype).view(shape)

    def _synchronize(self) -> None:
        # The chunk copies are asynchronous on CUDA; host reads must wait for them.
        if self._pin:
            torch.cuda.synchronize(self.device)

    def _spill(self, chunk: torch.Tensor, count: int) -> None:
        if self._spill_file is None:
            try:
                self._spill_dir.mkdir(parents=True, exist_ok=True)
                path = self._spill_dir / f"overparam-snapshots-{os.getpid()}-{uuid.uuid4().hex}.bin"
                self._spill_file = open(path, "wb")  # noqa: SIM115 (kept open across appends)
            except OSError as error:
                raise InputError(f"cannot create a snapshot file in {self._spill_dir}: {error}") from error
            self._spill_path = str(path)
            self._cleanup = weakref.finalize(self, _remove_quietly, self._spill_path)
        self._synchronize()
        self._spill_file.write(chunk[:count].view(torch.uint8).numpy())
        self._n_spilled += count

    def append(self, weights: torch.Tensor, grad: torch.Tensor) -> None:
        """Store (W_t, g_t) (flat, any float dtype, on the model's device), cast to ``dtype``."""
        slot = self.reserve()
        slot[0].copy_(weights, non_blocking=self._pin)
        slot[1].copy_(grad, non_blocking=self._pin)

    def reserve(self) -> torch.Tensor:
        """The next snapshot's storage, a host tensor ``(2, n_elements)`` that the caller fills at once
        (row 0 = W_t, row 1 = g_t): the tracker's fused CPU kernel writes it while reading the rows."""
        if self._closed:
            raise RuntimeError("snapshot store is closed")
        if self._current is None:
            self._current = self._new_chunk()
        elif self._fill == self.chunk_len:
            if (len(self._resident) + 2) * self.chunk_len * self.snapshot_bytes <= self.memory_bytes:
                self._resident.append(self._current)
                self._current = self._new_chunk()
            else:
                self._spill(self._current, self._fill)
            self._fill = 0
        slot = self._current[self._fill]
        self._fill += 1
        return slot

    def iterate(self, max_snapshots: int) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(first_index, block)`` in order; ``block``: CPU tensor ``(k ≤ max_snapshots, 2, n)``."""
        self._synchronize()
        max_snapshots = max(1, max_snapshots)
        index = 0
        for chunk in self._resident:
            for start in range(0, self.chunk_len, max_snapshots):
                block = chunk[start : start + max_snapshots]
                yield index, block
                index += block.shape[0]
        if self._n_spilled:
            self._spill_file.flush()
            row_bytes = self.snapshot_bytes // 2
            mapped = np.memmap(
                self._spill_path, dtype=np.uint8, mode="r", shape=(self._n_spilled, 2, row_bytes)
            )
            for start in range(0, self._n_spilled, max_snapshots):
                raw = torch.from_numpy(np.array(mapped[start : start + max_snapshots]))
                yield index, raw.view(self.dtype)
                index += raw.shape[0]
            del mapped
        if self._current is not None and self._fill:
            for start in range(0, self._fill, max_snapshots):
                block = self._current[start : min(self._fill, start + max_snapshots)]
                yield index, block
                index += block.shape[0]

    def close(self) -> None:
        """Release the memory (to the process's recycled buffers, see the module doc) and delete the
        spill file."""
        self._closed = True
        self._resident = []
        self._current = None
        # every chunk but the last was filled; the last one too if it was ever spilled or is full
        last_full = self._n_spilled > 0 or self._fill == self.chunk_len
        released = []
        for i, (extent, buffer) in enumerate(self._buffers):
            used = self.chunk_len if i < len(self._buffers) - 1 or last_full else self._fill
            released.append((max(extent, used * self.snapshot_bytes), buffer))
        self._buffers = []
        _give_buffers(released)
        if self._spill_file is not None:
            self._spill_file.close()
            self._spill_file = None
        if self._cleanup is not None:
            self._cleanup()
