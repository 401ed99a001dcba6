"""Checks for the build exercise 2.7-2.9 (build_roofline.py): a roofline point, written by you.

Oracles, each independent of the answer: for cost, shared.roofline.cost (XLA's cost analysis
of the compiled program) and the closed form 2 * M * K * N FLOPs of a matmul; the program as
written (its lowered cost analysis) and the size of its inputs say which mistake a
difference is. For timeit, work of a known duration: shared.timing.Pending,
a result that is returned at once and ready a known time later (timers never fire early, so a
correct timer can only read more), and a jitted function whose first call sleeps while it is
traced. For roofline_point, shared.roofline.Analysis on the same cost, chip and dtype, and a
made-up chip with round peaks, on which every number is exact.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong builds (tests/wrong/build_roofline_*.py) and proves each is rejected
by the check about its mistake; the test_* functions at the bottom are thin wrappers over them.
Lesson 02's checks run on a CPU, as `python -m pytest exercises/02_single_chip_performance`
does on a laptop (on a GPU the compiler reports no cost for a matmul it hands to cuBLAS).
"""

from __future__ import annotations

import ast
import functools
import itertools
import math
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp

from shared import roofline
from shared.config import Error
from shared.course import imports
from shared.hardware import CHIPS, Chip
from shared.timing import Pending, Timing

spec = jax.ShapeDtypeStruct  # compile-only: nothing is allocated, nothing can run
f32, bf16 = jnp.float32, jnp.bfloat16


# ---- the answer is not one import away ----

ALLOWED = ("jax", "jaxlib", "numpy", "stdlib", "shared.config", "shared.hardware")
NOT_ALLOWED = {
    "shared.roofline": "this exercise writes the roofline's cost and verdict, so the core's is not "
                       "allowed here",
    "shared.timing": "this exercise writes the timer, so the core's is not allowed here",
    "shared.bench": "it runs the core's roofline and timer, which this exercise writes",
    "shared.profiling": "it holds the core's timed traces, built on the timer this exercise writes",
}
# shared.hardware is allowed for Chip and its table; it also imports the core's timer for its
# CPU calibration, which is no more allowed through it than directly.
HARDWARE_TIMERS = {"timeit", "in_place"}


def check_imports(m):
    """Fails on the first module the answer's file imports that it may not; returns m."""
    imports.check(m, ALLOWED, NOT_ALLOWED)
    path = Path(m.__file__)
    for node in ast.walk(ast.parse(path.read_text())):
        names = set()
        if isinstance(node, ast.ImportFrom) and node.module == "shared.hardware":
            names = {a.name for a in node.names}
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "hardware":
            names = {node.attr}
        for name in sorted(names & HARDWARE_TIMERS):
            raise AssertionError(f"{path.name} takes {name} from shared.hardware: "
                                 f"{NOT_ALLOWED['shared.timing']}")
    return m


# ---- running the answer ----

def _call(task: str, what: str, fn, *args, **kwargs):
    """fn(*args, **kwargs); an exception other than the stub's is one line naming the case."""
    try:
        return fn(*args, **kwargs)
    except (NotImplementedError, AssertionError):
        raise
    except Exception as e:  # noqa: BLE001: any failure of the answer is the learner's, in one line
        lines = str(e).strip().splitlines()
        raise AssertionError(f"{task}: {what}: raised {type(e).__name__}: "
                             f"{lines[0][:160] if lines else ''}") from None


# ---- cost (exercise 2.7) ----

def _matmul(a, b):
    return a @ b


def _matmul_twice(a, b):
    return (a @ b) + (a @ b)  # written twice; the compiler computes it once


def _chain(x):
    return jnp.tanh(x * 2 + 1) * 3  # four ops as written; one fused pass when compiled


def _transpose(x):
    return x.T  # a copy: bytes, and no FLOPs


def _mlp(params, x):
    return jax.nn.relu(x @ params["up"]) @ params["down"]


