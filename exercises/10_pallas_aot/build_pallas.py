"""Build exercise (10.7): flash attention's forward pass as one Pallas kernel, written by you.

You write `flash_forward`, the forward kernel of the course's "pallas" attention. It has
exactly the contract of shared.flash_pallas.flash_forward (the same arguments, the same
(out, lse) result), so it takes that function's place: the core pairs your kernel with its
own backward pass, which rebuilds the softmax weights from your log-sum-exp, wherever the
"pallas" attention is asked for.

    python -m pytest exercises/10_pallas_aot/test_build_pallas.py      # check it
    python -m shared.bench attention --mine --impls reference pallas   # time, memory, error
    python -m shared.train --mine --attention pallas                   # train with it

On a CPU the kernel runs in interpret mode, one program after another: right for checking
values and for the tiny preset's 128 positions, too slow for long sequences, and its timings
say nothing about a GPU. On a GPU it compiles through Triton; train the 125m preset with
`--preset 125m`.

Lesson 05's build exercise (exercises/05_attention/build_flash.py) is the same schedule in
plain JAX; this one is its kernel: a grid and BlockSpecs as in exercises 10.1-10.3, the loop
over keys inside each program (as shared.kernels.matmul's loop over K, not exercise 10.1's
K grid axis), and exercise 10.3's row softmax made online over tiles of keys.

Letters, in every shape below:

    B  batch                         D  head width
    S  query positions               T  key/value positions (S <= T)
    H  query heads                   K  key/value heads (H a multiple of K)
    G  query heads per K head (H / K)
    bq, bk  the query and key block sizes

Imports: jax (jax.numpy, jax.experimental.pallas), numpy, functools, math, shared.config and
shared.kernels (its `pallas_call`: interpret mode on a CPU, Triton on a GPU; and `platform`).
The tests read this file's imports and fail on shared.flash_pallas (the core's kernel),
shared.attention, shared.backward and shared.model: this exercise is where you write it.
Helper functions are yours to add; name them with a leading underscore.
"""

from __future__ import annotations

import jax

BLOCK_Q, BLOCK_K = 128, 64  # the default block sizes (a GPU's shared memory holds them)


def flash_forward(q: jax.Array, k: jax.Array, v: jax.Array, *, segment_ids: jax.Array | None = None,
                  causal: bool = True, scale: float | None = None, block_q: int = BLOCK_Q,
                  block_k: int = BLOCK_K, interpret: bool | None = None) -> tuple[jax.Array, jax.Array]:
    """Exercise 10.7: attention of q [B, S, H, D] over k, v [B, T, K, D] as a Pallas kernel.

    Returns (out, lse):
    - out [B, S, H, D] in q's dtype: the attention output;
    - lse [B, H, S] float32: each query's log-sum-exp over the keys it may read of its scaled
      scores, log(sum_t exp(score[s, t])), the numbers the backward pass rebuilds the
      softmax weights from (exp(score - lse)). Head h's row is lse[:, h].

    Semantics (those of shared.attention's oracle, which the tests compare against):
    - grouped-query attention: query head h reads key/value head h // G;
    - the score of query s and key t is scale * q[s] . k[t], scale defaulting to 1/sqrt(D);
    - the queries are the last S of the T positions (query s sits at position T - S + s);
      with `causal`, a query reads only the keys at its own position or before;
    - segment_ids [B, T] int (None: one document per row) says which document each position
      belongs to, the queries using the last S of them; a query reads only keys of its own
      document. Every query may read at least its own position, so no row is empty;
    - the weights are the softmax of the allowed scores; the output is the weighted sum of
      the values, accumulated in float32.

    The contract, which makes it a flash-attention kernel:
    - one pallas_call (through shared.kernels.pallas_call, so that a GPU compiles it with
      Triton) whose grid has one program per (batch row, query head, query block of bq):
      B * H * (S / bq) programs. Each program loads its [bq, D] queries once and loops (inside
      the kernel, not on the grid: a GPU runs grid programs in parallel) over [bk, D] tiles
      of keys and values, keeping for each query a running max, a running sum and a running
      weighted sum in float32: scores exist only as [bq, bk] tiles, in the kernel; no [S, T]
      array anywhere, no [bq, T] row of scores either. Masks are built inside the kernel
      from positions and segment ids. Key tiles past the causal diagonal may be skipped, or
      computed fully masked: either is right.
    - block sizes: min(block_q, S) must divide S and min(block_k, T) must divide T, else
      raise a ValueError with a one-line message. (Compiled for a GPU, Triton also wants those
      blocks and D to be powers of two >= 16.)
    - interpret: None runs the kernel in interpret mode exactly when the default device is a
      CPU; True forces interpret mode, False compiles it natively.
    - it runs under jax.jit (causal, scale, the blocks and interpret static; segment_ids may
      be traced), on float32 and bfloat16 inputs.
    """
    raise NotImplementedError("Exercise 10.7: flash attention's forward pass as one Pallas kernel, "
                              "with its log-sum-exp")
