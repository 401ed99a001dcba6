"""Training throughput: tokens/s, MFU and peak memory of the loop's step, in float32 and mixed
precision, with remat off and on; then where the time of a short real run goes (goodput).

    python -m shared.bench train                      # small preset on a CPU, 125m on an accelerator
    python -m shared.bench train --preset tiny --steps 3 --dtype float32
    python -m shared.bench train --preset tiny --profile 3   # and where a step's time goes

MFU (shared.roofline.mfu) = model FLOPs per step (6 * matmul params + attention,
shared.model.train_flops_per_token, times tokens) / step time / peak FLOP/s of the compute
dtype. On a CPU the peak is calibrated in this run (shared.hardware), and a line after the
table says so if other programs kept the cores busy meanwhile (shared.hardware.busy_note);
remat's recomputation is not counted as useful work, so it shows as lower MFU. Peak memory
is the compiled step's own account: arguments (the state and the batch) + temporaries
(activations kept for the backward pass, gradients).
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time

import jax
import numpy as np

from shared import config as cfg
from shared import attention as attn
from shared import hardware, host_memory, model, profiling, roofline, timing, train
from shared.bench import _flags
from shared.course import mine

COMMAND = "python -m shared.bench train"  # its pieces: shared.course.mine.BUILDS
HELP = "training step tokens/s, MFU and peak memory (float32 / bf16, remat off / on) and goodput"


def add_arguments(parser) -> None:
    parser.add_argument("--preset", help="model preset (default: small on a CPU, 125m on an accelerator)")
    parser.add_argument("--steps", type=int, help="timed steps per setting after one untimed "
                        "(default 5 on a CPU, 20 on an accelerator)")
    parser.add_argument("--batch-size", type=int, help="sequences per step (default: the preset's on "
                        "a CPU, 8 on an accelerator, where float32 without remat must fit too)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="only this compute dtype (default both)")
    parser.add_argument("--remat", choices=cfg.REMAT, help="only this remat policy (default none and full)")
    parser.add_argument("--attention", help="attention implementation (default: the preset's; "
                        "see shared.attention.IMPLEMENTATIONS)")
    parser.add_argument("--goodput-steps", type=int, default=None,
                        help="steps of the real run timed for goodput (default 6 on a CPU, 50 on an "
                        "accelerator; 0 to skip)")
    parser.add_argument("--profile", type=int, default=0, metavar="STEPS",
                        help="also trace this many steps of the first setting and print where the "
                        "time goes, kind by kind and op by op (shared.profiling; default 0: no)")
    mine.add_switch(parser)


def synthetic_batch(B: int, S: int, vocab: int) -> dict[str, jax.Array]:
    """A batch shaped like the loop's packed rows (one document per row)."""
    tokens = np.random.default_rng(0).integers(0, vocab, (B, S + 1), dtype=np.int32)
    return jax.device_put({"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
                           "positions": np.broadcast_to(np.arange(S, dtype=np.int32), (B, S)),
                           "segment_ids": np.ones((B, S), np.int32),
                           "weights": np.ones((B, S), np.float32)})


@dataclasses.dataclass(frozen=True)
class Measurement:
    seconds: float  # per step, the median of the timed steps
    compile_s: float
    peak_bytes: int  # arguments + temporaries of the compiled step
    temp_bytes: int  # temporaries alone: activations for the backward pass, gradients
    faults: float | None  # minor page faults per step (None where the OS does not count them)


def measure(mc: cfg.ModelConfig, tc: cfg.TrainConfig, steps: int) -> Measurement:
    """Compile the loop's step (make_step) and time `steps` steps after one untimed one: the median."""
    state = train.init_state(mc, tc)
    batch = synthetic_batch(tc.batch_size, mc.seq_len, mc.vocab_size)
    start = time.perf_counter()
    step = train.make_step(mc, tc).lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    memory = step.memory_analysis()
    state, metrics = step(state, batch)
    metrics["loss"].block_until_ready()
    faults = host_memory.minor_faults()
    times = []
    for _ in range(steps):  # each step waited for: a step is seconds long, the wait microseconds
        start = time.perf_counter()
        state, metrics = step(state, batch)
        metrics["loss"].block_until_ready()
        times.append(time.perf_counter() - start)
    faults = None if faults is None else (host_memory.minor_faults() - faults) / steps
    # The median: one step slowed by another process on a shared host does not move it.
    return Measurement(statistics.median(times), compile_s, memory.argument_size_in_bytes + memory.temp_size_in_bytes,
                       memory.temp_size_in_bytes, faults)


def profile(mc: cfg.ModelConfig, tc: cfg.TrainConfig, steps: int) -> None:
    """Trace `steps` steps of the loop's step (after an untimed one, outside the trace) and
    print the time per kind of work and the top ops, read from the trace with the compiled
    program's text."""
    state = train.init_state(mc, tc)
    batch = synthetic_batch(tc.batch_size, mc.seq_len, mc.vocab_size)
    step = train.make_step(mc, tc).lower(state, batch).compile()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)  # the warm-up step ends before the trace starts
    with tempfile.TemporaryDirectory() as folder:
        with profiling.trace(folder):
            for _ in range(steps):
                state, metrics = step(state, batch)
            jax.block_until_ready(metrics)
        profiling.summarize(folder, top=10, steps=steps, hlo=step.as_text())