M, K, N = 64, 48, 80
MATMULS = {f"[{m}, {k}] @ [{k}, {n}]": (m, k, n) for m, k, n in ((M, K, N), (128, 128, 128), (16, 256, 8))}
PROGRAMS = {  # name -> (function, arguments); shapes and dtypes only
    **{name: (_matmul, (spec((m, k), f32), spec((k, n), f32))) for name, (m, k, n) in MATMULS.items()},
    "(a @ b) + (a @ b)": (_matmul_twice, (spec((M, K), f32), spec((K, N), f32))),
    "tanh(x * 2 + 1) * 3": (_chain, (spec((128, 96), f32),)),
    "x.T": (_transpose, (spec((128, 96), f32),)),
    "x + y": (jnp.add, (spec((1000,), f32), spec((1000,), f32))),
    "an MLP on a dict of weights": (_mlp, ({"up": spec((32, 64), f32), "down": spec((64, 32), f32)},
                                          spec((16, 32), f32))),
    "[64, 48] @ [48, 80] in bfloat16": (jnp.matmul, (spec((M, K), bf16), spec((K, N), bf16))),
}


@functools.cache
def _compiled(name: str) -> roofline.Cost:
    fn, args = PROGRAMS[name]
    return roofline.cost(fn, *args)


@functools.cache
def _as_written(name: str) -> tuple[float, float]:
    """FLOPs and bytes of the program before compilation (its lowered cost analysis)."""
    fn, args = PROGRAMS[name]
    analysis = jax.jit(fn).lower(*args).cost_analysis()
    return analysis.get("flops", 0.0), analysis.get("bytes accessed", 0.0)


def _inputs_bytes(args) -> float:
    return float(sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(args)))


def _cost(m, name: str, *args):
    fn, default = PROGRAMS[name]
    got = _call("cost", name, m.cost, fn, *(args or default))
    for field in ("flops", "bytes"):
        value = getattr(got, field, None)
        assert isinstance(value, float), (
            f"cost: {name}: .{field} is {type(value).__name__ if value is not None else 'missing'}; "
            "return a Cost with flops and bytes as Python floats")
    return got


def _check_bytes(name: str, got, args) -> None:
    want = _compiled(name).bytes
    if got.bytes == want:
        return
    if got.bytes == _inputs_bytes(args):
        raise AssertionError(f"cost: {name}: {got.bytes:.0f} bytes is the size of the inputs alone; "
                             f"the compiled program moves {want:.0f}, its results included")
    raise AssertionError(f"cost: {name}: {got.bytes:.0f} bytes, but XLA's cost analysis of the "
                         f"compiled program says {want:.0f}")


def check_cost_matmul(m):
    for name, mkn in MATMULS.items():
        got = _cost(m, name)
        want = 2 * math.prod(mkn)
        assert got.flops == want, (f"cost: {name} float32 comes to {got.flops:.0f} FLOPs; a matmul "
                                   f"does 2 * M * K * N = {want}")
        _check_bytes(name, got, PROGRAMS[name][1])


def check_cost_bytes(m):
    for name in ("x + y", "[64, 48] @ [48, 80]", "an MLP on a dict of weights"):
        got = _cost(m, name)
        _check_bytes(name, got, PROGRAMS[name][1])


def check_cost_compiled(m):
    says = "; XLA's cost analysis of the compiled program says"
    name = "(a @ b) + (a @ b)"
    got, want = _cost(m, name), _compiled(name)
    if got.flops != want.flops:
        how = (", two matmuls as written; the program XLA compiled computes a @ b once"
               if got.flops == _as_written(name)[0] else f"{says} {want.flops:.0f}")
        raise AssertionError(f"cost: {name} comes to {got.flops:.0f} FLOPs{how}")
    name = "tanh(x * 2 + 1) * 3"
    got, want = _cost(m, name), _compiled(name)
    if got.bytes != want.bytes:
        how = (", four passes over memory as written; the compiled program fuses them into one"
               if got.bytes == _as_written(name)[1] else f"{says} {want.bytes:.0f}")
        raise AssertionError(f"cost: {name} moves {got.bytes:.0f} bytes by your count{how}")
    assert got.flops == want.flops, f"cost: {name} comes to {got.flops:.0f} FLOPs{says} {want.flops:.0f}"


def check_cost_any_program(m):
    for name in PROGRAMS:
        got, want = _cost(m, name), _compiled(name)
        assert (got.flops, got.bytes) == (want.flops, want.bytes), (
            f"cost: {name}: (flops, bytes) = ({got.flops:.0f}, {got.bytes:.0f}); XLA's cost analysis of "
            f"the compiled program says ({want.flops:.0f}, {want.bytes:.0f})")
    # Arrays as well as shapes: the same program, the same numbers.
    x = jnp.arange(128 * 96, dtype=f32).reshape(128, 96)
    got, want = _cost(m, "tanh(x * 2 + 1) * 3", x), _compiled("tanh(x * 2 + 1) * 3")
    assert (got.flops, got.bytes) == (want.flops, want.bytes), (
        f"cost: tanh(x * 2 + 1) * 3 on an array gives ({got.flops:.0f}, {got.bytes:.0f}), on its shape "
        f"({want.flops:.0f}, {want.bytes:.0f}) by the compiler: the same program costs the same")


