"""Checks for exercises 9.1-9.6 against numpy, naive generation (shared.sampling) and hand-worked cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import model, sampling
from shared import config as cfg

TINY = cfg.ModelConfig(seq_len=32, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64)


def test_cache_update(answers):
    rng = np.random.default_rng(0)
    cache = rng.standard_normal((3, 8, 2, 4)).astype(np.float32)  # [B, T, K, D]
    new = rng.standard_normal((3, 2, 4)).astype(np.float32)
    positions = np.array([0, 5, 7])
    got = np.asarray(answers.cache_update(jnp.asarray(cache), jnp.asarray(new), jnp.asarray(positions)))
    want = cache.copy()
    want[np.arange(3), positions] = new
    assert got.shape == want.shape, f"shape: expected {want.shape} (the cache keeps its shape), got {got.shape}"
    np.testing.assert_array_equal(got, want, "row b must change at positions[b] only, to new[b] exactly")


def test_greedy_decode(answers):
    params = model.init(TINY, jax.random.key(0))
    params = {**params, "unembed": params["unembed"] * 50}  # clear argmax margins: no near-ties
    rng = np.random.default_rng(1)
    lengths = np.array([3, 9, 6], np.int32)
    prompts = np.zeros((3, 9), np.int32)
    for b, n in enumerate(lengths):
        prompts[b, :n] = rng.integers(0, 256, n)
    got = np.asarray(answers.greedy_decode(params, TINY, prompts, lengths, 5))
    assert got.shape == (3, 5), f"shape: expected (3, 5) = [B, n], got {got.shape}"
    for b, n in enumerate(lengths):
        want = sampling.generate(params, TINY, prompts[b, :n], 5, temperature=0)[n:]
        np.testing.assert_array_equal(got[b], want, f"row {b} (prompt length {n}) vs naive greedy generation")


def test_absmax_quantize(answers):
    w = np.random.default_rng(2).standard_normal((64, 10)).astype(np.float32)
    w[:, 3] = 0  # an all-zero channel
    q, scale = answers.absmax_quantize(jnp.asarray(w))
    q, scale = np.asarray(q), np.asarray(scale)
    assert q.dtype == np.int8 and q.shape == (64, 10), f"q: expected int8 (64, 10), got {q.dtype} {q.shape}"
    want_scale = np.abs(w).max(axis=0) / 127
    want_scale[3] = 1.0
    np.testing.assert_allclose(scale, want_scale, rtol=1e-6, err_msg="scale = column absmax / 127 (1 if zero)")
    np.testing.assert_array_equal(q, np.round(w / want_scale).astype(np.int8), "q = round(w / scale)")
    assert np.abs(q).max() == 127, "each nonzero column's largest |w| must map to 127"


def test_int8_dot(answers):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 300)).astype(np.float32)
    q = rng.integers(-127, 128, (300, 6)).astype(np.int8)
    w_scale = rng.uniform(0.001, 0.01, 6).astype(np.float32)
    got = np.asarray(answers.int8_dot(jnp.asarray(x), jnp.asarray(q), jnp.asarray(w_scale)))
    sx = np.abs(x).max(axis=1, keepdims=True) / 127
    acc = np.round(x / sx).astype(np.int64) @ q.astype(np.int64)  # the exact integer sums
    want = acc * sx * w_scale
    assert got.dtype == np.float32, f"expected float32 output, got {got.dtype}"
    # int32 accumulation is exact; only the final float32 rescale rounds (~1e-7 relative).
    np.testing.assert_allclose(got, want, rtol=1e-5, err_msg="int8 x int8 summed exactly in int32, then rescaled")


def test_lookup_key(answers):
    pages = np.random.default_rng(4).standard_normal((6, 4, 2, 3)).astype(np.float32)  # [P, page, K, D]
    table = np.array([5, 0, 3])
    for position in (0, 3, 4, 9, 11):
        got = np.asarray(answers.lookup_key(jnp.asarray(pages), jnp.asarray(table), position))
        want = pages[table[position // 4], position % 4]
        np.testing.assert_array_equal(got, want, f"position {position}: page table[{position // 4}], offset {position % 4}")


@pytest.mark.parametrize("queue, slots, finished, want", [
    ([7, 8, 9], [1, None, 2, 3], [False, False, True, False], ([1, 7, 8, 3], [9])),
    ([], [1, 2], [True, True], ([None, None], [])),
    ([4], [None, None], [False, False], ([4, None], [])),
    ([5, 6], [1, 2], [False, False], ([1, 2], [5, 6])),
])
def test_schedule(answers, queue, slots, finished, want):
    q0, s0 = list(queue), list(slots)
    got = answers.schedule(queue, slots, finished)
    assert (list(got[0]), list(got[1])) == want, \
        f"queue {queue}, slots {slots}, finished {finished}: expected {want}, got {got}"
    assert queue == q0 and slots == s0, "the inputs must not be modified"
