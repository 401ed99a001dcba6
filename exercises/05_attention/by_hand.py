"""Exercises 5.1-5.3: attention for one query by hand, the packed-document mask, GQA's head map."""

from __future__ import annotations

import jax


def attend_one_query(q: jax.Array, k: jax.Array, v: jax.Array, i: int, *, causal: bool) -> jax.Array:
    """Exercise 5.1: the attention output of query i of one head, by hand.

    q: [S, D], k and v: [T, D], with the S queries at the last S of the T positions
    (query i sits at position T - S + i). Score query i against every key:
    scores[t] = q[i] . k[t] / sqrt(D); if causal, keys after position T - S + i are
    dropped; softmax over the remaining keys; return the weighted sum of their v
    rows, [D] float32.
    """
    raise NotImplementedError("Exercise 5.1: attention for one query, by hand")


def packed_causal_mask(segment_ids: jax.Array) -> jax.Array:
    """Exercise 5.2: the mask of several documents packed into one row.

    segment_ids: [T] int, which document each position belongs to (e.g. [0,0,0,1,1,2]).
    Returns bool [T, T]: entry [s, t] is True where position s may attend to
    position t: t is not after s, and both are in the same document.
    """
    raise NotImplementedError("Exercise 5.2: the attention mask of packed documents")


def kv_head_for(query_head: int, n_heads: int, n_kv_heads: int) -> int:
    """Exercise 5.3: which key/value head a query head reads under grouped-query attention.

    The course (and shared.attention) groups H = n_heads query heads as [K, G] with
    K = n_kv_heads and G = H / K: consecutive query heads share a key/value head.
    Returns the index in 0..K-1 of the key/value head that `query_head` reads.
    """
    raise NotImplementedError("Exercise 5.3: the key/value head index of a query head under GQA")
