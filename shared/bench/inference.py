"""Inference: naive vs KV cache, batch-1 decode MBU, static vs continuous batching, paged KV, int8.

Random weights throughout (timing does not depend on their values); validation loss
needs a trained model: pass --checkpoint. Sizes grow on a GPU or TPU.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from shared import config as cfg
from shared import data, hardware, inference, model, quant, sampling, timing
from shared.bench import _flags, serving
from shared.train import load_params

HELP = "naive vs KV-cache decoding, decode MBU, continuous batching, paged KV, int8 weights"


def add_arguments(parser) -> None:
    parser.add_argument("--new-tokens", type=int, default=512, help="tokens generated per request (default 512)")
    parser.add_argument("--requests", type=int, help="workload size (default 48 on a CPU, 128 on an accelerator)")
    parser.add_argument("--checkpoint", help="a trained run folder for the int8 validation loss")


@dataclass(frozen=True)
class Comparison:
    float_bytes: int
    int8_bytes: int
    float_loss: float  # mean validation cross-entropy, nats per token
    int8_loss: float

    def __str__(self) -> str:
        return (f"weights {self.float_bytes / 1e6:.1f} MB -> {self.int8_bytes / 1e6:.1f} MB "
                f"({self.float_bytes / self.int8_bytes:.2f}x smaller); validation loss "
                f"{self.float_loss:.4f} -> {self.int8_loss:.4f} ({self.int8_loss - self.float_loss:+.4f} nats)")


def compare(params: dict, config: cfg.ModelConfig, val_tokens: np.ndarray, *, batches: int = 4,
            batch_size: int = 8, seed: int = 0) -> Comparison:
    """Bytes and validation loss of the float model and its int8 version (shared.quant)
    on the same batches: the quality int8 weights cost, measured."""
    qparams = quant.quantize_params(params)
    loss = jax.jit(model.loss_fn, static_argnums=3)
    xs = [data.batch(val_tokens, batch_size, config.seq_len, seed, step=i) for i in range(batches)]
    mean_loss = lambda p: float(np.mean([loss(p, x, y, config) for x, y in xs]))
    return Comparison(quant.nbytes(params), quant.nbytes(qparams), mean_loss(params),
                      mean_loss(quant.dequantize_params(qparams)))


def decode_seconds(params, config: cfg.ModelConfig, batch: int, steps: int, max_len: int) -> float:
    """Seconds per decode step (batch rows, cache of max_len) after a warm-up step."""
    opts = dict(config=config, temperature=0.0, top_k=None, top_p=None)
    params = inference.prepare(params, config)
    cache = inference.init_cache(config, batch, max_len)
    tok = np.ones((batch, 1), np.int32)
    one, zero = np.ones(batch, np.int32), np.zeros(batch, np.int32)
    out, cache = inference._step(params, cache, tok, one, zero, zero, **opts)
    out.block_until_ready()
    start = time.perf_counter()
    for _ in range(steps):  # the cache stops growing (n_valid 0) so every step reads the same bytes
        out, cache = inference._step(params, cache, tok, zero, zero, zero, **opts)
    out.block_until_ready()
    return (time.perf_counter() - start) / steps


def check(args) -> None:
    """Every flag's bad values, one line each, before any JAX work (shared.bench._flags)."""
    _flags.at_least(args, 1, "new_tokens", "requests")
    _flags.run_folder(args, "checkpoint")  # a missing folder is said now, not after the timings


