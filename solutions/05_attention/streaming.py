"""Exercises 5.5-5.6: the streaming softmax, and attention built on it, block by block."""

from __future__ import annotations

from typing import Iterable

import jax
import jax.numpy as jnp


def streaming_softmax_sum(chunks: Iterable[tuple[jax.Array, jax.Array]]) -> jax.Array:
    """Exercise 5.5: sum_i softmax(x)_i * v_i in one pass over the data.

    chunks yields (x, v) pieces in order: x [n] scores and v [n, D] values, n may vary.
    The iterable can be read only once, so keep a running max m, running sum
    l = sum exp(x - m) and running weighted sum acc = sum exp(x - m) v; when a chunk
    raises the max, rescale l and acc by exp(m_old - m_new). Must not overflow for
    scores in the thousands. Returns acc / l, [D] float32.
    """
    m, l, acc = -jnp.inf, 0.0, 0.0
    for x, v in chunks:
        x, v = x.astype(jnp.float32), v.astype(jnp.float32)
        m_new = jnp.maximum(m, x.max())
        rescale = jnp.exp(m - m_new)
        p = jnp.exp(x - m_new)  # [n]
        l = rescale * l + p.sum()
        acc = rescale * acc + p @ v
        m = m_new
    return acc / l


def blockwise_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, block_k: int,
                        causal: bool) -> jax.Array:
    """Exercise 5.6: one head of attention over key/value blocks, never forming [S, T].

    q: [S, D]; k, v: [T, D] with T a multiple of block_k; queries are the last S of
    the T positions (query s sits at T - S + s), so causal means key t <= T - S + s.
    Scale scores by 1/sqrt(D). For each block of block_k keys, compute the [S, block_k]
    scores, mask them if causal, and update per-query running max, sum and weighted
    sum as in exercise 5.5. No array may have S * T or more elements.
    Returns [S, D] float32.
    """
    S, D = q.shape
    T = k.shape[0]
    q = q.astype(jnp.float32) / D ** 0.5
    q_pos = jnp.arange(S)[:, None] + (T - S)  # [S, 1]
    m = jnp.full((S, 1), -jnp.inf)
    l = jnp.zeros((S, 1))
    acc = jnp.zeros((S, D))
    for start in range(0, T, block_k):
        k_blk = k[start:start + block_k].astype(jnp.float32)  # [bk, D]
        v_blk = v[start:start + block_k].astype(jnp.float32)
        s = q @ k_blk.T  # [S, bk]
        if causal:
            s = jnp.where(q_pos >= start + jnp.arange(block_k)[None, :], s, -1e30)
        m_new = jnp.maximum(m, s.max(axis=1, keepdims=True))
        rescale = jnp.exp(m - m_new)
        p = jnp.exp(s - m_new)
        l = rescale * l + p.sum(axis=1, keepdims=True)
        acc = rescale * acc + p @ v_blk
        m = m_new
    return acc / l
