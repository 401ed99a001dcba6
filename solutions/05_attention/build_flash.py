"""Exercise 5.7, answered: flash attention, forward and backward, block by block.

A drop-in for shared.attention's implementations (no explicit positions). The forward pass
runs FlashAttention-2's schedule: query blocks on the outside (lax.map), key blocks inside
(fori_loop) with the online softmax; it saves the output and the log-sum-exp of each query's
scores. The backward pass (jax.custom_vjp) rebuilds every block's weights from that
log-sum-exp, so no [S, T] array exists in either pass. Each step is a small helper
(_split_heads, _causal, _same_segment, _online_update, _delta, ...) so that it reads on its
own; tests/wrong/ replaces one of them at a time with a classic mistake.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

BLOCK_Q, BLOCK_K = 64, 64  # default tiles: [64, 64] scores per step

# Masked scores are set to this, not -inf: a block in which all of a query's keys are masked
# then gives exp(MASKED - MASKED) = 1 rather than NaN, and the first allowed key wipes it out
# with the rescale exp(MASKED - m_new) = 0.
MASKED = -1e30


def _block_size(n: int, block: int, what: str) -> int:
    """min(block, n), which must divide n: the blocks tile the sequence exactly."""
    size = min(block, n)
    if n % size:
        raise ValueError(f"flash_attention: the {what} length {n} is not a multiple of the block "
                         f"size {size}; pass block sizes that divide it")
    return size


def _scale(D: int, scale: float | None) -> float:
    return D ** -0.5 if scale is None else scale


def _split_heads(x: jax.Array, K: int) -> jax.Array:
    """[B, S, H, D] -> [B, S, K, G, D]: query head h = k G + g reads key/value head k = h // G."""
    B, S, H, D = x.shape
    return x.reshape(B, S, K, H // K, D)


def _merge_heads(x: jax.Array) -> jax.Array:
    """[B, S, K, G, D] -> [B, S, H, D], the inverse of _split_heads."""
    B, S, K, G, D = x.shape
    return x.reshape(B, S, K * G, D)


def _causal(q_pos: jax.Array, k_pos: jax.Array) -> jax.Array:
    """[bq], [bk] positions -> [bq, bk] bool: query s may read key t <= s."""
    return k_pos[None, :] <= q_pos[:, None]


def _same_segment(q_seg: jax.Array, k_seg: jax.Array) -> jax.Array:
    """[B, bq], [B, bk] segment ids -> [B, bq, bk] bool: same document."""
    return q_seg[:, :, None] == k_seg[:, None, :]


def _block_scores(q_blk, k_blk, q_start, k_start, *, offset, causal, segment_ids, scale):
    """q_blk [B, bq, K, G, D] against k_blk [B, bk, K, D], the blocks starting at query index
    q_start and key index k_start: scaled scores [B, K, G, bq, bk] in float32, masked ones
    MASKED. The queries are the last S of the T positions: query index s sits at offset + s."""
    bq, bk = q_blk.shape[1], k_blk.shape[1]
    s = jnp.einsum("BSKGD,BTKD->BKGST", q_blk, k_blk, preferred_element_type=jnp.float32) * scale
    allowed = jnp.ones((1, bq, bk), bool)
    if causal:
        allowed &= _causal(offset + q_start + jnp.arange(bq), k_start + jnp.arange(bk))[None]
    if segment_ids is not None:
        q_seg = jax.lax.dynamic_slice_in_dim(segment_ids, offset + q_start, bq, axis=1)
        k_seg = jax.lax.dynamic_slice_in_dim(segment_ids, k_start, bk, axis=1)
        allowed &= _same_segment(q_seg, k_seg)
    return jnp.where(allowed[:, None, None], s, MASKED)


def _online_update(carry, s, v_blk):
    """One key block into the running max m, sum l [B, K, G, bq] and weighted sum acc
    [B, K, G, bq, D]: s [B, K, G, bq, bk] scores, v_blk [B, bk, K, D]."""
    acc, m, l = carry
    m_new = jnp.maximum(m, s.max(axis=-1))
    p = jnp.exp(s - m_new[..., None])
    rescale = jnp.exp(m - m_new)  # < 1 where this block raised the max
    pv = jnp.einsum("BKGST,BTKD->BKGSD", p.astype(v_blk.dtype), v_blk,
                    preferred_element_type=jnp.float32)
    return rescale[..., None] * acc + pv, m_new, rescale * l + p.sum(axis=-1)


def _tiles(q, k, segment_ids, causal, scale, block_q, block_k):
    """Block sizes (bq, bk), their counts (nq, nk), and the block-scores function that the
    forward and the backward pass share."""
    S, T = q.shape[1], k.shape[1]
    bq, bk = _block_size(S, block_q, "query"), _block_size(T, block_k, "key")
    scores = functools.partial(_block_scores, offset=T - S, causal=causal,
                               segment_ids=segment_ids, scale=scale)
    return bq, bk, S // bq, T // bk, scores


def _forward(q, k, v, segment_ids, causal, scale, block_q, block_k):
    """Output [B, S, H, D] in q's dtype and the log-sum-exp of the scores [B, K, G, S]."""
    B, S, H, D = q.shape
    K = k.shape[2]
    bq, bk, nq, nk, scores = _tiles(q, k, segment_ids, causal, scale, block_q, block_k)
    qg = _split_heads(q, K)

    def query_block(i):
        q_blk = jax.lax.dynamic_slice_in_dim(qg, i * bq, bq, axis=1)  # [B, bq, K, G, D]

        def step(j, carry):
            k_blk = jax.lax.dynamic_slice_in_dim(k, j * bk, bk, axis=1)  # [B, bk, K, D]
            v_blk = jax.lax.dynamic_slice_in_dim(v, j * bk, bk, axis=1)
            return _online_update(carry, scores(q_blk, k_blk, i * bq, j * bk), v_blk)

        shape = (B, K, H // K, bq)
        init = (jnp.zeros((*shape, D), jnp.float32), jnp.full(shape, -jnp.inf, jnp.float32),
                jnp.zeros(shape, jnp.float32))
        acc, m, l = jax.lax.fori_loop(0, nk, step, init)
        return acc / l[..., None], m + jnp.log(l)

    out, lse = jax.lax.map(query_block, jnp.arange(nq))  # [nq, B, K, G, bq, D], [nq, B, K, G, bq]
    out = jnp.moveaxis(out, 0, 3).reshape(B, K, H // K, S, D)  # [B, K, G, S, D]
    out = _merge_heads(jnp.moveaxis(out, 3, 1)).astype(q.dtype)  # [B, S, H, D]
    lse = jnp.moveaxis(lse, 0, 3).reshape(B, K, H // K, S)
    return out, lse


def _delta(out: jax.Array, d_out: jax.Array) -> jax.Array:
    """rowsum(dO * O): [B, S, K, G, D] twice -> [B, K, G, S] float32, the softmax backward's
    sum over the keys of p * dp, for every query at once."""
    return jnp.einsum("BSKGD,BSKGD->BKGS", d_out.astype(jnp.float32), out.astype(jnp.float32))


def _backward(q, k, v, segment_ids, out, lse, d_out, causal, scale, block_q, block_k):
    """(dq, dk, dv) from the saved output and log-sum-exp, each block's weights rebuilt as
    p = exp(s - lse). A scan over key blocks carries dq; inside, a loop over the query blocks
    adds up that key block's dk and dv."""
    B, S, H, D = q.shape
    T, K = k.shape[1:3]
    bq, bk, nq, nk, scores = _tiles(q, k, segment_ids, causal, scale, block_q, block_k)
    qg, dog = _split_heads(q, K), _split_heads(d_out, K)  # [B, S, K, G, D]
    delta = _delta(_split_heads(out, K), dog)  # [B, K, G, S]

    def key_block(dq, j):
        k_blk = jax.lax.dynamic_slice_in_dim(k, j * bk, bk, axis=1)  # [B, bk, K, D]
        v_blk = jax.lax.dynamic_slice_in_dim(v, j * bk, bk, axis=1)

        def step(i, carry):
            dq, dk, dv = carry  # [B, S, K, G, D], [B, bk, K, D], [B, bk, K, D]
            q_blk = jax.lax.dynamic_slice_in_dim(qg, i * bq, bq, axis=1)  # [B, bq, K, G, D]
            do_blk = jax.lax.dynamic_slice_in_dim(dog, i * bq, bq, axis=1)
            lse_blk = jax.lax.dynamic_slice_in_dim(lse, i * bq, bq, axis=-1)  # [B, K, G, bq]
            delta_blk = jax.lax.dynamic_slice_in_dim(delta, i * bq, bq, axis=-1)
            p = jnp.exp(scores(q_blk, k_blk, i * bq, j * bk) - lse_blk[..., None])  # masked: 0
            dv += jnp.einsum("BKGST,BSKGD->BTKD", p.astype(do_blk.dtype), do_blk,
                             preferred_element_type=jnp.float32)
            dp = jnp.einsum("BSKGD,BTKD->BKGST", do_blk, v_blk, preferred_element_type=jnp.float32)
            ds = (p * (dp - delta_blk[..., None]) * scale).astype(q.dtype)  # d(loss) / d(q . k)
            dk += jnp.einsum("BKGST,BSKGD->BTKD", ds, q_blk, preferred_element_type=jnp.float32)
            dq_blk = jnp.einsum("BKGST,BTKD->BSKGD", ds, k_blk, preferred_element_type=jnp.float32)
            dq_old = jax.lax.dynamic_slice_in_dim(dq, i * bq, bq, axis=1)
            return jax.lax.dynamic_update_slice_in_dim(dq, dq_old + dq_blk, i * bq, axis=1), dk, dv

        zeros = jnp.zeros((B, bk, K, D), jnp.float32)
        dq, dk, dv = jax.lax.fori_loop(0, nq, step, (dq, zeros, zeros))
        return dq, (dk, dv)

    dq, (dk, dv) = jax.lax.scan(key_block, jnp.zeros((B, S, K, H // K, D), jnp.float32),
                                jnp.arange(nk))
    dk = jnp.moveaxis(dk, 0, 1).reshape(B, T, K, D)  # [nk, B, bk, K, D] -> [B, T, K, D]
    dv = jnp.moveaxis(dv, 0, 1).reshape(B, T, K, D)
    return _merge_heads(dq).astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6, 7))
def _flash(q, k, v, segment_ids, causal, scale, block_q, block_k):
    return _forward(q, k, v, segment_ids, causal, scale, block_q, block_k)[0]


def _flash_fwd(q, k, v, segment_ids, causal, scale, block_q, block_k):
    out, lse = _forward(q, k, v, segment_ids, causal, scale, block_q, block_k)
    return out, (q, k, v, segment_ids, out, lse)  # O(S) per head beyond the inputs: no weights


def _flash_bwd(causal, scale, block_q, block_k, saved, d_out):
    q, k, v, segment_ids, out, lse = saved
    dq, dk, dv = _backward(q, k, v, segment_ids, out, lse, d_out, causal, scale, block_q, block_k)
    return dq, dk, dv, None  # segment ids are integers: no gradient


_flash.defvjp(_flash_fwd, _flash_bwd)


def flash_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = True,
                    segment_ids: jax.Array | None = None, scale: float | None = None,
                    block_q: int = BLOCK_Q, block_k: int = BLOCK_K) -> jax.Array:
    """Exercise 5.7: attention [B, S, H, D] in q's dtype, [bq, bk] scores at a time."""
    H, K = q.shape[2], k.shape[2]
    if H % K:
        raise ValueError(f"flash_attention: {H} query heads are not a multiple of {K} key/value heads")
    return _flash(q, k, v, segment_ids, causal, _scale(q.shape[-1], scale), block_q, block_k)
