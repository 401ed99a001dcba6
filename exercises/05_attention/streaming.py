"""Exercises 5.5-5.6: the streaming softmax, and attention built on it, block by block."""

from __future__ import annotations

from typing import Iterable

import jax


def streaming_softmax_sum(chunks: Iterable[tuple[jax.Array, jax.Array]]) -> jax.Array:
    """Exercise 5.5: sum_i softmax(x)_i * v_i in one pass over the data.

    chunks yields (x, v) pieces in order: x [n] scores and v [n, D] values, n may vary.
    The iterable can be read only once, so keep a running max m, running sum
    l = sum exp(x - m) and running weighted sum acc = sum exp(x - m) v; when a chunk
    raises the max, rescale l and acc by exp(m_old - m_new). Must not overflow for
    scores in the thousands. Returns acc / l, [D] float32.
    """
    raise NotImplementedError("Exercise 5.5: a softmax-weighted sum in one pass over the scores")


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
    raise NotImplementedError("Exercise 5.6: attention over key blocks with the online softmax")