# ---- timeit (exercise 2.8) ----

WORK_S = 0.05  # how long each fake result takes to be ready
SLOW_S = 1.0  # a first call that traces and compiles; a run the host interrupted


def _timing(got, what: str) -> Timing:
    """got as a Timing, checked to have the fields and an order that makes sense."""
    fields = ("median", "min", "max", "runs")
    missing = [f for f in fields if not hasattr(got, f)]
    assert not missing, (f"timeit: {what}: returned {type(got).__name__} without "
                         f"{', '.join(missing)}; return a Timing(median, min, max, runs)")
    t = Timing(*(getattr(got, f) for f in fields))
    assert 0 <= t.min <= t.median <= t.max, (f"timeit: {what}: min {t.min:.4f} s, median {t.median:.4f} s, "
                                             f"max {t.max:.4f} s are not in order")
    return t


class _Counted:
    """fn for timeit: returns Pending(seconds(call number)) and records each call's arguments."""

    def __init__(self, seconds=lambda call: WORK_S):
        self.calls, self.seconds = [], seconds

    def __call__(self, *args):
        self.calls.append(args)
        return Pending(self.seconds(len(self.calls)))


def check_timeit_waits(m):
    t = _timing(_call("timeit", "a result ready 0.05 s after it is returned", m.timeit,
                      lambda: Pending(WORK_S), runs=3), "a result ready later")
    assert t.min >= WORK_S, (f"timeit: the fastest run read {t.min:.4f} s of work that takes {WORK_S} s: "
                             "the clock stopped before the result was ready")
    what = "a dict of results, one ready 0.05 s after it is returned"
    t = _timing(_call("timeit", what, m.timeit,
                      lambda: {"now": jnp.zeros(4), "later": Pending(WORK_S)}, runs=3), what)
    assert t.min >= WORK_S, (f"timeit: {what}: the fastest run read {t.min:.4f} s: the clock stopped "
                             "before the result was ready (all of it, whatever pytree fn returns)")


def check_timeit_skips_warmup(m):
    def first_call_sleeps(x):
        time.sleep(SLOW_S)  # Python code in a jitted function runs while it is traced: once
        return x + 1

    fn = jax.jit(first_call_sleeps)  # a new function each time: its first call is always slow
    what = f"a jitted function whose first call (tracing and compiling) takes {SLOW_S} s"
    t = _timing(_call("timeit", what, m.timeit, fn, jnp.zeros(8), warmup=1, runs=3), what)
    assert t.max < SLOW_S, (f"timeit: the slowest timed run took {t.max:.3f} s, as long as the {SLOW_S} s "
                            "first call (tracing and compiling) of a jitted function: the warm-up must "
                            "not be timed")
    fn = _Counted()
    t = _timing(_call("timeit", "warmup=2, runs=3", m.timeit, fn, 7, warmup=2, runs=3), "warmup=2, runs=3")
    assert len(fn.calls) == 5 and t.runs == 3, (
        f"timeit: with warmup=2, runs=3 it called fn {len(fn.calls)} times and reports {t.runs} runs: "
        "want 2 untimed calls and 3 timed runs")
    assert all(args == (7,) for args in fn.calls), f"timeit: fn(7) was called as fn{fn.calls[0]}"


def check_timeit_median(m):
    fn = _Counted(lambda call: SLOW_S if call == 4 else WORK_S)  # 1 warm-up, then timed runs 1-5
    what = f"five runs of {WORK_S} s, the third interrupted for {SLOW_S} s"
    t = _timing(_call("timeit", what, m.timeit, fn, warmup=1, runs=5), what)
    assert t.runs == 5 and t.max >= SLOW_S, (f"timeit: {what}: reports {t.runs} runs, the slowest "
                                             f"{t.max:.3f} s: the five runs after the warm-up are timed")
    # Halfway between the median of the five (one fast run) and their mean (a fifth of the slow one).
    limit = WORK_S + (SLOW_S - WORK_S) / 10
    assert t.median < limit, (f"timeit: {what}: the median reads {t.median:.3f} s, moved by one slow run; "
                              "the median of the runs is the middle one")


