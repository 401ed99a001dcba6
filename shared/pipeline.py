"""Feeding the training loop: shuffled packed batches, built ahead in a thread (lesson 07).

A batch is a pure function of (seed, position): the rows of epoch e are a random
permutation drawn from (seed, e), and batch i takes the next batch_size of them. So
the loader's whole state is one integer, saved in every checkpoint, and a resumed run
sees exactly the batches an uninterrupted one would have.

On several devices, `place` puts each batch on the mesh; on several processes each
process builds only the rows its own devices hold (`jax.make_array_from_callback`
asks for exactly those), and JAX assembles the global batch from the parts.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterator

import jax
import numpy as np
from jax.sharding import Sharding

from shared.config import Error
from shared.data import Rows

Batch = dict[str, np.ndarray]  # inputs, targets, positions, segment_ids, weights: [B, S]


class Loader:
    """Batches of `batch_size` packed rows in a seeded order, from `position` on."""

    def __init__(self, rows: Rows, batch_size: int, seed: int, position: int = 0):
        if len(rows) < batch_size:
            raise Error(f"a batch of {batch_size} rows needs more data: the corpus "
                             f"packs into {len(rows)} rows of {rows.seq_len + 1} tokens")
        self.rows, self.batch_size, self.seed, self.position = rows, batch_size, seed, position
        self._drawn: tuple[int, np.ndarray] | None = None  # (epoch, its order), see _order

    def indices(self, position: int) -> np.ndarray:
        """Row indices [batch_size] of batch number `position`; an epoch is the
        whole batches that fit, the leftover rows wait for a later epoch's shuffle."""
        per_epoch = len(self.rows) // self.batch_size
        epoch, i = divmod(position, per_epoch)
        return self._order(epoch)[i * self.batch_size:(i + 1) * self.batch_size]

    def _order(self, epoch: int) -> np.ndarray:
        """Epoch `epoch`'s permutation of the rows, drawn from (seed, epoch) alone and kept
        while its batches are built: permuting the main job's 85,000 rows takes longer than
        building a batch, and the thread that builds them shares the step's cores."""
        drawn = self._drawn  # one read: the prefetch thread may replace it meanwhile
        if drawn is None or drawn[0] != epoch:
            drawn = self._drawn = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.rows)))
        return drawn[1]

    def batch(self, position: int, rows: slice = slice(None)) -> Batch:
        """Batch number `position`, or only the given rows of it (one process's part)."""
        return self.rows.get(self.indices(position)[rows])

    def __iter__(self) -> Iterator[Batch]:
        while True:
            batch = self.batch(self.position)
            self.position += 1
            yield batch

    def state(self) -> dict:
        return {"seed": self.seed, "position": self.position}


def place(loader: Loader, position: int, sharding: Sharding | None) -> dict[str, jax.Array]:
    """Batch `position` on the devices: whole, or each device's rows built where it lives."""
    if sharding is None:
        return jax.device_put(loader.batch(position))
    shape = (loader.batch_size, loader.rows.seq_len)
    parts: dict[tuple, Batch] = {}  # one build per distinct row range on this process

    def part(name: str, index: tuple[slice, ...]) -> np.ndarray:
        rows = index[0].indices(shape[0])  # (start, stop, step): slices are not hashable
        if rows not in parts:
            parts[rows] = loader.batch(position, slice(*rows))
        return parts[rows][name][:, index[1]]

    return {name: jax.make_array_from_callback(shape, sharding, lambda i, n=name: part(n, i))
            for name in ("inputs", "targets", "positions", "segment_ids", "weights")}


class Prefetch:
    """Run `make(position)` for positions start, start+1, ... in a thread, `depth` ahead.

    `next()` returns (batch, seconds waited): the wait is zero when the thread kept up,
    which is the point. The thread stops at close() or when the consumer is gone.
    """

    def __init__(self, make: Callable[[int], object], start: int, depth: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make, start), daemon=True)
        self._thread.start()

    def _run(self, make, position) -> None:
        while not self._stop.is_set():
            try:
                item = (make(position), None)
            except Exception as e:  # handed to the consumer, raised there
                item = (None, e)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item[1] is not None:
                return
            position += 1

    def next(self) -> tuple[object, float]:
        start = time.perf_counter()
        item, error = self._queue.get()
        if error is not None:
            raise error
        return item, time.perf_counter() - start

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
