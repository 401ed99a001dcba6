"""Lesson 02 reference solution: time asynchronous work correctly."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import jax


def timeit(fn: Callable, *args, warmup: int = 1, runs: int = 5) -> float:
    """Exercise 2.6: median seconds of fn(*args) over `runs` timed calls.

    First call fn `warmup` times untimed (compilation happens there). fn returns as soon
    as its work is queued, like any JAX call: each timed run must wait for the result
    (jax.block_until_ready) before stopping the clock. Use time.perf_counter.
    """
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)
