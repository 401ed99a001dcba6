"""Build exercise (1.8-1.10): the course's whole model, written by you from einsums.

You write the three functions the training job calls: `init` (the parameters), `forward`
(the logits) and `loss_sums` (the loss). They have exactly the contracts of the course
core's own, so they are drop-in replacements: once the tests pass,

    python -m shared.train --mine

trains the model on your code. Check it with
`python -m pytest exercises/01_llm_from_scratch/test_build_model.py`.

Letters, in every shape below (and a good set of einsum subscripts):

    B  batch                      L  layers (config.n_layers)
    S  sequence (query positions) T  sequence (key/value positions; T = S here)
    E  model width (d_model)      V  vocabulary (vocab_size)
    H  query heads (n_heads)      K  key/value heads (config.kv_heads; K = H without GQA)
    G  query heads per K head     D  head width (config.head_dim, E = H * D)
    F  MLP width (d_ff)

The parameter tree, a dict of float32 arrays; each block weight is stacked over the L
layers (a leading L axis), so blocks["wq"][l] is layer l's [E, H, D]:

    embed       [V, E]          token embedding
    blocks      attn_norm [L, E]    wq [L, E, H, D]    wk [L, E, K, D]    wv [L, E, K, D]
                wo [L, H, D, E]     mlp_norm [L, E]    w_up [L, E, F]     w_down [L, F, E]
    final_norm  [E]
    unembed     [E, V]          output projection (not tied to embed)

Imports: jax, jax.numpy, math and shared.config (for ModelConfig), nothing else from the
course. The tests read this file's imports and fail on shared.model or anything built on
it: this exercise is where you write it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from shared.config import ModelConfig


def init(config: ModelConfig, key: jax.Array) -> dict:
    """Exercise 1.8: random parameters for `config`, laid out as the tree above.

    Every array float32. Matrices (embed, wq, wk, wv, w_up, unembed) are drawn from a
    normal distribution with mean 0 and standard deviation 0.02; the two projections
    that add into the residual stream, wo and w_down, use 0.02 / sqrt(2 L) instead
    (GPT-2: each of the 2 L additions then adds a little, and the residual stream's
    variance stays near where it started however deep the model is). Norm scales
    (attn_norm, mlp_norm, final_norm) start at one. Every weight, and every layer of a
    stacked weight, is an independent draw: split `key` (jax.random.split) rather than
    reuse it. The same key gives the same tree.
    """
    raise NotImplementedError("Exercise 1.8: the parameter tree, randomly initialised")


def forward(params: dict, tokens: jax.Array, config: ModelConfig, *,
            positions: jax.Array | None = None,
            segment_ids: jax.Array | None = None) -> jax.Array:
    """Exercise 1.9: float32 logits [B, S, V] for int tokens [B, S] (S <= config.seq_len).

    positions: int [B, S], each token's position in its document; default 0..S-1 in
    every row. segment_ids: int [B, S], which document each token belongs to when
    several are packed into one row; None means one document per row.

    The model, with the weights cast to config.dtype ("float32" or "bfloat16") so that
    every matmul runs in it (ask einsum for float32 sums: preferred_element_type), and
    the logits returned in float32:

        x = embed[tokens]                                    [B, S, E]
        for each of the L layers (pre-norm):
            x = x + attention(rms_norm(x, attn_norm))        [B, S, E]
            x = x + mlp(rms_norm(x, mlp_norm))               [B, S, E]
        logits = rms_norm(x, final_norm) @ unembed           [B, S, V]

    rms_norm(x, scale): x / sqrt(mean of x**2 over E + 1e-6) * scale, computed in float32
    and returned in x's dtype.
    attention: queries q = x wq [B, S, H, D], keys k = x wk and values v = x wv
    [B, T, K, D]. Rotary positions (RoPE, as in exercise 1.2) turn q and k, not v: for
    i < D/2 the pair (x[i], x[i + D/2]) rotates by the angle position * rope_base**(-2i/D).
    Query head h reads key/value head h // G. The score of query s and key t is
    q . k / sqrt(D); query s may read only keys t <= s, and only those of its own
    segment; the weights are the softmax of the scores over the keys (in float32), and
    the output at s, the weighted sum of v ([B, S, H, D]), is projected by wo to [B, S, E].
    mlp: gelu(x w_up) w_down, GELU's tanh approximation (jax.nn.gelu's default) in float32.

    So logits at position s depend only on the tokens at positions <= s of the same
    segment. It must run under jax.jit with the config static (no Python `if` on array
    values); a loop over the layers may be a Python loop or jax.lax.scan.
    """
    raise NotImplementedError("Exercise 1.9: the model's forward pass, from einsums")


def loss_sums(params: dict, batch: dict, config: ModelConfig) -> tuple[jax.Array, jax.Array]:
    """Exercise 1.10: (total, count) over a batch, two float32 scalars.

    batch: a dict of [B, S] arrays: "inputs" (the tokens fed to forward), "targets" (int,
    the token that should come next at each position), and optionally "positions" and
    "segment_ids" (passed on to forward) and "weights" (float: how much each position
    counts; missing means 1 everywhere). total is the sum over all B * S positions of
    weight * cross-entropy, where cross-entropy is -log softmax(logits)[target] in nats,
    computed stably; count is the sum of the weights (B * S without weights).

    Sums, not means: the training step adds the sums of its micro-batches and divides once
    at the end, so that accumulating micro-batches gives exactly the big batch's loss.
    The step differentiates total with jax.value_and_grad(loss_sums, has_aux=True), so
    return a 2-tuple.
    """
    raise NotImplementedError("Exercise 1.10: the loss as sums over a batch")
