"""A decoder-only transformer as pure functions over a pytree of parameters.

Letter convention for every einsum and shape comment in the course:

    B  batch                      L  layers
    S  sequence (query positions) T  sequence (key/value positions)
    E  model width (d_model)      V  vocabulary
    H  query heads                K  key/value heads (K = H without GQA)
    G  query heads per K head     D  head width (E = H * D)
    F  MLP width

Parameters (the pytree `init` returns; every array in "blocks" has a leading L):

    embed       [V, E]            token embedding
    blocks      attn_norm [L, E]  wq [L, E, H, D]  wk, wv [L, E, K, D]  wo [L, H, D, E]
                mlp_norm  [L, E]  w_up [L, E, F]   w_down [L, F, E]
    final_norm  [E]
    unembed     [E, V]            output projection (not tied to embed)

A block is pre-norm: x + attn(rmsnorm(x)), then x + mlp(rmsnorm(x)). Positions
are rotary (RoPE) on queries and keys, so there is no position table.

Under `sharding_constraints(fn)` (shared.train uses it for sharded steps) forward
calls fn(x, logical_axes) on its main activations while jit traces it, so the
compiler is told how the residual stream, heads, MLP hidden and logits are split.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Callable, Iterator

import jax
import jax.numpy as jnp

from shared import attention as attn_lib
from shared.config import ModelConfig


def init(config: ModelConfig, key: jax.Array) -> dict:
    """Random parameters: normal(0, 0.02), output projections scaled by 1/sqrt(2L) as GPT-2."""
    c = config.validate()
    V, E, L, H, K, D, F = c.vocab_size, c.d_model, c.n_layers, c.n_heads, c.kv_heads, c.head_dim, c.d_ff
    keys = iter(jax.random.split(key, 8))
    std, out_std = 0.02, 0.02 / math.sqrt(2 * L)

    def normal(shape, s=std):
        return s * jax.random.normal(next(keys), shape, jnp.float32)

    return {
        "embed": normal((V, E)),
        "blocks": {
            "attn_norm": jnp.ones((L, E)),
            "wq": normal((L, E, H, D)),
            "wk": normal((L, E, K, D)),
            "wv": normal((L, E, K, D)),
            "wo": normal((L, H, D, E), out_std),
            "mlp_norm": jnp.ones((L, E)),
            "w_up": normal((L, E, F)),
            "w_down": normal((L, F, E), out_std),
        },
        "final_norm": jnp.ones((E,)),
        "unembed": normal((E, V)),
    }


def param_count(params: dict) -> int:
    return sum(x.size for x in jax.tree.leaves(params))


def matmul_param_count(config: ModelConfig) -> int:
    """Parameters that take part in a matmul per token: all but the embedding table and norms."""
    c = config
    per_layer = c.d_model * c.head_dim * (2 * c.n_heads + 2 * c.kv_heads) + 2 * c.d_model * c.d_ff
    return c.n_layers * per_layer + c.d_model * c.vocab_size


def train_flops_per_token(config: ModelConfig) -> int:
    """Model FLOPs to train on one token: 6 * matmul params + 12 * L * S * E.

    2 FLOPs per multiply-add, times 3 for forward + backward (the backward does two
    matmuls per forward one). The second term is attention's QK^T and AV over the
    full context (PaLM, appendix B); a causal kernel that skips masked blocks does
    about half of it, but MFU counts the model's FLOPs, not the kernel's.
    """
    c = config
    return 6 * matmul_param_count(c) + 12 * c.n_layers * c.seq_len * c.d_model


_constraint: contextvars.ContextVar = contextvars.ContextVar("constraint", default=None)


@contextlib.contextmanager
def sharding_constraints(fn: Callable[[jax.Array, tuple], jax.Array]) -> Iterator[None]:
    """While the block traces forward, constrain activations with fn(x, logical_axes)."""
    token = _constraint.set(fn)
    try:
        yield
    finally:
        _constraint.reset(token)


def constrain(x: jax.Array, *logical: str) -> jax.Array:
    """x unchanged, or placed as the active sharding_constraints say (e.g. "batch", "sequence", "embed")."""
    fn = _constraint.get()
    return x if fn is None else fn(x, logical)


REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    # Weight matmuls have no batch dimension in dot_general's sense (B and S are free
    # dimensions); attention's QK^T and AV do (B and heads), so they are recomputed too.
    "matmuls": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def rms_norm(x: jax.Array, scale: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Normalise the last axis to unit root-mean-square, in float32 for stability."""
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
    return (x32 * scale).astype(x.dtype)


