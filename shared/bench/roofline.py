"""Matmuls and elementwise adds from small to large, each placed on this chip's roofline."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from shared import hardware, roofline, timing
from shared.bench import _flags
from shared.course import mine

HELP = "matmul and elementwise sweep: FLOPs, bytes, intensity, bound, time, fraction of bound; writes a roofline PNG"

COMMAND = "python -m shared.bench roofline"  # its pieces: shared.course.mine.BUILDS
MiB = 2**20
# Sizes per platform: the CPU's are sized for a laptop; an accelerator's fill the chip.
SIZES = {
    "cpu": {"matmul": [64, 128, 256, 512, 1024, 2048], "batched": (64, 128), "add_mib": [1, 16, 256]},
    "accelerator": {"matmul": [256, 512, 1024, 2048, 4096, 8192], "batched": (64, 512),
                    "add_mib": [1, 64, 1024]},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                        help="operand dtype (default: float32 on a CPU, bfloat16 on an accelerator)")
    parser.add_argument("--out", type=Path, default=None,
                        help="roofline PNG to write (default: runs/roofline_<platform>.png)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per point (best one counts)")
    mine.add_switch(parser)


def matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """[..., M, K] @ [..., K, N] accumulated and returned in float32, as training does."""
    return jnp.matmul(a, b, preferred_element_type=jnp.float32)


def matmul_cost(batch: int, n: int, dtype: str) -> roofline.Cost:
    """Closed form for [batch, n, n] @ [batch, n, n] with a float32 result: 2n^3 FLOPs per
    product; each operand read once and the result written once. Used where the compiler
    hands the matmul to a library (cuBLAS on a GPU) and reports no cost."""
    return roofline.Cost(2 * batch * n**3, batch * n * n * (2 * jnp.dtype(dtype).itemsize + 4))


def sweep(dtype: str, sizes: dict, runs: int) -> list[roofline.Analysis]:
    """Every point of the sweep, analysed and timed on this machine."""
    keys = iter(range(1000))
    # Random operands: no hardware shortcut for zeros or repeated values.
    rand = lambda shape: jax.random.normal(jax.random.key(next(keys)), shape, dtype)
    # The compiler's own count where it has one (the CPU); the closed form where it has not.
    closed = lambda batch, n: None if jax.devices()[0].platform == "cpu" else matmul_cost(batch, n, dtype)
    points = []
    for n in sizes["matmul"]:
        a, b = rand((n, n)), rand((n, n))
        points.append(roofline.analyze(matmul, a, b, name=f"matmul {n}", dtype=dtype, runs=runs,
                                       known_cost=closed(1, n)))
        del a, b
    # As many FLOPs as one (count^(1/3) * n)^3 matmul, in `count` small independent ones.
    count, n = sizes["batched"]
    a, b = rand((count, n, n)), rand((count, n, n))
    points.append(roofline.analyze(matmul, a, b, name=f"{count}x matmul {n}", dtype=dtype, runs=runs,
                                   known_cost=closed(count, n)))
    del a, b
    # Adds write over their first operand (donated), as a parameter update does; the largest
    # also into a new buffer, to show what touching fresh memory costs.
    for mib in sizes["add_mib"]:
        length = mib * MiB // jnp.dtype(dtype).itemsize
        x, y = rand((length,)), rand((length,))
        points.append(roofline.analyze(jnp.add, x, y, name=f"add {mib} MiB", dtype=dtype, runs=runs,
                                       donate=True))
        if mib == max(sizes["add_mib"]):
            points.append(roofline.analyze(jnp.add, x, y, name=f"add {mib} MiB, new output",
                                           dtype=dtype, runs=runs))
        del x, y
    return points


def check(args: argparse.Namespace) -> None:
    """Every flag's bad values, one line each, before any JAX work (shared.bench._flags)."""
    _flags.at_least(args, 1, "runs")
    _flags.writable_file(args, "out")


def run(args: argparse.Namespace) -> None:
    check(args)
    start = time.perf_counter()
    platform = jax.devices()[0].platform
    on_cpu = platform == "cpu"
    dtype = args.dtype or ("float32" if on_cpu else "bfloat16")
    chip = hardware.detect()
    print(hardware.describe(chip))
    sizes = SIZES["cpu" if on_cpu else "accelerator"]
    pieces = mine.chosen(args, COMMAND)
    if args.mine or args.solutions:
        print("your pieces: " + mine.describe(pieces, args.solutions, COMMAND))
    with mine.plugged_in(pieces):  # the table and the plot read your verdict too
        watch = timing.LoadWatch()
        points = sweep(dtype, sizes, args.runs)
        note = hardware.busy_note(chip, watch.read(), "the sweep ran")
        print(roofline.format_table(points))

        peaks = "calibrated in this run" if chip.measured else "datasheet"
        big_mm = max((p for p in points if p.name.startswith("matmul")), key=lambda p: p.cost.flops)
        big_add, fresh = [p for p in points if p.name.startswith(f"add {max(sizes['add_mib'])} MiB")]
        big_mm_mfu = roofline.mfu(big_mm.cost.flops, big_mm.measured_s, big_mm.chip, dtype)
        print(f"{big_mm.name}: {big_mm_mfu:.0%} of the {dtype} peak "
              f"{peaks} (a well-used chip: >= 80%)")
        print(f"{big_add.name}: {big_add.achieved_bw / chip.memory_bw:.0%} of the memory bandwidth "
              f"{peaks} (a well-used chip: >= 70%); into a new buffer {fresh.achieved_bw / chip.memory_bw:.0%}")
        if note:
            print(note)
        out = args.out or Path("runs") / f"roofline_{platform}.png"
        roofline.plot_roofline(points, out, title=f"{chip.name}, {dtype}: measured on this machine")
        print(f"wrote {out} ({time.perf_counter() - start:.0f} s in all)")
