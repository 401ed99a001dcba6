"""Attention as the context grows: time, temp memory and error of each implementation."""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp

from shared import attention as attn_lib
from shared.bench import _flags
from shared.config import ConfigError
from shared.course import mine
from shared.timing import timeit

COMMAND = "python -m shared.bench attention"  # its pieces: shared.course.mine.BUILDS
HELP = "causal attention forward for S = 512..16384: time, temp memory, error vs reference, per impl"

GiB, MiB = 2**30, 2**20
# Defaults per platform: the CPU's sweep is sized for a laptop; a GPU's fills the chip.
DEFAULTS = {
    "cpu": dict(sizes=[512, 1024, 2048, 4096, 8192, 16384], batch=1, heads=4, kv_heads=4,
                head_dim=64, dtype="float32", memory_fraction=0.25, pallas_max=2048),
    "gpu": dict(sizes=[1024, 2048, 4096, 8192, 16384], batch=1, heads=16, kv_heads=16,
                head_dim=128, dtype="bfloat16", memory_fraction=0.5, pallas_max=16384),
}
ERROR_QUERIES = 256  # the error is taken on the last queries only, so the oracle fits at any S


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", help="context lengths S (= T)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--heads", type=int, help="query heads H")
    parser.add_argument("--kv-heads", type=int, help="key/value heads K (H must be a multiple)")
    parser.add_argument("--head-dim", type=int, help="head width D")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"])
    parser.add_argument("--impls", nargs="+", choices=list(attn_lib.IMPLEMENTATIONS),
                        help="implementations to time (default: every one that runs here; "
                             "cudnn on an NVIDIA GPU only)")
    parser.add_argument("--memory-fraction", type=float,
                        help="skip an impl whose compiled temp memory exceeds this fraction of the "
                             "free memory (default 0.25 on a CPU, which the OS shares; 0.5 on a GPU)")
    parser.add_argument("--pallas-max", type=int,
                        help="largest S for pallas (default 2048 on a CPU, where it is interpreted)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per point (median reported)")
    mine.add_switch(parser)


def free_memory() -> int:
    """Bytes the default device can still allocate: the GPU's pool, or the host's free RAM."""
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # no free-page count (macOS): use total RAM
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def causal_flops(B: int, S: int, H: int, D: int) -> float:
    """QK^T and PV: 2 matmuls of 2*S*S*D FLOPs per head, half of them under the causal mask."""
    return 2 * 2 * B * H * S * S * D / 2


def candidates(names: list[str] | None, platform: str) -> dict:
    """Label -> causal attention function of (q, k, v); by default every implementation that
    runs on this platform (cudnn, the fast library baseline, on a GPU only)."""
    if names is None:
        names = [n for n in attn_lib.IMPLEMENTATIONS if platform == "gpu" or n not in attn_lib.GPU_ONLY]
    return {name: lambda q, k, v, name=name: attn_lib.attention(q, k, v, causal=True, impl=name)
            for name in names}


def measure(fn, q, k, v, *, budget: int, runs: int) -> dict:
    """One row: compile, read temp memory, skip if over budget, else time and check error."""
    compiled = jax.jit(fn).lower(q, k, v).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    if temp > budget:
        return {"temp": temp, "note": f"skipped: needs {temp / GiB:.1f} GiB temp, over the "
                                      f"{budget / GiB:.1f} GiB budget (--memory-fraction)"}
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(q, k, v))  # first call: warm-up, and the output to check
    first = time.perf_counter() - start
    timing = timeit(compiled, q, k, v, warmup=0, runs=1 if first > 2.0 else runs)
    # Oracle: the reference on the last n queries (T stays whole), in float32.
    n = min(ERROR_QUERIES, q.shape[1])
    f32 = lambda x: x.astype(jnp.float32)
    expected = attn_lib.reference(f32(q[:, -n:]), f32(k), f32(v), causal=True)
    error = float(jnp.max(jnp.abs(f32(out[:, -n:]) - expected)))
    return {"temp": temp, "time": timing.median, "error": error, "note": ""}