def rope(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """Rotate pairs (x[i], x[i + D/2]) by angle position * base^(-2i/D).

    x: [B, S, N, D] (N heads), positions: [B, S]. Dot products between rotated
    queries and keys then depend only on the distance between their positions.
    """
    D = x.shape[-1]
    freqs = base ** (-jnp.arange(0, D // 2, dtype=jnp.float32) * 2 / D)  # [D/2]
    angle = positions.astype(jnp.float32)[:, :, None, None] * freqs  # [B, S, 1, D/2]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)  # 2 x [B, S, N, D/2]
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return rotated.astype(x.dtype)


def matmul(spec: str, x: jax.Array, w: jax.Array) -> jax.Array:
    """jnp.einsum(spec, x, w) in x's dtype, its products summed in float32.

    GPUs and TPUs sum bfloat16 products in float32 inside the matmul unit and write
    bfloat16 at full speed. XLA's CPU matmuls that write bfloat16 ran no faster than
    float32 ones (lesson 06), so on a CPU the result is asked for in float32 and cast;
    on an H100 that cast cost the 125m step 10% (also lesson 06).
    """
    if jax.default_backend() == "cpu":
        return jnp.einsum(spec, x, w, preferred_element_type=jnp.float32).astype(x.dtype)
    return jnp.einsum(spec, x, w)


def attention_block(x, p, positions, segment_ids, config: ModelConfig):
    """Causal self-attention of one layer. x: [B, S, E] -> [B, S, E]."""
    q = constrain(matmul("BSE,EHD->BSHD", x, p["wq"]), "batch", "sequence", "heads", None)
    k = constrain(matmul("BSE,EKD->BSKD", x, p["wk"]), "batch", "sequence", "kv_heads", None)
    v = constrain(matmul("BSE,EKD->BSKD", x, p["wv"]), "batch", "sequence", "kv_heads", None)
    q, k = rope(q, positions, config.rope_base), rope(k, positions, config.rope_base)
    out = attn_lib.attention(q, k, v, causal=True, segment_ids=segment_ids,
                             impl=config.attention)  # [B, S, H, D]
    return matmul("BSHD,HDE->BSE", out, p["wo"])


def gelu_and_slope(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """GELU (tanh approximation, the values of jax.nn.gelu) and its derivative, elementwise."""
    c = math.sqrt(2 / math.pi)
    t = jnp.tanh(c * (x + 0.044715 * x**3))
    cdf = 0.5 * (1 + t)
    slope = cdf + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)  # d gelu / dx
    return x * cdf, slope


@jax.custom_vjp
def mlp(x: jax.Array, w_up: jax.Array, w_down: jax.Array) -> jax.Array:
    """gelu(x @ w_up) @ w_down, with a hand-written backward pass. x: [B, S, E] -> [B, S, E].

    Autodiff gives the same gradients but keeps more [B, S, F] intermediates, and on a
    CPU the compiler then transposed the [B, S, F] operand of each weight-gradient
    matmul; lesson 06 measures the difference.
    """
    return _mlp_forward(x, w_up, w_down)[0]


def _mlp_forward(x, w_up, w_down):
    pre = constrain(matmul("BSE,EF->BSF", x, w_up), "batch", "sequence", "mlp")
    h, slope = gelu_and_slope(pre.astype(jnp.float32))
    h, slope = h.astype(x.dtype), slope.astype(x.dtype)  # the two [B, S, F] the backward keeps
    return matmul("BSF,FE->BSE", h, w_down), (x, h, slope, w_up, w_down)


def _mlp_backward(saved, dy):
    x, h, slope, w_up, w_down = saved
    dpre = constrain(matmul("BSE,FE->BSF", dy, w_down) * slope, "batch", "sequence", "mlp")
    # A weight gradient sums over all B * S tokens, so one operand must be transposed:
    # x and dy ([B, S, E]) are 4x smaller than dpre and h ([B, S, F]). The barrier keeps
    # XLA from folding the final [E, F] -> [F, E] transpose into the matmul, which would
    # move the transpose onto h (and, in bfloat16 on a CPU, has no kernel).
    d_up = matmul("EBS,BSF->EF", jnp.einsum("BSE->EBS", x), dpre)
    d_down = jax.lax.optimization_barrier(matmul("EBS,BSF->EF", jnp.einsum("BSE->EBS", dy), h)).T
    return matmul("BSF,EF->BSE", dpre, w_up), d_up, d_down


mlp.defvjp(_mlp_forward, _mlp_backward)


def mlp_block(x, p):
    """Position-wise MLP of one layer. x: [B, S, E] -> [B, S, E]."""
    return mlp(x, p["w_up"], p["w_down"])


def block(x, p, positions, segment_ids, config: ModelConfig):
    x = x + attention_block(rms_norm(x, p["attn_norm"]), p, positions, segment_ids, config)
    return x + mlp_block(rms_norm(x, p["mlp_norm"]), p)


def forward(params: dict, tokens: jax.Array, config: ModelConfig, *,
            positions: jax.Array | None = None,
            segment_ids: jax.Array | None = None) -> jax.Array:
    """Logits for every position.

    tokens: [B, S] int; positions: [B, S] (default 0..S-1, per document when packing);
    segment_ids: [B, S] int, tokens attend only within their own segment (None: one
    document per row). Returns float32 logits [B, S, V]; logits at position t depend
    only on tokens[:, :t+1].
    """
    B, S = tokens.shape
    if positions is None:
        positions = jnp.broadcast_to(jnp.arange(S), (B, S))
    dtype = jnp.dtype(config.dtype)
    cast = lambda tree: jax.tree.map(lambda w: w.astype(dtype), tree)

    x = constrain(cast(params["embed"])[tokens], "batch", "sequence", "embed")  # [B, S, E]

    def layer(x, p):
        x = block(x, cast(p), positions, segment_ids, config)
        return constrain(x, "batch", "sequence", "embed"), None

    if config.remat != "none":
        layer = jax.checkpoint(layer, policy=REMAT_POLICIES[config.remat])
    x, _ = jax.lax.scan(layer, x, params["blocks"])  # [B, S, E]
    x = rms_norm(x, params["final_norm"])
    logits = jnp.einsum("BSE,EV->BSV", x, cast(params["unembed"]),
                        preferred_element_type=jnp.float32)
    return constrain(logits, "batch", "sequence", "vocab")


# ---- the loss, beside the model it scores ----

def loss_sums(params: dict, batch: dict, config: ModelConfig) -> tuple[jax.Array, jax.Array]:
    """(sum of weight * cross-entropy, sum of weights) over a batch of [B, S] arrays:
    inputs, targets, and optionally positions, segment_ids and weights (default 1).

    Sums rather than a mean, so that micro-batches add up to exactly the big batch.
    """
    logits = forward(params, batch["inputs"], config, positions=batch.get("positions"),
                     segment_ids=batch.get("segment_ids"))  # [B, S, V] float32
    logprobs = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logprobs, batch["targets"][..., None], axis=-1)[..., 0]  # [B, S]
    weights = batch.get("weights")
    if weights is None:
        return nll.sum(), jnp.asarray(nll.size, jnp.float32)
    return (nll * weights).sum(), weights.sum()


def loss_fn(params: dict, tokens: jax.Array, targets: jax.Array, config: ModelConfig, *,
            positions: jax.Array | None = None, segment_ids: jax.Array | None = None,
            weights: jax.Array | None = None) -> jax.Array:
    """Mean cross-entropy in nats of targets [B, S] under the model's logits, over the
    targets whose weight is 1 (all of them when weights is None)."""
    batch = {"inputs": tokens, "targets": targets, "positions": positions,
             "segment_ids": segment_ids, "weights": weights}
    total, count = loss_sums(params, {k: v for k, v in batch.items() if v is not None}, config)
    return total / count