def goodput_run(mc: cfg.ModelConfig, tc: cfg.TrainConfig, steps: int) -> dict[str, float]:
    """Seconds per goodput category of a real run (stdlib corpus, checkpoints, evaluation)."""
    tc = dataclasses.replace(tc, steps=steps, eval_every=steps, eval_batches=2,
                             checkpoint_every=max(steps // 2, 1), warmup_steps=min(tc.warmup_steps, steps))
    with tempfile.TemporaryDirectory() as folder:
        return train.train(mc, tc, folder, progress=False).goodput


def check(args) -> None:
    """Every flag's bad values, one line each, before any JAX work (shared.bench._flags)."""
    if args.preset is not None:
        cfg.preset(args.preset)  # a one-line ConfigError naming the valid presets
    _flags.at_least(args, 1, "steps", "batch_size")
    _flags.at_least(args, 0, "goodput_steps", "profile")
    if args.attention is not None and args.attention not in attn.IMPLEMENTATIONS:
        raise cfg.ConfigError(f"--attention {args.attention!r} is not one of "
                              f"{', '.join(attn.IMPLEMENTATIONS)}")


def run(args) -> None:
    check(args)
    accelerator = jax.devices()[0].platform != "cpu"
    name = args.preset or ("125m" if accelerator else "small")
    p = cfg.preset(name)
    tc = dataclasses.replace(p.train, batch_size=args.batch_size or (8 if accelerator else p.train.batch_size))
    steps = args.steps or (20 if accelerator else 5)
    chip = hardware.detect()  # on a CPU: calibrates the float32 and bfloat16 peaks now
    print(hardware.describe(chip))
    if not accelerator:
        print(f"huge pages for host buffers (shared.host_memory): "
              f"{'on' if host_memory.huge_pages_on() else 'off'}")
    mc0 = dataclasses.replace(p.model, attention=args.attention or p.model.attention).validate()
    tokens = tc.batch_size * mc0.seq_len
    flops_per_step = model.train_flops_per_token(mc0) * tokens
    print(f"preset {name}: {model.matmul_param_count(mc0) / 1e6:.1f}M matmul parameters, batch "
          f"{tc.batch_size} x {mc0.seq_len} = {tokens:,} tokens, "
          f"{flops_per_step / 1e9:,.1f} model GFLOP per step; attention {mc0.attention}; "
          f"{steps} timed steps per row, median shown\n")
    header = (f"{'compute':>9} {'remat':>7} {'step ms':>9} {'tokens/s':>10} {'GFLOP/s':>9} "
              f"{'peak GF/s':>9} {'MFU':>6} {'peak MiB':>9} {'temp MiB':>9} {'compile s':>9} {'faults/step':>11}")
    print(header)
    print("-" * len(header))
    watch = timing.LoadWatch()
    for dtype in [args.dtype] if args.dtype else ["float32", "bfloat16"]:
        for remat in [args.remat] if args.remat else ["none", "full"]:
            mc = dataclasses.replace(mc0, dtype=dtype, remat=remat)
            try:
                m = measure(mc, tc, steps)
            except Exception as e:  # out of memory on an accelerator: report, go on
                print(f"{dtype:>9} {remat:>7}  failed: {str(e).splitlines()[0][:90]}")
                continue
            peak = chip.flops(dtype)  # the compute dtype's peak: bf16 compute, bf16 peak
            achieved = flops_per_step / m.seconds
            mfu = f"{roofline.mfu(flops_per_step, m.seconds, chip, dtype):6.1%}" if peak else f"{'?':>6}"
            print(f"{dtype:>9} {remat:>7} {m.seconds * 1e3:9.1f} {tokens / m.seconds:10,.0f} "
                  f"{achieved / 1e9:9,.1f} {(peak or 0) / 1e9:9,.0f} {mfu} "
                  f"{m.peak_bytes / 2**20:9,.0f} {m.temp_bytes / 2**20:9,.0f} {m.compile_s:9.1f} "
                  f"{'-' if m.faults is None else f'{m.faults:,.0f}':>11}")
    note = hardware.busy_note(chip, watch.read(), "the steps ran")
    if note:
        print(note)
    print("\nMFU counts the model's FLOPs only (6 per parameter per token + attention): remat's "
          "recomputed forward is extra work, so it lowers MFU while it cuts temporaries.\n"
          "peak MiB = arguments (parameters, AdamW moments, batch) + temporaries, from the "
          "compiled step's memory analysis.\n"
          "faults/step = minor page faults per step: first touches of memory the step allocated afresh.")
    if args.profile:
        mc = dataclasses.replace(mc0, dtype=args.dtype or "float32", remat=args.remat or "none")
        pieces = mine.chosen(args, COMMAND)
        print(f"\nwhere the time of a {mc.dtype} step goes, over {args.profile} traced steps"
              + (f" ({mine.describe(pieces, args.solutions, COMMAND)})" if args.mine or args.solutions else "")
              + ":")
        with mine.plugged_in(pieces):
            profile(mc, tc, args.profile)
    goodput_steps = args.goodput_steps if args.goodput_steps is not None else (50 if accelerator else 6)
    if goodput_steps:
        mc = dataclasses.replace(mc0, dtype=args.dtype or mc0.dtype, remat=args.remat or "none")
        parts = goodput_run(mc, tc, goodput_steps)
        total = sum(parts.values())
        print(f"\ngoodput of a {goodput_steps}-step run ({mc.dtype}, stdlib corpus, a checkpoint half "
              f"way and at the end, one evaluation): {parts['step'] / total:.0%} of {total:.1f} s")
        for k, v in parts.items():
            print(f"  {k:>10} {v:8.1f} s {v / total:6.1%}")
