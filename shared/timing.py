"""Timing JAX code honestly: warm up, block until the result is ready, repeat (lessons 01-02)."""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable

import jax


@dataclass(frozen=True)
class Timing:
    median: float  # seconds
    min: float
    max: float
    runs: int

    def __str__(self) -> str:
        return f"{self.median * 1e3:.3f} ms (min {self.min * 1e3:.3f}, max {self.max * 1e3:.3f}, {self.runs} runs)"


def timeit(fn: Callable, *args, warmup: int = 1, runs: int = 5, min_time: float = 0.0,
           trace_dir: str | os.PathLike | None = None, **kwargs) -> Timing:
    """Time fn(*args, **kwargs) after `warmup` untimed calls (compilation happens there).

    JAX dispatch is asynchronous: fn returns as soon as the work is queued, so each
    run ends with jax.block_until_ready on the result. Runs repeat until both `runs`
    calls and `min_time` seconds are done. With `trace_dir`, the timed runs (not the
    warm-up) are also recorded as a profiler trace there (see shared.profiling); the
    profiler adds a little overhead to each run.
    """
    for _ in range(warmup):
        jax.block_until_ready(fn(*args, **kwargs))
    times: list[float] = []
    recording = jax.profiler.trace(str(trace_dir)) if trace_dir else contextlib.nullcontext()
    with recording:
        start_all = time.perf_counter()
        while len(times) < runs or time.perf_counter() - start_all < min_time:
            start = time.perf_counter()
            jax.block_until_ready(fn(*args, **kwargs))
            times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), min(times), max(times), len(times))


def in_place(fn: Callable, x: jax.Array) -> Callable:
    """A call of jit(fn)(x, *rest) that donates x's buffer and keeps the result as the next x.

    fn(x, *rest) must return an array like x. Each call writes over the previous
    result instead of into newly allocated memory, as a training step with donated
    parameters does; timeit(in_place(fn, x), *rest) then times the streaming alone,
    not the cost of touching fresh pages. x itself is copied first and left intact.
    """
    step = jax.jit(fn, donate_argnums=0)
    state = [x.copy()]

    def call(*rest):
        state[0] = step(state[0], *rest)
        return state[0]

    return call


class Pending:
    """A stand-in for a jax.Array fresh from dispatch: returned at once, ready `seconds` later.

    Lets a test or a lesson show what a timer that does not wait would measure; threading
    timers never fire early, so a correct timer reads at least `seconds`.
    """

    def __init__(self, seconds: float):
        self._done = threading.Event()
        threading.Timer(seconds, self._done.set).start()

    def block_until_ready(self):
        self._done.wait()
        return self
