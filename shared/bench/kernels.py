"""The course's Pallas matmul, plain and with a fused ReLU, against XLA's jit(relu(a @ b)).

On a CPU the kernels run in interpret mode: the table checks their values and shows
that the interpreter is slow, nothing more. On a GPU or TPU they compile natively and
the table gives TFLOP/s and the fraction of the chip's published peak.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from shared import hardware, kernels, roofline
from shared.bench import _flags
from shared.timing import timeit

HELP = "Pallas matmul and fused matmul+ReLU vs jit(relu(a @ b)): time, TFLOP/s, error (interpret mode on CPU)"

SIZES = {"cpu": [128, 256], "accelerator": [1024, 2048, 4096, 8192]}
# Output block [bm, bn] and K step bk tried on an accelerator; the best is reported.
# None: the kernel's own choice (kernels.choose_blocks), used on a CPU.
BLOCKS = {"cpu": [None], "gpu": [(128, 128, 32), (128, 128, 64), (64, 128, 32)],
          "tpu": [(128, 128, 128), (256, 256, 256)]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="square matmul sizes N (default: 128 256 on a CPU, 1024 to 8192 on an accelerator)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                        help="operand dtype (default: float32 on a CPU, bfloat16 on an accelerator)")


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:70] if text else ''}"


def _relative_error(got: jax.Array, want: jax.Array) -> float:
    got, want = got.astype(jnp.float32), want.astype(jnp.float32)
    return float(jnp.max(jnp.abs(got - want)) / jnp.max(jnp.abs(want)))


def check(args: argparse.Namespace) -> None:
    """Every flag's bad values, one line each, before any JAX work (shared.bench._flags)."""
    _flags.at_least(args, 1, "sizes")


def run(args: argparse.Namespace) -> None:
    check(args)
    where = kernels.platform()
    accelerator = where != "cpu"
    dtype = jnp.dtype(args.dtype or ("bfloat16" if accelerator else "float32"))
    sizes = args.sizes or SIZES["accelerator" if accelerator else "cpu"]
    chip = hardware.detect() if accelerator else None  # a CPU's peak says nothing about an interpreter
    peak = chip.flops(dtype.name) if chip else None

    print(f"device: {jax.devices()[0].device_kind} ({where}); operands {dtype.name}, accumulation float32")
    if accelerator:
        print(hardware.describe(chip))
        print("pallas rows: the best of blocks " + ", ".join(map(str, BLOCKS.get(where, []))) + " (bm, bn, bk)")
    else:
        print("INTERPRET MODE: each Pallas program runs as ordinary JAX ops on the CPU. Times below are "
              "the interpreter's, not a kernel's; the error column is the point.")
    print("error: max |result - float32 XLA reference| / max |reference|")
    print(f"{'N':>6} {'what':<26} {'blocks':<15} {'ms':>9} {'TFLOP/s':>8} {'of peak':>8} {'error':>9}")

    def row(n, what, blocks, seconds, err):
        flops = 2 * n**3
        tflops = f"{flops / seconds / 1e12:8.2f}" if seconds else f"{'-':>8}"
        frac = f"{roofline.mfu(flops, seconds, chip, dtype.name):8.1%}" if seconds and peak else f"{'-':>8}"
        ms = f"{seconds * 1e3:9.3f}" if seconds else f"{'-':>9}"
        e = f"{err:9.1e}" if err is not None else f"{'-':>9}"
        print(f"{n:>6} {what:<26} {str(blocks or 'auto' if 'pallas' in what else ''):<15} {ms} {tflops} "
              f"{frac} {e}", flush=True)

    for n in sizes:
        ka, kb = jax.random.split(jax.random.key(n))
        a = jax.random.normal(ka, (n, n), jnp.float32).astype(dtype)
        b = jax.random.normal(kb, (n, n), jnp.float32).astype(dtype)
        want = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32,
                                            precision="highest"))(a, b)
        want_relu = jax.nn.relu(want)
        xla = jax.jit(lambda a, b: a @ b)
        xla_relu = jax.jit(lambda a, b: jax.nn.relu(a @ b))
        for what, fn, ref in (("xla a @ b", xla, want), ("xla relu(a @ b)", xla_relu, want_relu)):
            row(n, what, None, timeit(fn, a, b, warmup=1, runs=5).median, _relative_error(fn(a, b), ref))

        best = None  # (seconds, blocks) of the plain Pallas matmul
        candidates = BLOCKS.get(where, BLOCKS["cpu"])
        for blocks in candidates:
            if blocks and any(n % x for x in blocks):
                continue
            fn = jax.jit(lambda a, b, blocks=blocks: kernels.matmul(a, b, blocks=blocks))
            try:
                err = _relative_error(fn(a, b), want)
                seconds = timeit(fn, a, b, warmup=1, runs=5).median
            except Exception as error:  # a block shape the compiler rejects: report, go on
                print(f"{n:>6} {'pallas matmul':<26} {str(blocks or 'auto'):<15} failed: {_one_line(error)}",
                      flush=True)
                continue
            if best is None or seconds < best[0]:
                best = (seconds, blocks, err)
        if best is None:
            print(f"{n:>6} {'pallas matmul':<26} none of the blocks {candidates} divides {n} and compiles",
                  flush=True)
            continue
        row(n, "pallas matmul", best[1], best[0], best[2])
        fused = jax.jit(lambda a, b: kernels.matmul(a, b, blocks=best[1], activation=jax.nn.relu))
        try:
            row(n, "pallas matmul+relu (fused)", best[1], timeit(fused, a, b, warmup=1, runs=5).median,
                _relative_error(fused(a, b), want_relu))
        except Exception as error:
            print(f"{n:>6} {'pallas matmul+relu (fused)':<26} failed: {_one_line(error)}", flush=True)
    if accelerator:
        print("peak: the chip's published dense peak for the operand dtype (shared.hardware.CHIPS)")