def run(args) -> None:
    check(args)
    chip = hardware.detect()
    accel = jax.devices()[0].platform != "cpu"
    print(hardware.describe(chip))
    print("random weights unless --checkpoint: speeds do not depend on the values\n")

    # 1. naive vs KV cache
    small = cfg.ModelConfig(seq_len=1024, d_model=256, n_layers=4, n_heads=4, d_ff=1024, **cfg.FAST,
                            dtype="bfloat16" if accel else "float32")
    params = model.init(small, jax.random.key(0))
    prompt = np.arange(16, dtype=np.int32) % 256
    n = min(args.new_tokens, small.seq_len - len(prompt) + 1)
    sampling.generate(params, small, prompt, 2, temperature=0)  # compile
    naive_n = 16  # the naive window has a fixed shape: every step costs the same, so time a few
    start = time.perf_counter()
    sampling.generate(params, small, prompt, naive_n, temperature=0)
    naive = naive_n / (time.perf_counter() - start)
    inference.generate(params, small, [prompt], 2)  # compile
    start = time.perf_counter()
    inference.generate(params, small, [prompt], n)
    cached = n / (time.perf_counter() - start)
    print(f"1. decoding {n} tokens, {model.param_count(params) / 1e6:.1f}M params, context {small.seq_len}")
    print(f"   naive (whole window per token) {naive:10,.1f} tok/s")
    print(f"   KV cache                       {cached:10,.1f} tok/s   {cached / naive:.1f}x naive\n")

    # 2. batch-1 decode MBU of a >= 100M parameter model
    big = dataclasses.replace(cfg.preset("125m").model, dtype="bfloat16" if accel else "float32")
    params = model.init(big, jax.random.key(0))
    max_len = 1024 if accel else 256
    weight_bytes = quant.matmul_bytes(model.cast(params, jnp.dtype(big.dtype)))
    cache_bytes = inference.kv_bytes_per_token(big) * max_len
    bw = chip.read_bw  # a decode step only reads
    print(f"2. decode step, {model.param_count(params) / 1e6:.0f}M params ({big.dtype}), cache of {max_len}: "
          f"reads {weight_bytes / 1e6:,.0f} MB weights + {cache_bytes / 1e6:,.1f} MB cache per row")
    if chip.read_only_bw:
        print(f"   bandwidth: {bw / 1e9:,.1f} GB/s, the calibrated read-only figure (a step only reads)")
    base = None
    watch = timing.LoadWatch()
    for batch in (1, 2, 8):
        s = decode_seconds(params, big, batch, 10, max_len)
        base = base or s
        nbytes = weight_bytes + cache_bytes * batch
        print(f"   batch {batch}: {s * 1e3:8.2f} ms/step ({s / base:4.2f}x batch 1)  {batch / s:8,.1f} tok/s  "
              f"MBU {nbytes / s / bw:5.1%} (bound {nbytes / bw * 1e3:.2f} ms)")
    qparams = quant.quantize_params(params)
    s8 = decode_seconds(qparams, big, 1, 10, max_len)
    print(f"   int8 weights, batch 1: {s8 * 1e3:8.2f} ms/step ({s8 / base:4.2f}x float), weights "
          f"{quant.matmul_bytes(qparams) / 1e6:,.0f} MB")
    note = hardware.busy_note(chip, watch.read(), "the decode steps ran")
    print(f"   {note}\n" if note else "")
    del params, qparams

    # 3 and 4. static vs continuous batching; contiguous vs paged KV memory
    serve = dataclasses.replace(small, seq_len=256 if not accel else 512)
    params = model.init(serve, jax.random.key(1))
    n_req = args.requests or (128 if accel else 48)
    slots = 16 if accel else 8
    requests = serving.workload(n_req, serve.seq_len)
    static, cont, pag, ce, pe = serving.compare(params, serve, requests, slots, serve.seq_len)
    print(f"3. {n_req} requests, prompts 8..{serve.seq_len // 4}, 80% want 4-16 tokens, 20% up to the context")
    for r in (static, cont, pag):
        print("   " + r.row())
    print(f"   continuous / static throughput: {cont.tokens_per_s / static.tokens_per_s:.2f}x\n")
    print("4. KV memory, averaged over the decode steps")
    print("   " + serving.memory_row("contiguous reservation", *ce.mean_memory))
    print("   " + serving.memory_row(f"paged ({pe.kv.page} per page)", *pe.mean_memory) + "\n")

    # 5. float vs int8 quality
    print("5. int8 weights (per-channel absmax)")
    if args.checkpoint:
        mc, params = load_params(args.checkpoint)
        val = data.split(data.load_corpus(), mc.seq_len).val
        print("   " + str(compare(params, mc, val)))
    else:
        print("   validation loss: pass --checkpoint runs/tiny (random weights have no quality to lose)")
