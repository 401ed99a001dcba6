"""Build exercise (5.7): flash attention, forward and backward, written by you block by block.

You write `flash_attention`, the function the training job calls for attention. It has
exactly the contract of the course core's attention implementations (without explicit
positions), so it is a drop-in replacement: once the tests pass,

    python -m shared.train --mine

trains the model with your attention in place of the preset's. Check it with
`python -m pytest exercises/05_attention/test_build_flash.py`.

Letters, in every shape below:

    B  batch                         D  head width
    S  query positions               T  key/value positions (S <= T)
    H  query heads                   K  key/value heads (H a multiple of K)
    G  query heads per K head (H / K)
    bq, bk  the query and key block sizes

Imports: jax, jax.numpy, functools, math and shared.config, nothing else from the course.
The tests read this file's imports and fail on shared.attention (and the modules built on
it: shared.backward, shared.flash_pallas, shared.model): this exercise is where you write it.
Helper functions are yours to add; name them with a leading underscore.
"""

from __future__ import annotations

import jax

BLOCK_Q, BLOCK_K = 64, 64  # the default block sizes


def flash_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = True,
                    segment_ids: jax.Array | None = None, scale: float | None = None,
                    block_q: int = BLOCK_Q, block_k: int = BLOCK_K) -> jax.Array:
    """Exercise 5.7: attention of q [B, S, H, D] over k, v [B, T, K, D]; returns [B, S, H, D].

    Semantics (those of shared.attention's oracle, which the tests compare against):
    - grouped-query attention: query head h reads key/value head h // G;
    - the score of query s and key t is scale * q[s] . k[t], scale defaulting to 1/sqrt(D);
    - the queries are the last S of the T positions (query s sits at position T - S + s);
      with `causal`, a query reads only the keys at its own position or before;
    - segment_ids [B, T] (None: one document per row) says which document each position
      belongs to, the queries using the last S of them; a query reads only keys of its own
      document. Every query may read at least its own position, so no row is empty;
    - the weights are the softmax of the allowed scores over the keys; the output is the
      weighted sum of the values, accumulated in float32 and returned in q's dtype.

    The contract, which makes it flash attention rather than attention:
    - block by block: scores exist only as [bq, bk] blocks (per batch row and head), never
      as an [S, T] array, in the forward pass or the backward one. The forward pass keeps,
      for each query, a running max, a running sum and a running weighted sum over the key
      blocks seen so far (the online softmax of exercise 5.5), and also returns each
      query's log-sum-exp of its scores.
    - a hand-written backward pass (jax.custom_vjp): the forward pass saves the inputs, the
      output and that log-sum-exp (float32, [B, H, S] in any layout), nothing [S, T]; the
      backward pass recomputes each block's weights from them and returns dq, dk, dv in the
      dtypes of q, k, v (no gradient for segment_ids). Autodiff through your loops would store
      every block's weights: the tests check that it is a custom_vjp.
    - block sizes: min(block_q, S) must divide S and min(block_k, T) must divide T, else
      raise a ValueError with a one-line message. Blocks above the causal diagonal may be
      skipped, or computed fully masked: either is right.
    - it runs under jax.jit (causal, scale and the block sizes static; no Python `if` on
      array values), on float32 and bfloat16 inputs.
    """
    raise NotImplementedError("Exercise 5.7: flash attention, forward and backward, block by block")