def check(args: argparse.Namespace) -> None:
    """Every flag's bad values, one line each, before any JAX work (shared.bench._flags)."""
    _flags.at_least(args, 1, "sizes", "batch", "heads", "kv_heads", "head_dim", "pallas_max", "runs")
    if args.heads is not None and args.kv_heads is not None and args.heads % args.kv_heads:
        raise ConfigError(f"--heads {args.heads} must be a multiple of --kv-heads {args.kv_heads}")
    _flags.in_range(args, "memory_fraction", 0, 1, low_open=True)


def run(args: argparse.Namespace) -> None:
    check(args)
    start = time.perf_counter()
    device = jax.devices()[0]
    defaults = DEFAULTS["cpu" if device.platform == "cpu" else "gpu"]  # a TPU gets the GPU's sizes
    cfg = {name: getattr(args, name) if getattr(args, name) is not None else default
           for name, default in defaults.items()}
    B, H, K, D, dtype = cfg["batch"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"], cfg["dtype"]
    if min(B, H, K, D, *cfg["sizes"]) < 1 or H % K:
        raise SystemExit(f"bad shape: batch {B}, heads {H}, kv-heads {K}, head-dim {D}, sizes "
                         f"{cfg['sizes']}: all must be >= 1 and heads a multiple of kv-heads")
    budget = int(cfg["memory_fraction"] * free_memory())
    interpreted = device.platform == "cpu"
    print(f"device: {device.device_kind} ({device.platform}); causal attention forward, "
          f"B={B} H={H} K={K} D={D} {dtype}, S = T; budget {budget / GiB:.1f} GiB of temp memory")
    print("time: median of timed runs after one warm-up (1 run when a call takes > 2 s); temp: "
          "compiled memory analysis; error: max |out - reference| on the last "
          f"{ERROR_QUERIES} queries (float32 oracle); speedup: reference time / time; "
          "TFLOP/s: the causal half of 4*B*H*S^2*D over time")
    if dtype == "bfloat16":
        print("bfloat16: rounding the output alone gives errors up to 2^-8 of its largest entries "
              "(about 1e-2 here), whatever the implementation")
    if interpreted:
        print(f"pallas runs in interpret mode here (its speed says nothing about a GPU), "
              f"only up to S = {cfg['pallas_max']}")
    header = f"{'S':>6} {'impl':<20} {'time ms':>10} {'TFLOP/s':>8} {'speedup':>8} " \
             f"{'temp MiB':>10} {'max err':>9}  note"
    print(header)
    print("-" * len(header))
    pieces = mine.chosen(args, COMMAND)
    if args.mine or args.solutions:
        print("your pieces: " + mine.describe(pieces, args.solutions, COMMAND) + " (the pallas rows)")
    with mine.plugged_in(pieces):
        keys = jax.random.split(jax.random.key(0), 3)
        for S in cfg["sizes"]:
            q = jax.random.normal(keys[0], (B, S, H, D), dtype)
            k = jax.random.normal(keys[1], (B, S, K, D), dtype)
            v = jax.random.normal(keys[2], (B, S, K, D), dtype)
            reference_time = None
            for impl, fn in candidates(args.impls, device.platform).items():
                label = impl + (" (interpret)" if impl == "pallas" and interpreted else "")
                if impl == "pallas" and S > cfg["pallas_max"]:
                    continue
                try:
                    row = measure(fn, q, k, v, budget=budget, runs=args.runs)
                except Exception as e:  # one failing impl must not end an unattended run
                    row = {"note": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"}
                if impl == "reference":
                    reference_time = row.get("time")
                t = row.get("time")
                cells = [f"{t * 1e3:10.1f}" if t else f"{'-':>10}",
                         f"{causal_flops(B, S, H, D) / t / 1e12:8.3g}" if t else f"{'-':>8}",
                         f"{reference_time / t:7.2f}x" if t and reference_time else f"{'-':>8}",
                         f"{row['temp'] / MiB:10.1f}" if "temp" in row else f"{'-':>10}",
                         f"{row['error']:9.1e}" if "error" in row else f"{'-':>9}"]
                print(f"{S:>6} {label:<20} {' '.join(cells)}  {row['note']}", flush=True)
            del q, k, v
    print(f"({time.perf_counter() - start:.0f} s in all)")
