"""Compilation ahead of time: what a program costs before it runs, what a cache saves (lesson 10).

`jax.jit(f).lower(*args).compile()` runs the whole compiler on shapes alone (args may
be jax.ShapeDtypeStruct), so the cost and memory of a program can be read before any
data exists. The persistent compilation cache keeps compiled programs on disk, keyed
by the program and the compiler, so a second process skips the compiler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax


def analyse(compiled) -> dict[str, float]:
    """Figures of a compiled program (`jax.jit(f).lower(...).compile()`), before it runs.

    flops and bytes accessed come from XLA's cost analysis (its own count of the
    optimised program); argument, output and temp bytes from its memory analysis
    (temp: scratch buffers live during the run, beyond inputs and outputs).
    """
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # older JAX: one dict per program
    memory = compiled.memory_analysis()
    return {
        "flops": float(cost.get("flops", 0.0)),
        "bytes accessed": float(cost.get("bytes accessed", 0.0)),
        "argument bytes": float(memory.argument_size_in_bytes),
        "output bytes": float(memory.output_size_in_bytes),
        "temp bytes": float(memory.temp_size_in_bytes),
    }


def enable_persistent_cache(path: str | os.PathLike) -> None:
    """Cache every compiled program under `path`, however small or quick to compile.

    By default JAX caches only programs that took at least a second to compile; the
    thresholds are lifted here so that a CPU-sized program is cached too.
    Call before the first jit of the process.
    """
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size threshold


# Run in a fresh interpreter: nothing compiled, nothing imported. Prints one JSON line.
_START = """
import json, sys, time
t0 = time.perf_counter()
import jax, jax.numpy as jnp, numpy as np
from shared import aot, config, model
if sys.argv[1] != "-":
    aot.enable_persistent_cache(sys.argv[1])
t_import = time.perf_counter() - t0

cfg = config.preset(sys.argv[2]).model
params = jax.eval_shape(lambda: model.init(cfg, jax.random.key(0)))  # shapes only: nothing to compile
tokens = jax.ShapeDtypeStruct((int(sys.argv[3]), cfg.seq_len), jnp.int32)
t2 = time.perf_counter()
grad = jax.value_and_grad(model.loss_fn)
step = jax.jit(grad, static_argnums=3).lower(params, tokens, tokens, cfg).compile()
t_compile = time.perf_counter() - t2
params, tokens = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), (params, tokens))
t3 = time.perf_counter()
jax.block_until_ready(step(params, tokens, tokens))
t_run = time.perf_counter() - t3
print(json.dumps({"import": t_import, "compile": t_compile, "first step": t_run}))
"""


def timed_start(cache_dir: str | os.PathLike | None, *, preset: str = "tiny",
                batch: int = 8, timeout: float = 300.0) -> dict[str, float]:
    """Seconds a fresh Python process spends getting a model's training step ready.

    Starts `python -c ...` that imports JAX, compiles value_and_grad of the `preset`
    model's loss (shared.model.loss_fn) for [batch, seq_len] tokens and runs it once
    on zeros; with cache_dir, the persistent cache is on in that process. Returns
    seconds for import, compile, first step, and process (the child's whole wall
    time, interpreter start and exit included).
    """
    args = [sys.executable, "-c", _START, str(cache_dir) if cache_dir else "-", preset, str(batch)]
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"start-up measurement failed: {last}")
    times = json.loads(done.stdout.strip().splitlines()[-1])
    times["process"] = time.perf_counter() - start
    return times


def cache_entries(cache_dir: str | os.PathLike) -> int:
    """Number of files in a persistent compilation cache directory."""
    path = Path(cache_dir)
    return sum(1 for p in path.rglob("*") if p.is_file()) if path.exists() else 0
