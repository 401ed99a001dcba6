"""Paged KV cache: reading through a page table gives what the contiguous cache gives."""

import jax
import jax.numpy as jnp
import numpy as np

from shared import inference, model, paged
from shared import config as cfg

TINY = cfg.ModelConfig(seq_len=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64)


def test_gather_pages_follows_the_table():
    pages = jnp.arange(5 * 2 * 4 * 3, dtype=jnp.float32).reshape(5, 2, 4, 3)  # [P, K, page, D]
    table = jnp.array([[3, 1], [0, 4]])
    seq = paged.gather_pages(pages, table)
    assert seq.shape == (2, 2, 8, 3), f"[B, K, n * page, D] = (2, 2, 8, 3), got {seq.shape}"
    np.testing.assert_array_equal(seq[0, :, 4:], pages[1], "positions 4..7 of row 0 live in page 1")
    np.testing.assert_array_equal(seq[1, :, :4], pages[0], "positions 0..3 of row 1 live in page 0")
    page_ids, offsets = paged.locate(table, jnp.array([[0, 5], [3, 7]]), 4)
    np.testing.assert_array_equal(page_ids, [[3, 1], [0, 4]])
    np.testing.assert_array_equal(offsets, [[0, 1], [3, 3]])


def test_paged_attention_equals_contiguous():
    params = model.init(TINY, jax.random.key(0))
    rng = np.random.default_rng(0)
    B, page, n_pages = 3, 8, TINY.seq_len // 8
    # Each row gets its pages in a scrambled order from one shared pool (page 0 is the sink).
    table = (1 + rng.permutation(B * n_pages)).reshape(B, n_pages).astype(np.int32)
    shape = (TINY.n_layers, B * n_pages + 1, TINY.kv_heads, page, TINY.head_dim)  # [L, P, K, page, D]
    pool = paged.PagedCache(jnp.zeros(shape), jnp.zeros(shape), jnp.asarray(table))
    cache = inference.init_cache(TINY, B)
    lengths = np.array([20, 9, 33], np.int32)
    tokens = rng.integers(0, 256, (B, 40)).astype(np.int32)
    prompt = np.where(np.arange(33) < lengths[:, None], tokens[:, :33], 0)
    extend_paged = jax.jit(paged.extend, static_argnames="config")
    extend = jax.jit(inference.extend, static_argnames="config")
    got, pool = extend_paged(params, pool, np.zeros(B, np.int32), prompt, lengths, config=TINY)
    want, cache = extend(params, cache, prompt, lengths, config=TINY)
    for i in range(5):
        # The same arithmetic on the same values in another layout: equal to float32 rounding.
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"step {i}")
        step = tokens[np.arange(B), lengths + i][:, None]
        got, pool = extend_paged(params, pool, lengths + i, step, np.ones(B, np.int32), config=TINY)
        want, cache = extend(params, cache, step, np.ones(B, np.int32), config=TINY)


def test_pages_are_taken_as_reached_and_returned():
    kv = paged.PagedKV(TINY, slots=2, page=16, pages=6)  # 5 usable pages
    assert kv.can_admit(20, 30) and kv.pages_for(20 + 30 - 1) == 4
    kv.admit(0, 20, 30)
    assert len(kv.held[0]) == 2, "a 20-token prompt needs pages for positions 0..19: two"
    assert not kv.can_admit(10, 10), "4 of 5 pages are reserved; a 2-page request must wait"
    kv.grow(0, 31)
    assert len(kv.held[0]) == 2
    kv.grow(0, 32)
    assert len(kv.held[0]) == 3 and kv.table[0, 2] == kv.held[0][2] != 0
    allocated, used = kv.memory([33])
    assert allocated == 3 * 16 * inference.kv_bytes_per_token(TINY)
    kv.release(0)
    assert sorted(kv.free) == [1, 2, 3, 4, 5] and not kv.table.any()
