"""Exercises 1.8-1.10, answered: the course's whole model, from einsums.

Drop-in replacements for shared.model's init, forward and loss_sums. The attention is
split into small helpers (_qkv, _expand_kv, _mask, _scores, _softmax) so that each step
reads on its own; tests/wrong/ replaces one of them at a time with a classic mistake.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from shared.config import ModelConfig


def init(config: ModelConfig, key: jax.Array) -> dict:
    """Exercise 1.8: the parameter tree, float32, GPT-2's initialisation."""
    c = config.validate()
    L, V, E, H, K, D, F = c.n_layers, c.vocab_size, c.d_model, c.n_heads, c.kv_heads, c.head_dim, c.d_ff
    residual = 0.02 / math.sqrt(2 * L)  # wo and w_down add into the residual stream, L times each
    keys = iter(jax.random.split(key, 8))

    def normal(shape, std=0.02):
        return std * jax.random.normal(next(keys), shape, jnp.float32)

    def ones(shape):
        return jnp.ones(shape, jnp.float32)

    blocks = {
        "attn_norm": ones((L, E)),
        "wq": normal((L, E, H, D)),
        "wk": normal((L, E, K, D)),
        "wv": normal((L, E, K, D)),
        "wo": normal((L, H, D, E), residual),
        "mlp_norm": ones((L, E)),
        "w_up": normal((L, E, F)),
        "w_down": normal((L, F, E), residual),
    }
    return {"embed": normal((V, E)), "blocks": blocks, "final_norm": ones((E,)),
            "unembed": normal((E, V))}


def _matmul(spec: str, x: jax.Array, w: jax.Array) -> jax.Array:
    """jnp.einsum in x's dtype, its products summed in float32."""
    return jnp.einsum(spec, x, w, preferred_element_type=jnp.float32).astype(x.dtype)


def _rms_norm(x: jax.Array, scale: jax.Array, eps: float = 1e-6) -> jax.Array:
    """x [..., E] scaled to unit root-mean-square over E, in float32; returned in x's dtype."""
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
    return (x32 * scale).astype(x.dtype)


def _rope(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """x [B, S, N, D]: the pair (x[i], x[i + D/2]) turned by positions [B, S] * base^(-2i/D)."""
    D = x.shape[-1]
    freqs = base ** (-jnp.arange(D // 2, dtype=jnp.float32) * 2 / D)  # [D/2]
    angle = positions.astype(jnp.float32)[:, :, None, None] * freqs  # [B, S, 1, D/2]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)  # 2 x [B, S, N, D/2]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def _qkv(x: jax.Array, p: dict, positions: jax.Array, config: ModelConfig):
    """Queries [B, S, H, D] and keys [B, T, K, D], both rotated; values [B, T, K, D] as they are."""
    q = _matmul("BSE,EHD->BSHD", x, p["wq"])
    k = _matmul("BTE,EKD->BTKD", x, p["wk"])
    v = _matmul("BTE,EKD->BTKD", x, p["wv"])
    return _rope(q, positions, config.rope_base), _rope(k, positions, config.rope_base), v


def _expand_kv(x: jax.Array, H: int) -> jax.Array:
    """[B, T, K, D] -> [B, T, H, D]: query head h reads key/value head h // G (G = H / K)."""
    return jnp.repeat(x, H // x.shape[2], axis=2)  # heads k, k, ..., (G times), k + 1, ...


def _mask(S: int, segment_ids: jax.Array | None) -> jax.Array:
    """[B or 1, S, T] bool: query s may read key t <= s of its own segment."""
    allowed = jnp.tril(jnp.ones((S, S), bool))[None]
    if segment_ids is not None:
        allowed = allowed & (segment_ids[:, :, None] == segment_ids[:, None, :])
    return allowed


def _scores(q: jax.Array, k: jax.Array) -> jax.Array:
    """q [B, S, H, D], k [B, T, H, D] -> float32 [B, H, S, T]: q . k / sqrt(D)."""
    scores = jnp.einsum("BSHD,BTHD->BHST", q, k, preferred_element_type=jnp.float32)
    return scores / math.sqrt(q.shape[-1])


def _softmax(scores: jax.Array) -> jax.Array:
    """Weights [B, H, S, T] that sum to 1 over the keys T."""
    return jax.nn.softmax(scores, axis=-1)


def _attention(x: jax.Array, p: dict, positions: jax.Array, segment_ids: jax.Array | None,
               config: ModelConfig) -> jax.Array:
    """Causal grouped-query self-attention of one layer: x [B, S, E] -> [B, S, E]."""
    q, k, v = _qkv(x, p, positions, config)
    H = q.shape[2]
    k, v = _expand_kv(k, H), _expand_kv(v, H)  # [B, T, H, D]
    allowed = _mask(x.shape[1], segment_ids)[:, None]  # [B or 1, 1, S, T]
    scores = jnp.where(allowed, _scores(q, k), -jnp.inf)  # every query reads itself: no empty row
    weights = _softmax(scores).astype(v.dtype)  # [B, H, S, T]
    out = _matmul("BHST,BTHD->BSHD", weights, v)  # [B, S, H, D]
    return _matmul("BSHD,HDE->BSE", out, p["wo"])


def _mlp(x: jax.Array, p: dict) -> jax.Array:
    """gelu(x w_up) w_down, position-wise: [B, S, E] -> [B, S, E]."""
    h = _matmul("BSE,EF->BSF", x, p["w_up"])
    h = jax.nn.gelu(h.astype(jnp.float32), approximate=True).astype(x.dtype)
    return _matmul("BSF,FE->BSE", h, p["w_down"])


def forward(params: dict, tokens: jax.Array, config: ModelConfig, *,
            positions: jax.Array | None = None,
            segment_ids: jax.Array | None = None) -> jax.Array:
    """Exercise 1.9: float32 logits [B, S, V] of tokens [B, S]."""
    B, S = tokens.shape
    if positions is None:
        positions = jnp.broadcast_to(jnp.arange(S), (B, S))
    dtype = jnp.dtype(config.dtype)
    params = jax.tree.map(lambda w: w.astype(dtype), params)  # compute in config.dtype
    x = params["embed"][tokens]  # [B, S, E]

    def layer(x, p):  # p: one layer's slice of the stacked block weights
        x = x + _attention(_rms_norm(x, p["attn_norm"]), p, positions, segment_ids, config)
        return x + _mlp(_rms_norm(x, p["mlp_norm"]), p), None

    x, _ = jax.lax.scan(layer, x, params["blocks"])  # over the leading L axis
    x = _rms_norm(x, params["final_norm"])
    return jnp.einsum("BSE,EV->BSV", x, params["unembed"], preferred_element_type=jnp.float32)


def loss_sums(params: dict, batch: dict, config: ModelConfig) -> tuple[jax.Array, jax.Array]:
    """Exercise 1.10: (sum of weight * cross-entropy, sum of weights) over a batch."""
    logits = forward(params, batch["inputs"], config, positions=batch.get("positions"),
                     segment_ids=batch.get("segment_ids"))  # [B, S, V] float32
    logprobs = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logprobs, batch["targets"][..., None], axis=-1)[..., 0]  # [B, S]
    weights = batch.get("weights")
    if weights is None:
        weights = jnp.ones(nll.shape, jnp.float32)
    return (nll * weights).sum(), weights.sum()
