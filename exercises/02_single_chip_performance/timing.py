"""Lesson 02 exercise: time asynchronous work correctly.

Check with `python -m pytest exercises/02_single_chip_performance`.
"""

from __future__ import annotations

from typing import Callable


def timeit(fn: Callable, *args, warmup: int = 1, runs: int = 5) -> float:
    """Exercise 2.6: median seconds of fn(*args) over `runs` timed calls.

    First call fn `warmup` times untimed (compilation happens there). fn returns as soon
    as its work is queued, like any JAX call: each timed run must wait for the result
    (jax.block_until_ready) before stopping the clock. Use time.perf_counter.
    """
    raise NotImplementedError("Exercise 2.6: time a function's execution reliably")
