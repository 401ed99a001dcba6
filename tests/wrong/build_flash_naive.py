"""Wrong build (lesson 05): the right values, from the whole [S, T] score matrix at once."""

import jax
import jax.numpy as jnp

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_no_scores_forward", "score matrix appears in the forward pass")


def flash_attention(q, k, v, *, causal=True, segment_ids=None, scale=None, block_q=64, block_k=64):
    B, S, H, D = q.shape
    T, K = k.shape[1:3]
    scale = D ** -0.5 if scale is None else scale
    qg = q.reshape(B, S, K, H // K, D)
    s = jnp.einsum("BSKGD,BTKD->BKGST", qg, k, preferred_element_type=jnp.float32) * scale
    allowed = jnp.ones((1, S, T), bool)
    if causal:
        allowed &= (jnp.arange(T)[None, :] <= jnp.arange(T - S, T)[:, None])[None]
    if segment_ids is not None:
        allowed &= segment_ids[:, -S:, None] == segment_ids[:, None, :]
    p = jax.nn.softmax(jnp.where(allowed[:, None, None], s, -jnp.inf), axis=-1)
    out = jnp.einsum("BKGST,BTKD->BSKGD", p.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return out.reshape(B, S, H, D).astype(q.dtype)
