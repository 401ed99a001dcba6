"""Wrong build (lesson 10): the right (out, lse) from jnp code, the whole [S, T] scores at once,
with no Pallas kernel."""

import jax
import jax.numpy as jnp

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_kernel", "no pallas_call")


def flash_forward(q, k, v, *, segment_ids=None, causal=True, scale=None, block_q=128, block_k=64,
                  interpret=None):
    B, S, H, D = q.shape
    T, K = k.shape[1:3]
    scale = D ** -0.5 if scale is None else scale
    kh, vh = jnp.repeat(k, H // K, axis=2), jnp.repeat(v, H // K, axis=2)  # [B, T, H, D]
    s = jnp.einsum("BSHD,BTHD->BHST", q, kh, preferred_element_type=jnp.float32) * scale
    allowed = jnp.ones((1, S, T), bool)
    if causal:
        allowed &= (jnp.arange(T)[None, :] <= jnp.arange(T - S, T)[:, None])[None]
    if segment_ids is not None:
        allowed &= segment_ids[:, -S:, None] == segment_ids[:, None, :]
    s = jnp.where(allowed[:, None], s, -jnp.inf)
    out = jnp.einsum("BHST,BTHD->BSHD", jax.nn.softmax(s, axis=-1).astype(v.dtype), vh,
                     preferred_element_type=jnp.float32)
    return out.astype(q.dtype), jax.nn.logsumexp(s, axis=-1)
