"""Build exercise (2.7-2.9): a roofline point for any jitted function, written by you.

You write the three measurements behind every roofline in the course: what the compiled
program costs (`cost`), how long it really takes (`timeit`), and what the two say on a
given chip (`roofline_point`). They have the contracts of the course core's own
(shared.roofline.cost, shared.timing.timeit and the verdict of shared.roofline.Analysis),
so they are drop-in replacements: once the tests pass,

    python -m shared.bench roofline --mine

runs the lesson's sweep of matmuls and adds, and draws its roofline, on your three
functions. Check them with
`python -m pytest exercises/02_single_chip_performance/test_build_roofline.py`.

Together they place one program on one chip:

    c = cost(f, x, y)                              # FLOPs and bytes, nothing run
    t = timeit(jax.jit(f), x, y, warmup=2)         # seconds, on this machine
    p = roofline_point(c, CHIPS["H100"], "bfloat16", seconds=None)   # the bound it would have there
    p = roofline_point(c, hardware.detect(), "float32", seconds=t.min)  # this CPU's, and how close

Words and letters used below:

    F  FLOPs the program does       B  bytes it moves to and from main memory
    P  the chip's peak FLOP/s for the program's dtype
    W  the chip's memory bandwidth (bytes/s)
    a matmul [M, K] @ [K, N] does 2 * M * K * N FLOPs

Imports: jax, jax.numpy, numpy, the standard library, shared.config (for Error) and
shared.hardware (Chip and the chip table), nothing else from the course. The tests read
this file's imports and fail on shared.roofline, shared.timing and shared.bench (and on
the core's timer taken from shared.hardware, which imports it): this exercise is where you
write them. Helper functions are yours to add; name them with a
leading underscore.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

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
    raise NotImplementedError("Exercise 2.7: FLOPs and bytes of the compiled program")


def timeit(fn: Callable, *args, warmup: int = 1, runs: int = 5, min_time: float = 0.0) -> Timing:
    """Exercise 2.8: the time of fn(*args) on this machine: exercise 2.6's timer, made whole.

    fn: any function (a jitted one, usually); its first call may trace and compile, and every
    call returns as soon as its work is queued, with an array, a pytree of arrays, or any
    object whose block_until_ready() waits for it. Call fn `warmup` times untimed, then time
    runs until both `runs` runs and `min_time` seconds of timed runs are done; each run is
    one call, timed (time.perf_counter) until every part of its result is ready.

    Returns Timing(median, min, max, runs) over the timed runs, in seconds.
    """
    raise NotImplementedError("Exercise 2.8: time fn without its compilation, waiting for its results")


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
    raise NotImplementedError("Exercise 2.9: a program's place on the roofline and its fraction of the bound")