def check_timeit_min_time(m):
    fn = _Counted()
    t = _timing(_call("timeit", "runs=1, min_time=0.3", m.timeit, fn, warmup=1, runs=1, min_time=0.3),
                "runs=1, min_time=0.3")
    assert t.runs >= 2, (f"timeit: runs=1, min_time=0.3 with runs of {WORK_S} s stopped after {t.runs} "
                         "run: keep timing runs until both `runs` runs and `min_time` seconds are done")
    assert len(fn.calls) == 1 + t.runs, (f"timeit: runs=1, min_time=0.3: called fn {len(fn.calls)} times "
                                          f"for 1 warm-up and {t.runs} timed runs")


# ---- roofline_point (exercise 2.9) ----

class _Cost(NamedTuple):
    flops: float
    bytes: float


# A made-up chip with round figures: ridge 10 FLOP/B for float32, 40 for bfloat16.
ROUND = Chip("round chip (float32 1 TFLOP/s, bfloat16 4 TFLOP/s, 100 GB/s)",
             {"float32": 1e12, "bfloat16": 4e12}, memory_bw=1e11)


def _point(m, cost, chip: Chip, dtype, seconds=None):
    what = f"{cost.flops:g} FLOPs, {cost.bytes:g} bytes on {chip.name}, {jnp.dtype(dtype)}"
    got = _call("roofline_point", what, m.roofline_point, cost, chip, dtype, seconds=seconds)
    fields = ("intensity", "ridge", "bound", "bound_s", "fraction")
    missing = [f for f in fields if not hasattr(got, f)]
    assert not missing, (f"roofline_point: returned {type(got).__name__} without {', '.join(missing)}; "
                         "return a Point")
    return got, what


def _close(a, b) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-9)


def check_roofline_point_matches_core(m):
    costs = [roofline.Cost(2 * M * K * N, (M * K + K * N + M * N) * 4),  # a small float32 matmul
             roofline.Cost(2 * 8192**3, 3 * 8192**2 * 2),  # a large bf16 one
             roofline.Cost(2**28, 3 * 2**28 * 2)]  # a bf16 add
    chips = [(chip, dtype) for chip in CHIPS.values() for dtype in ("bfloat16", "int8")]
    chips += [(ROUND, "float32"), (ROUND, jnp.bfloat16)]
    for cost, (chip, dtype), seconds in itertools.product(costs, chips, (None, 1e-3)):
        timing = Timing(seconds, seconds, seconds, 1) if seconds else None
        want = roofline.Analysis("oracle", cost, chip, str(jnp.dtype(dtype)), timing)
        got, what = _point(m, cost, chip, dtype, seconds)
        for field in ("intensity", "ridge", "bound_s"):
            assert _close(getattr(got, field), getattr(want, field)), (
                f"roofline_point: {what}: {field} {getattr(got, field)}, the course's roofline says "
                f"{getattr(want, field):.6g}")
        assert got.bound == want.bound, (f"roofline_point: {what}: bound {got.bound!r}, the course's "
                                         f"roofline says {want.bound!r}")
        assert (got.fraction is None) if seconds is None else _close(got.fraction, want.fraction), (
            f"roofline_point: {what}, measured {seconds} s: fraction {got.fraction}, the course's roofline "
            f"says {want.fraction}")


def check_roofline_point_bound(m):
    ridge = ROUND.flops("bfloat16") / ROUND.memory_bw  # 40 FLOP/B
    for intensity, want in ((80.0, "compute"), (20.0, "memory"), (ridge, "compute")):
        cost = _Cost(intensity * 1e9, 1e9)
        got, what = _point(m, cost, ROUND, "bfloat16")
        assert _close(got.intensity, intensity), (f"roofline_point: {what}: intensity {got.intensity}, "
                                                  "want FLOPs per byte")
        assert _close(got.ridge, ridge), (f"roofline_point: {what}: ridge {got.ridge}; the ridge point is "
                                          "where the chip's compute ceiling meets its memory ceiling")
        at = "at" if intensity == ridge else "above" if intensity > ridge else "below"
        assert got.bound == want, (f"roofline_point: intensity {intensity:g} FLOP/B, {at} the ridge of "
                                   f"{ridge:g} FLOP/B, is {want}-bound, not {got.bound!r}")


