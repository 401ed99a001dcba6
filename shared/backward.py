"""What the backward pass keeps and recomputes (lesson 06).

Autodiff of shared.model is correct but not always fast: it decides which
intermediates to keep, and in which layout. Two tools change that, each switched on by
the model config (the presets switch them on; ModelConfig's defaults leave the plain
lesson-01 model):

    remat        jax.checkpoint around each layer: keep less, recompute more
                 (ModelConfig.remat: none, full, matmuls)
    hand-written backward passes, as jax.custom_vjp:
      mlp        the MLP keeping two [B, S, F] arrays and transposing the small [B, S, E]
                 operands of its weight gradients (ModelConfig.mlp = "manual")
      dense      attention keeping only its softmax weights, every matmul head-major
                 (ModelConfig.attention = "dense", registered in shared.attention)

Each is checked against autodiff of the plain formula in the tests; lesson 06 measures
what each buys.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp

from shared.attention import MASKED, mask
from shared.model import matmul
from shared.sharding import hint

REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    # Weight matmuls have no batch dimension in dot_general's sense (B and S are free
    # dimensions); attention's QK^T and AV do (B and heads), so they are recomputed too.
    "matmuls": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def remat(layer: Callable, policy: str) -> Callable:
    """layer, or layer under jax.checkpoint with the named policy ("none": unchanged)."""
    return layer if policy == "none" else jax.checkpoint(layer, policy=REMAT_POLICIES[policy])


# --- the MLP -----------------------------------------------------------------------------------

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
    pre = hint(matmul("BSE,EF->BSF", x, w_up), "batch", "sequence", "mlp")
    h, slope = gelu_and_slope(pre.astype(jnp.float32))
    h, slope = h.astype(x.dtype), slope.astype(x.dtype)  # the two [B, S, F] the backward keeps
    return matmul("BSF,FE->BSE", h, w_down), (x, h, slope, w_up, w_down)


def _mlp_backward(saved, dy):
    x, h, slope, w_up, w_down = saved
    dpre = hint(matmul("BSE,FE->BSF", dy, w_down) * slope, "batch", "sequence", "mlp")
    # A weight gradient sums over all B * S tokens, so one operand must be transposed:
    # x and dy ([B, S, E]) are 4x smaller than dpre and h ([B, S, F]). The barrier keeps
    # XLA from folding the final [E, F] -> [F, E] transpose into the matmul, which would
    # move the transpose onto h (and, in bfloat16 on a CPU, has no kernel).
    d_up = matmul("EBS,BSF->EF", jnp.einsum("BSE->EBS", x), dpre)
    d_down = jax.lax.optimization_barrier(matmul("EBS,BSF->EF", jnp.einsum("BSE->EBS", dy), h)).T
    return matmul("BSF,EF->BSE", dpre, w_up), d_up, d_down


mlp.defvjp(_mlp_forward, _mlp_backward)


# --- attention "dense": the reference's [S, T] scores, with a hand-written backward -----------

def _dense_forward(q, k, v, segment_ids, q_positions, k_positions, causal, scale):
    """Output [B, S, H, D] and what the backward pass keeps: head-major q, k, v, the softmax
    weights p [B, K, G, S, T] and the output [B, K, G, S, D], all in q's dtype. In bfloat16
    that halves the largest saved stack, p's; the forward's p @ v already read p rounded."""
    B, S, H, D = q.shape
    T, K = k.shape[1], k.shape[2]
    qh = jnp.einsum("BSKGD->BKGSD", q.reshape(B, S, K, H // K, D))  # [B, K, G, S, D]
    kh, vh = jnp.einsum("BTKD->BKTD", k), jnp.einsum("BTKD->BKTD", v)  # [B, K, T, D]
    s = jnp.einsum("BKGSD,BKTD->BKGST", qh, kh, preferred_element_type=jnp.float32) * scale
    allowed = mask(S, T, causal=causal, segment_ids=segment_ids, q_positions=q_positions,
                   k_positions=k_positions)[:, None, None]  # [B or 1, 1, 1, S, T]
    s = jnp.where(allowed, s, MASKED)  # every row keeps its own position, so its max is finite
    p = jnp.exp(s - s.max(axis=-1, keepdims=True))
    p = p / p.sum(axis=-1, keepdims=True)  # masked weights are exp(MASKED - max) = 0 exactly
    oh = jnp.einsum("BKGST,BKTD->BKGSD", p.astype(v.dtype), vh, preferred_element_type=jnp.float32)
    out = jnp.einsum("BKGSD->BSKGD", oh).reshape(B, S, H, D).astype(q.dtype)
    return out, (qh, kh, vh, p.astype(q.dtype), oh.astype(q.dtype))


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _dense(q, k, v, segment_ids, q_positions, k_positions, causal, scale):
    return _dense_forward(q, k, v, segment_ids, q_positions, k_positions, causal, scale)[0]


def _dense_bwd(causal, scale, saved, d_out):
    """The blockwise backward's formulas (shared.attention.blockwise_backward) on the whole
    [S, T] at once."""
    qh, kh, vh, p, oh = saved
    B, K, G, S, D = qh.shape
    doh = jnp.einsum("BSKGD->BKGSD", d_out.reshape(B, S, K, G, D))  # [B, K, G, S, D]
    dv = jnp.einsum("BKGST,BKGSD->BKTD", p.astype(doh.dtype), doh, preferred_element_type=jnp.float32)
    dp = jnp.einsum("BKGSD,BKTD->BKGST", doh, vh, preferred_element_type=jnp.float32)
    f32 = lambda a: a.astype(jnp.float32)
    delta = jnp.sum(f32(doh) * f32(oh), axis=-1, keepdims=True)  # [B, K, G, S, 1]
    ds = (f32(p) * (dp - delta) * scale).astype(qh.dtype)  # d(loss)/d(q.k); 0 where masked
    dq = jnp.einsum("BKGST,BKTD->BKGSD", ds, kh, preferred_element_type=jnp.float32)
    dk = jnp.einsum("BKGST,BKGSD->BKTD", ds, qh, preferred_element_type=jnp.float32)
    # Back to the callers' layouts only now: every matmul above stays head-major.
    dq = jnp.einsum("BKGSD->BSKGD", dq).reshape(B, S, K * G, D)
    dk, dv = jnp.einsum("BKTD->BTKD", dk), jnp.einsum("BKTD->BTKD", dv)
    return dq.astype(qh.dtype), dk.astype(kh.dtype), dv.astype(vh.dtype), None, None, None


_dense.defvjp(_dense_forward, _dense_bwd)


def dense(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = True,
          segment_ids: jax.Array | None = None, q_positions: jax.Array | None = None,
          k_positions: jax.Array | None = None, scale: float | None = None) -> jax.Array:
    """The reference's arithmetic in a head-major layout, with a hand-written backward.

    The same [S, T] scores as the reference, so memory is quadratic in S; but autodiff of
    the reference keeps several [S, T] intermediates and transposes them between the
    [B, S, H, D] and [B, H, S, T] layouts, while this keeps only the softmax weights and
    runs every matmul in the head-major layout (lesson 06 measures the step with each).
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return _dense(q, k, v, segment_ids, q_positions, k_positions, causal, scale)
