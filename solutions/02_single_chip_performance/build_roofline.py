"""Exercises 2.7-2.9, answered: a roofline point for any jitted function.

Drop-in replacements for shared.roofline.cost, shared.timing.timeit and the verdict of
shared.roofline.Analysis (intensity, ridge, bound, bound_s, fraction), as
`python -m shared.bench roofline --mine` uses them.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from shared.config import Error
from shared.hardware import Chip


class Cost(NamedTuple):
    flops: float
    bytes: float  # read and written in main memory by the compiled program


class Timing(NamedTuple):
    median: float  # seconds
    min: float
    max: float
    runs: int  # how many runs were timed


class Point(NamedTuple):
    intensity: float  # FLOPs per byte
    ridge: float  # FLOPs per byte where the chip's compute and memory ceilings meet
    bound: str  # "compute" or "memory"
    bound_s: float  # the least time the roofline allows, in seconds
    fraction: float | None  # bound_s over the measured time (1.0: at the roofline); None if not measured


def cost(fn: Callable, *args) -> Cost:
    """Exercise 2.7: FLOPs and bytes of jax.jit(fn)(*args), as XLA compiled it for this machine.

    fn: any function JAX can jit; args: arrays, jax.ShapeDtypeStruct (nothing may run: only
    shapes and dtypes are known) or pytrees of them (a dict of parameters, a tuple).

    The numbers are the compiler's, not counted by hand: XLA's cost analysis of the program
    it will run, after its optimisations (fusion, repeated work merged, dead work dropped).
    flops: a matmul 2 per multiply-add, an elementwise op 1 per element; a program the
    analysis reports no FLOPs for (a copy, a transpose) has 0. bytes: the bytes its kernels
    read from and write to main memory, results included. Both as Python floats.
    (On a GPU a matmul handed to cuBLAS reports -1; the bench passes its closed form instead
    of calling you there, so you need not handle it.)
    """
    # The compiled program, not the lowered one: only after compilation are fusions formed and
    # repeated or dead work removed, and those change both counts.
    analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
    # A key is missing when the program has none of it (a copy reports no "flops").
    return Cost(float(analysis.get("flops", 0.0)), float(analysis.get("bytes accessed", 0.0)))


def timeit(fn: Callable, *args, warmup: int = 1, runs: int = 5, min_time: float = 0.0) -> Timing:
    """Exercise 2.8: the time of fn(*args) on this machine: exercise 2.6's timer, made whole.

    fn: any function (a jitted one, usually); its first call may trace and compile, and every
    call returns as soon as its work is queued, with an array, a pytree of arrays, or any
    object whose block_until_ready() waits for it. Call fn `warmup` times untimed, then time
    runs until both `runs` runs and `min_time` seconds of timed runs are done; each run is
    one call, timed (time.perf_counter) until every part of its result is ready.

    Returns Timing(median, min, max, runs) over the timed runs, in seconds.
    """
    for _ in range(warmup):  # tracing and compiling happen here, untimed
        jax.block_until_ready(fn(*args))
    times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < runs or time.perf_counter() - start_all < min_time:
        start = time.perf_counter()
        # fn returns once its work is queued; the run ends when every leaf of the result is ready.
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    # The median shrugs off a run the host interrupted; the min is the best the chip did.
    return Timing(statistics.median(times), min(times), max(times), len(times))


def roofline_point(cost: Cost, chip: Chip, dtype: str, seconds: float | None = None) -> Point:
    """Exercise 2.9: where a program of this cost sits on chip's roofline, and how close it got.

    cost: anything with .flops and .bytes (this file's Cost, or shared.roofline.Cost).
    chip: a shared.hardware.Chip (a row of CHIPS, or hardware.detect() for this machine).
    dtype: the program's compute dtype ("float32", "bfloat16", jnp.bfloat16, ...), which
    decides the compute ceiling P: chip.flops(dtype). seconds: its measured time, or None.

    Returns Point(intensity, ridge, bound, bound_s, fraction), every field as described in
    the class above: the intensity F / B; the ridge point of this chip for this dtype; the
    bound that limits the program ("compute" at the ridge exactly, as in exercise 2.3b);
    bound_s, the least time the roofline allows it on this chip; fraction, that least time
    over `seconds` (None when seconds is None).

    A chip without a peak for dtype (the datasheets in shared.hardware give no float32 for
    the accelerators) or without a memory bandwidth: raise shared.config.Error, one line
    naming the chip and what it lacks.
    """
    dtype = str(jnp.dtype(dtype))  # "bfloat16" from jnp.bfloat16 as well
    peak, bandwidth = chip.flops(dtype), chip.memory_bw
    if not peak:  # another dtype's peak would be a wrong ceiling, not a missing one
        raise Error(f"{chip.name} has no {dtype} peak FLOP/s in shared.hardware")
    if not bandwidth:
        raise Error(f"{chip.name} has no memory bandwidth in shared.hardware")
    intensity = cost.flops / cost.bytes
    ridge = peak / bandwidth
    # Compute and memory traffic overlap, so the slower of the two sets the pace.
    bound_s = max(cost.flops / peak, cost.bytes / bandwidth)
    return Point(intensity, ridge, "compute" if intensity >= ridge else "memory", bound_s,
                 None if seconds is None else bound_s / seconds)