def check_roofline_point_dtype(m):
    cost = _Cost(2e10, 1e9)  # 20 FLOP/B: above the float32 ridge (10), below the bfloat16 one (40)
    for dtype in ("float32", jnp.float32):
        got, what = _point(m, cost, ROUND, dtype)
        if _close(got.ridge, 40.0):
            raise AssertionError(f"roofline_point: {what}: the ridge {got.ridge:g} FLOP/B comes from the "
                                 "bfloat16 peak; a float32 program's compute ceiling is the float32 peak")
        assert _close(got.ridge, 10.0) and got.bound == "compute", (
            f"roofline_point: {what}: ridge {got.ridge:g} FLOP/B and bound {got.bound!r}; the course's "
            "roofline says 10 FLOP/B, compute-bound")


def check_roofline_point_missing(m):
    cost = _Cost(2e10, 1e9)
    h100 = CHIPS["H100"]
    for chip, dtype, lacks in ((h100, "float32", "float32 peak"),  # its datasheet gives none
                               (Chip("a chip of unknown bandwidth", {"float32": 1e12}, None), "float32",
                                "memory bandwidth")):
        try:
            got = m.roofline_point(cost, chip, dtype)
        except Error:
            continue
        except NotImplementedError:
            raise
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"roofline_point: {dtype} on {chip.name}, which has no {lacks} in "
                                 f"shared.hardware, raised {type(e).__name__}; raise shared.config.Error "
                                 "naming what is missing") from None
        raise AssertionError(f"roofline_point: {dtype} on {chip.name}, which has no {lacks} in "
                             f"shared.hardware, returned a point (ridge {got.ridge}); raise "
                             "shared.config.Error instead")


def check_roofline_point_bound_s(m):
    peak, bw = ROUND.flops("float32"), ROUND.memory_bw
    for flops, nbytes in ((3e12, 2e11), (1e12, 2e11)):  # 3 s of compute and 2 s of memory; 1 s and 2 s
        got, what = _point(m, _Cost(flops, nbytes), ROUND, "float32")
        compute_s, memory_s = flops / peak, nbytes / bw
        want = max(compute_s, memory_s)
        if _close(got.bound_s, want):
            continue
        hint = (": the two times are not added, the chip moves data while it computes"
                if _close(got.bound_s, compute_s + memory_s) else "")
        raise AssertionError(f"roofline_point: {what}: bound_s {got.bound_s:g} s for {compute_s:g} s of "
                             f"work at the peak and {memory_s:g} s of traffic at the bandwidth{hint}")


def check_roofline_point_fraction(m):
    cost = _Cost(3e12, 2e11)  # on ROUND in float32: bound 3 s
    got, what = _point(m, cost, ROUND, "float32", seconds=6.0)
    if _close(got.fraction, 2.0):
        raise AssertionError(f"roofline_point: {what}: a run of 6 s, twice the bound of 3 s, reached "
                             "fraction 2.0, upside down: a run slower than the bound reached less of it")
    assert _close(got.fraction, 0.5), (f"roofline_point: {what}: a run of 6 s against a bound of 3 s "
                                       f"reached fraction {got.fraction}; the course's roofline says 0.5")
    got, what = _point(m, cost, ROUND, "float32", seconds=None)
    assert got.fraction is None, f"roofline_point: {what}, not measured: fraction {got.fraction}, want None"


# ---- the tests: your answers (or the solution's, with --solutions) through every check ----

def test_cost_matmul(answers):
    check_cost_matmul(check_imports(answers))


def test_cost_bytes(answers):
    check_cost_bytes(check_imports(answers))


def test_cost_compiled(answers):
    check_cost_compiled(check_imports(answers))


def test_cost_any_program(answers):
    check_cost_any_program(check_imports(answers))


def test_timeit_waits(answers):
    check_timeit_waits(check_imports(answers))


def test_timeit_skips_warmup(answers):
    check_timeit_skips_warmup(check_imports(answers))


def test_timeit_median(answers):
    check_timeit_median(check_imports(answers))


def test_timeit_min_time(answers):
    check_timeit_min_time(check_imports(answers))


def test_roofline_point_matches_core(answers):
    check_roofline_point_matches_core(check_imports(answers))


def test_roofline_point_bound(answers):
    check_roofline_point_bound(check_imports(answers))


def test_roofline_point_dtype(answers):
    check_roofline_point_dtype(check_imports(answers))


def test_roofline_point_missing(answers):
    check_roofline_point_missing(check_imports(answers))


def test_roofline_point_bound_s(answers):
    check_roofline_point_bound_s(check_imports(answers))


def test_roofline_point_fraction(answers):
    check_roofline_point_fraction(check_imports(answers))
