"""Exercise 1.3: one head of causal self-attention, written out in full."""

from __future__ import annotations

import jax


def attention_head(x: jax.Array, wq: jax.Array, wk: jax.Array, wv: jax.Array) -> jax.Array:
    """Exercise 1.3: a single causal self-attention head.

    x: [B, S, E]; wq, wk, wv: [E, D]. Project q = x wq, k = x wk, v = x wv (each
    [B, S, D]); scores[b, s, t] = q[b, s] . k[b, t] / sqrt(D); position s may only look
    at positions t <= s (mask the others before the softmax over t); the output at s is
    the softmax-weighted sum of v[b, t]. Returns [B, S, D] float32.
    """
    raise NotImplementedError("Exercise 1.3: causal single-head attention")
