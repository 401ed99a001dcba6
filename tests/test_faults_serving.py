"""Serving and benchmarks survive what a new user does: bfloat16 on a CPU at batch > 1, a
generation longer than the context, NaN temperatures, a damaged or read-only checkpoint,
every benchmark's bad flags, sequence lengths the attention blocks do not divide. Each bad
input ends in one line and a non-zero exit, before any long work.

The whole file runs in under a minute on 2 CPU cores: the models are tiny and every command
runs in-process (its main()).
"""

import dataclasses
import os
import time

import jax
import numpy as np
import pytest

from shared import attention as attn
from shared import checkpoint, engine, inference, model, paged
from shared import config as cfg

# ---- 1. bfloat16 decoding on a CPU, grouped-query attention, batch 1, 2, 4 ------------------

F32 = cfg.ModelConfig(seq_len=32, d_model=32, n_layers=1, n_heads=4, n_kv_heads=2, d_ff=64)
BF16 = dataclasses.replace(F32, dtype="bfloat16")
NEW = 8
# Measured (2-core CPU, jax 0.10.2): the bfloat16 runs gave the float32 run's greedy tokens at
# 100% of positions, in generate and in the engine (contiguous and paged) at batch 1, 2 and 4.
# The test asks for 90%: bfloat16 may round a near-tie the other way, and one different token
# changes every later one.
AGREEMENT = 0.9


@pytest.fixture(scope="module")
def spread_params():
    p = model.init(F32, jax.random.key(0))
    # Spread the logits (random init puts them within ~0.01), as tests/test_engine.py does, so
    # greedy argmax is decided by the model rather than by bfloat16's rounding.
    return {**p, "unembed": p["unembed"] * 50}


PROMPTS = [np.random.default_rng(0).integers(0, 256, n).astype(np.int32) for n in (5, 11, 3, 17)]


@pytest.fixture(scope="module")
def f32_tokens(spread_params):
    return inference.generate(spread_params, F32, PROMPTS, NEW)


def _agreement(got, want) -> float:
    return float(np.mean(np.concatenate(got) == np.concatenate(want[:len(got)])))


@pytest.mark.parametrize("batch", [1, 2, 4])
def test_bfloat16_generate_at_batch(batch, spread_params, f32_tokens):
    got = inference.generate(spread_params, BF16, PROMPTS[:batch], NEW)
    assert [len(t) for t in got] == [NEW] * batch
    assert _agreement(got, f32_tokens) >= AGREEMENT


@pytest.mark.parametrize("kv", ["contiguous", "paged"])
@pytest.mark.parametrize("slots", [1, 2, 4])
def test_bfloat16_engine_with_slots(kv, slots, spread_params, f32_tokens):
    store = (engine.ContiguousKV(BF16, slots) if kv == "contiguous"
             else paged.PagedKV(BF16, slots, page=8))
    eng = engine.Engine(spread_params, BF16, kv=store, buckets=(BF16.seq_len,))
    done = {c.id: c for c in eng.run([engine.Request(i, p, NEW) for i, p in enumerate(PROMPTS)])}
    assert all(not c.error for c in done.values()), [c.error for c in done.values()]
    assert _agreement([done[i].tokens for i in range(4)], f32_tokens) >= AGREEMENT
