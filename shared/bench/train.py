"""Training throughput: tokens/s, achieved FLOP/s and MFU against the peak calibrated in this run."""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from shared import config as cfg
from shared import hardware, model, train

HELP = "training step throughput and MFU of a preset"


def add_arguments(parser) -> None:
    parser.add_argument("--preset", default="small", help="model preset (default small)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps after 2 warm-up steps")
    parser.add_argument("--batch-size", type=int, help="sequences per step (default: the preset's)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="compute dtype (default: the preset's)")


def measure(mc: cfg.ModelConfig, tc: cfg.TrainConfig, steps: int) -> float:
    """Seconds per training step, from `steps` steps after two untimed ones (compilation)."""
    step_fn = train.make_train_step(mc, tc)
    state = train.init_state(mc, tc)
    rng = np.random.default_rng(0)
    x, y = (rng.integers(0, mc.vocab_size, (tc.batch_size, mc.seq_len), dtype=np.int32) for _ in range(2))
    for _ in range(2):
        state, loss = step_fn(state, x, y)
    loss.block_until_ready()
    start = time.perf_counter()
    for _ in range(steps):  # one stream of steps, as in training: dispatch overlaps compute
        state, loss = step_fn(state, x, y)
    loss.block_until_ready()
    return (time.perf_counter() - start) / steps


def run(args) -> None:
    p = cfg.preset(args.preset)
    mc = dataclasses.replace(p.model, dtype=args.dtype or p.model.dtype)
    tc = dataclasses.replace(p.train, batch_size=args.batch_size or p.train.batch_size)
    chip = hardware.detect()
    print(hardware.describe(chip))
    seconds = measure(mc, tc, args.steps)
    tokens = tc.batch_size * mc.seq_len
    flops = model.train_flops_per_token(mc) * tokens
    peak = chip.flops(mc.dtype)
    print(f"preset {args.preset} ({mc.dtype}), batch {tc.batch_size} x {mc.seq_len} tokens, "
          f"{model.train_flops_per_token(mc) / 1e6:.1f} MFLOP per token")
    print(f"step {seconds * 1e3:.1f} ms | {tokens / seconds:,.0f} tokens/s | "
          f"{flops / seconds / 1e9:,.1f} GFLOP/s | "
          f"MFU {flops / seconds / peak:.1%} of {peak / 1e9:,.0f} GFLOP/s" if peak else "MFU unknown (no peak)")
