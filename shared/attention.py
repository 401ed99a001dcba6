"""Attention: one entry point, several implementations with the same semantics.

q: [B, S, H, D], k and v: [B, T, K, D] with H a multiple of K (grouped-query
attention: query head h reads key/value head h // G, G = H / K). Causal masking
treats the queries as the last S of the T positions; segment_ids [B, T] (the
queries use the last S) keep packed documents from attending to each other.
Every implementation returns [B, S, H, D] in q's dtype, accumulated in float32.
Every query may attend at least to its own position, so no softmax row is empty.

    reference  scores, mask, softmax, weighted sum: the readable oracle; [S, T] memory
    dense      the same [S, T] scores, head-major, with a hand-written backward: the model's default
    blockwise  online softmax over blocks in plain JAX, forward and backward; memory linear in S
    pallas     a flash-attention kernel (shared.flash_pallas) with the blockwise backward
    xla        jax.nn.dot_product_attention, the library baseline (its XLA path)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from shared import flash_pallas

# Masked scores are set to this rather than -inf: a block where all of a query's keys
# are masked then gives weights exp(MASKED - MASKED) = 1, not exp(-inf + inf) = NaN, and
# the first allowed key wipes them with the rescale exp(MASKED - m_new) = 0.
MASKED = -1e30


def mask(S: int, T: int, *, causal: bool, segment_ids: jax.Array | None) -> jax.Array:
    """Boolean [B or 1, S, T]: True where query s may attend to key t.

    Causal masking assumes the queries are the last S of the T positions.
    """
    allowed = jnp.ones((1, S, T), bool)
    if causal:
        allowed &= (jnp.arange(S)[:, None] + (T - S)) >= jnp.arange(T)[None, :]
    if segment_ids is not None:
        allowed &= segment_ids[:, -S:, None] == segment_ids[:, None, :]
    return allowed


def reference(q, k, v, *, causal=True, segment_ids=None, scale=None):
    """Scores, mask, softmax, weighted sum: the readable oracle. Materialises [B, K, G, S, T]."""
    B, S, H, D = q.shape
    T, K = k.shape[1], k.shape[2]
    G = H // K
    scale = D ** -0.5 if scale is None else scale
    qg = q.reshape(B, S, K, G, D)  # [B, S, K, G, D]: query heads grouped by the K head they read
    scores = jnp.einsum("BSKGD,BTKD->BKGST", qg, k, preferred_element_type=jnp.float32) * scale
    allowed = mask(S, T, causal=causal, segment_ids=segment_ids)[:, None, None]  # [B, 1, 1, S, T]
    scores = jnp.where(allowed, scores, -jnp.inf)
    weights = jax.nn.softmax(scores, axis=-1)
    weights = jnp.where(allowed, weights, 0.0)  # rows with no allowed key give 0, not NaN
    out = jnp.einsum("BKGST,BTKD->BSKGD", weights.astype(v.dtype), v,
                     preferred_element_type=jnp.float32)
    return out.reshape(B, S, H, D).astype(q.dtype)  # [B, S, H, D]


# --- dense: the reference's [S, T] scores, with a hand-written backward ----------------------

def _dense_forward(q, k, v, segment_ids, causal, scale):
    """Output [B, S, H, D] and what the backward pass keeps: head-major q, k, v, the softmax
    weights p [B, K, G, S, T] and the float32 output [B, K, G, S, D]."""
    B, S, H, D = q.shape
    T, K = k.shape[1], k.shape[2]
    qh = jnp.einsum("BSKGD->BKGSD", q.reshape(B, S, K, H // K, D))  # [B, K, G, S, D]
    kh, vh = jnp.einsum("BTKD->BKTD", k), jnp.einsum("BTKD->BKTD", v)  # [B, K, T, D]
    s = jnp.einsum("BKGSD,BKTD->BKGST", qh, kh, preferred_element_type=jnp.float32) * scale
    allowed = mask(S, T, causal=causal, segment_ids=segment_ids)[:, None, None]  # [B or 1, 1, 1, S, T]
    s = jnp.where(allowed, s, MASKED)  # every row keeps its own position, so its max is finite
    p = jnp.exp(s - s.max(axis=-1, keepdims=True))
    p = p / p.sum(axis=-1, keepdims=True)  # masked weights are exp(MASKED - max) = 0 exactly
    oh = jnp.einsum("BKGST,BKTD->BKGSD", p.astype(v.dtype), vh, preferred_element_type=jnp.float32)
    out = jnp.einsum("BKGSD->BSKGD", oh).reshape(B, S, H, D).astype(q.dtype)
    return out, (qh, kh, vh, p, oh)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _dense(q, k, v, segment_ids, causal, scale):
    return _dense_forward(q, k, v, segment_ids, causal, scale)[0]


def _dense_bwd(causal, scale, saved, d_out):
    """The blockwise backward's formulas on the whole [S, T] at once (see _blockwise_backward)."""
    qh, kh, vh, p, oh = saved
    B, K, G, S, D = qh.shape
    doh = jnp.einsum("BSKGD->BKGSD", d_out.reshape(B, S, K, G, D))  # [B, K, G, S, D]
    dv = jnp.einsum("BKGST,BKGSD->BKTD", p.astype(doh.dtype), doh, preferred_element_type=jnp.float32)
    dp = jnp.einsum("BKGSD,BKTD->BKGST", doh, vh, preferred_element_type=jnp.float32)
    delta = jnp.sum(doh.astype(jnp.float32) * oh, axis=-1, keepdims=True)  # [B, K, G, S, 1]
    ds = (p * (dp - delta) * scale).astype(qh.dtype)  # d(loss)/d(q.k); 0 where masked
    dq = jnp.einsum("BKGST,BKTD->BKGSD", ds, kh, preferred_element_type=jnp.float32)
    dk = jnp.einsum("BKGST,BKGSD->BKTD", ds, qh, preferred_element_type=jnp.float32)
    # Back to the callers' layouts only now: every matmul above stays head-major.
    dq = jnp.einsum("BKGSD->BSKGD", dq).reshape(B, S, K * G, D)
    dk, dv = jnp.einsum("BKTD->BTKD", dk), jnp.einsum("BKTD->BTKD", dv)
    return dq.astype(qh.dtype), dk.astype(kh.dtype), dv.astype(vh.dtype), None


_dense.defvjp(_dense_forward, _dense_bwd)


def dense(q, k, v, *, causal=True, segment_ids=None, scale=None):
    """The reference's arithmetic in a head-major layout, with a hand-written backward.

    The same [S, T] scores as the reference, so memory is quadratic in S; but autodiff of
    the reference keeps several [S, T] intermediates and transposes them between the
    [B, S, H, D] and [B, H, S, T] layouts, while this keeps only the softmax weights and
    runs every matmul in the head-major layout. That made the training step 1.2x faster
    than with the reference at the `small` preset on a CPU, and 1.3x at `125m` on an H100
    (lesson 06).
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return _dense(q, k, v, segment_ids, causal, scale)


# --- blockwise: the flash-attention schedule in plain JAX ------------------------------------

BLOCK_Q, BLOCK_K = 256, 256  # blockwise defaults: the fastest of 128, 256, 512 at S = 2048 on a 2-core CPU


def _block_size(n: int, preferred: int, what: str) -> int:
    """min(preferred, n), which must divide n: blocks tile the sequence exactly."""
    block = min(preferred, n)
    if n % block:
        raise ValueError(f"{what} length {n} is not a multiple of the block size {block}; "
                         f"use a length that is, or pass a block size that divides it")
    return block


def _block_scores(q_blk, k_blk, i, j, *, bq, bk, offset, causal, segment_ids, scale):
    """Scaled, masked scores of query block i against key block j.

    q_blk: [B, bq, K, G, D], k_blk: [B, bk, K, D]. Returns scores [B, K, G, bq, bk] in
    float32, masked entries set to MASKED. The mask comes from positions and segment
    ids of this block only.
    """
    s = jnp.einsum("BSKGD,BTKD->BKGST", q_blk, k_blk, preferred_element_type=jnp.float32) * scale
    allowed = None
    if causal:
        q_pos = offset + i * bq + jnp.arange(bq)  # queries are the last S of the T positions
        k_pos = j * bk + jnp.arange(bk)
        allowed = (q_pos[:, None] >= k_pos[None, :])[None]  # [1, bq, bk]
    if segment_ids is not None:
        q_seg = jax.lax.dynamic_slice_in_dim(segment_ids, offset + i * bq, bq, axis=1)  # [B, bq]
        k_seg = jax.lax.dynamic_slice_in_dim(segment_ids, j * bk, bk, axis=1)  # [B, bk]
        same = q_seg[:, :, None] == k_seg[:, None, :]  # [B, bq, bk]
        allowed = same if allowed is None else allowed & same
    if allowed is None:
        return s
    return jnp.where(allowed[:, None, None], s, MASKED)  # mask: [B or 1, 1, 1, bq, bk]


def _key_blocks_for(i, *, bq, bk, offset, nk, causal):
    """How many key blocks query block i reads: all of them, or up to its last query if causal."""
    if not causal:
        return nk
    return jnp.minimum(nk, (offset + (i + 1) * bq + bk - 1) // bk)


def _first_query_block_for(j, *, bq, bk, offset, causal):
    """The first query block that reads key block j (0 unless causal)."""
    return jnp.maximum(0, (j * bk - offset) // bq) if causal else 0


def _tiling(q, k, segment_ids, causal, scale, block_q, block_k):
    """Sizes, blocks (bq, bk), block counts, the causal offset T - S, and the block-scores
    function that the forward and the backward pass share."""
    B, S, H, D = q.shape
    T, K = k.shape[1], k.shape[2]
    bq, bk = _block_size(S, block_q, "query"), _block_size(T, block_k, "key")
    offset = T - S
    scores = functools.partial(_block_scores, bq=bq, bk=bk, offset=offset, causal=causal,
                               segment_ids=segment_ids, scale=scale)
    return B, S, T, H, K, H // K, D, bq, bk, S // bq, T // bk, offset, scores


def _blockwise_forward(q, k, v, segment_ids, causal, scale, block_q, block_k):
    """Output [B, S, H, D] and log-sum-exp of the scores [B, K, G, S] (float32).

    For each query block (lax.map), loop over the key blocks it needs (fori_loop) with
    a running max m, running sum l and running weighted sum acc: when a new block
    raises the max, the old l and acc are rescaled by exp(m_old - m_new).
    """
    B, S, T, H, K, G, D, bq, bk, nq, nk, offset, scores = _tiling(
        q, k, segment_ids, causal, scale, block_q, block_k)
    q_blocks = jnp.moveaxis(q.reshape(B, nq, bq, K, G, D), 1, 0)  # [nq, B, bq, K, G, D]

    def one_query_block(args):
        q_blk, i = args

        def step(j, carry):
            acc, m, l = carry  # [B, bq, K, G, D], [B, K, G, bq], [B, K, G, bq]
            k_blk = jax.lax.dynamic_slice_in_dim(k, j * bk, bk, axis=1)  # [B, bk, K, D]
            v_blk = jax.lax.dynamic_slice_in_dim(v, j * bk, bk, axis=1)
            s = scores(q_blk, k_blk, i, j)  # [B, K, G, bq, bk]
            m_new = jnp.maximum(m, s.max(axis=-1))
            p = jnp.exp(s - m_new[..., None])
            rescale = jnp.exp(m - m_new)  # < 1 when this block raised the max
            l = rescale * l + p.sum(axis=-1)
            pv = jnp.einsum("BKGST,BTKD->BSKGD", p.astype(v.dtype), v_blk,
                            preferred_element_type=jnp.float32)
            acc = jnp.moveaxis(rescale, -1, 1)[..., None] * acc + pv
            return acc, m_new, l

        init = (jnp.zeros((B, bq, K, G, D), jnp.float32),
                jnp.full((B, K, G, bq), -jnp.inf, jnp.float32),
                jnp.zeros((B, K, G, bq), jnp.float32))
        hi = _key_blocks_for(i, bq=bq, bk=bk, offset=offset, nk=nk, causal=causal)
        acc, m, l = jax.lax.fori_loop(0, hi, step, init)
        out = acc / jnp.moveaxis(l, -1, 1)[..., None]
        return out.astype(q.dtype), m + jnp.log(l)

    out, lse = jax.lax.map(one_query_block, (q_blocks, jnp.arange(nq)))
    out = jnp.moveaxis(out, 0, 1).reshape(B, S, H, D)  # [nq, B, bq, K, G, D] -> [B, S, H, D]
    lse = jnp.moveaxis(lse, 0, -2).reshape(B, K, G, S)  # [nq, B, K, G, bq] -> [B, K, G, S]
    return out, lse


def _blockwise_backward(q, k, v, segment_ids, out, lse, d_out, causal, scale, block_q, block_k):
    """Gradients (dq, dk, dv) from the saved output and log-sum-exp, recomputing each block.

    Softmax weights are rebuilt block by block as p = exp(s - lse), so nothing [S, T]
    is ever stored. With delta = rowsum(d_out * out):
      dv += p^T d_out,  dp = d_out v^T,  ds = p (dp - delta),  dq += scale ds k,  dk += scale ds^T q.
    A scan over key blocks carries dq; an inner loop over the query blocks that read
    key block j accumulates dk_j and dv_j.
    """
    B, S, T, H, K, G, D, bq, bk, nq, nk, offset, scores = _tiling(
        q, k, segment_ids, causal, scale, block_q, block_k)
    q5 = q.reshape(B, S, K, G, D)  # [B, S, K, G, D]
    do5 = d_out.reshape(B, S, K, G, D)  # [B, S, K, G, D]
    delta = jnp.einsum("BSKGD,BSKGD->BKGS", do5.astype(jnp.float32),
                       out.reshape(B, S, K, G, D).astype(jnp.float32))  # [B, K, G, S]

    def one_key_block(dq, j):
        k_blk = jax.lax.dynamic_slice_in_dim(k, j * bk, bk, axis=1)  # [B, bk, K, D]
        v_blk = jax.lax.dynamic_slice_in_dim(v, j * bk, bk, axis=1)

        def step(i, carry):
            dq, dk, dv = carry  # [B, S, K, G, D], [B, bk, K, D], [B, bk, K, D]
            q_blk = jax.lax.dynamic_slice_in_dim(q5, i * bq, bq, axis=1)  # [B, bq, K, G, D]
            do_blk = jax.lax.dynamic_slice_in_dim(do5, i * bq, bq, axis=1)
            lse_blk = jax.lax.dynamic_slice_in_dim(lse, i * bq, bq, axis=-1)  # [B, K, G, bq]
            delta_blk = jax.lax.dynamic_slice_in_dim(delta, i * bq, bq, axis=-1)
            s = scores(q_blk, k_blk, i, j)  # [B, K, G, bq, bk]
            p = jnp.exp(s - lse_blk[..., None])  # masked: exp(MASKED - lse) = 0
            dv += jnp.einsum("BKGST,BSKGD->BTKD", p.astype(do_blk.dtype), do_blk,
                             preferred_element_type=jnp.float32)
            dp = jnp.einsum("BSKGD,BTKD->BKGST", do_blk, v_blk, preferred_element_type=jnp.float32)
            ds = (p * (dp - delta_blk[..., None]) * scale).astype(q.dtype)  # d(loss)/d(q.k)
            dk += jnp.einsum("BKGST,BSKGD->BTKD", ds, q_blk, preferred_element_type=jnp.float32)
            dq_blk = jnp.einsum("BKGST,BTKD->BSKGD", ds, k_blk, preferred_element_type=jnp.float32)
            dq = jax.lax.dynamic_update_slice_in_dim(
                dq, jax.lax.dynamic_slice_in_dim(dq, i * bq, bq, axis=1) + dq_blk, i * bq, axis=1)
            return dq, dk, dv

        zeros = jnp.zeros((B, bk, K, D), jnp.float32)
        lo = _first_query_block_for(j, bq=bq, bk=bk, offset=offset, causal=causal)
        dq, dk, dv = jax.lax.fori_loop(lo, nq, step, (dq, zeros, zeros))
        return dq, (dk, dv)

    dq, (dk, dv) = jax.lax.scan(one_key_block, jnp.zeros((B, S, K, G, D), jnp.float32),
                                jnp.arange(nk))
    dk = jnp.moveaxis(dk, 0, 1).reshape(B, T, K, D)  # [nk, B, bk, K, D] -> [B, T, K, D]
    dv = jnp.moveaxis(dv, 0, 1).reshape(B, T, K, D)
    return dq.reshape(B, S, H, D).astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6, 7))
def _blockwise(q, k, v, segment_ids, causal, scale, block_q, block_k):
    return _blockwise_forward(q, k, v, segment_ids, causal, scale, block_q, block_k)[0]


def _blockwise_fwd(q, k, v, segment_ids, causal, scale, block_q, block_k):
    out, lse = _blockwise_forward(q, k, v, segment_ids, causal, scale, block_q, block_k)
    return out, (q, k, v, segment_ids, out, lse)


def _blockwise_bwd(causal, scale, block_q, block_k, residuals, d_out):
    q, k, v, segment_ids, out, lse = residuals
    grads = _blockwise_backward(q, k, v, segment_ids, out, lse, d_out, causal, scale,
                                block_q, block_k)
    return (*grads, None)  # segment ids are integers: no gradient


_blockwise.defvjp(_blockwise_fwd, _blockwise_bwd)


def blockwise(q, k, v, *, causal=True, segment_ids=None, scale=None,
              block_q: int = BLOCK_Q, block_k: int = BLOCK_K):
    """Flash attention's schedule in plain JAX: [bq, bk] scores at a time, never [S, T].

    Block sizes are min(block, length) and must divide S and T. The backward pass
    recomputes the scores block by block from the saved log-sum-exp (custom_vjp).
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return _blockwise(q, k, v, segment_ids, causal, scale, block_q, block_k)


# --- pallas: the flash-attention kernel forward, the blockwise backward ---------------------

@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _pallas(q, k, v, segment_ids, causal, scale):
    return flash_pallas.flash_forward(q, k, v, segment_ids=segment_ids, causal=causal,
                                      scale=scale)[0]


def _pallas_fwd(q, k, v, segment_ids, causal, scale):
    out, lse = flash_pallas.flash_forward(q, k, v, segment_ids=segment_ids, causal=causal,
                                          scale=scale)
    B, H, S = lse.shape
    lse = lse.reshape(B, k.shape[2], H // k.shape[2], S)  # [B, H, S] -> [B, K, G, S]
    return out, (q, k, v, segment_ids, out, lse)


def _pallas_bwd(causal, scale, residuals, d_out):
    q, k, v, segment_ids, out, lse = residuals
    grads = _blockwise_backward(q, k, v, segment_ids, out, lse, d_out, causal, scale,
                                BLOCK_Q, BLOCK_K)
    return (*grads, None)


_pallas.defvjp(_pallas_fwd, _pallas_bwd)


def pallas(q, k, v, *, causal=True, segment_ids=None, scale=None):
    """Flash-attention forward as a Pallas kernel (interpret mode on the CPU); blockwise backward.

    Tiling rules are in shared.flash_pallas.flash_forward; the backward needs S and T
    to be multiples of min(256, S) and min(256, T), as blockwise does.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return _pallas(q, k, v, segment_ids, causal, scale)


# --- xla: the library baseline --------------------------------------------------------------

def xla(q, k, v, *, causal=True, segment_ids=None, scale=None):
    """jax.nn.dot_product_attention with its XLA implementation.

    It has GQA built in. Its is_causal aligns queries with the first S keys, so when
    S != T (or with segment ids) the mask is passed explicitly as a [B, 1, S, T] array,
    which its cuDNN path would not take; this course uses its XLA path throughout.
    """
    S, T = q.shape[1], k.shape[1]
    if causal and S == T and segment_ids is None:
        return jax.nn.dot_product_attention(q, k, v, scale=scale, is_causal=True)
    allowed = None
    if causal or segment_ids is not None:
        allowed = mask(S, T, causal=causal, segment_ids=segment_ids)[:, None]  # [B or 1, 1, S, T]
    return jax.nn.dot_product_attention(q, k, v, scale=scale, mask=allowed)


IMPLEMENTATIONS = {"reference": reference, "dense": dense, "blockwise": blockwise, "pallas": pallas,
                   "xla": xla}


def attention(q, k, v, *, causal: bool = True, segment_ids=None, impl: str = "reference",
              scale: float | None = None) -> jax.Array:
    """Attention output [B, S, H, D] in q's dtype, accumulated in float32."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown attention impl {impl!r}; valid: {', '.join(IMPLEMENTATIONS)}")
    if q.shape[2] % k.shape[2]:
        raise ValueError(f"query heads ({q.shape[2]}) must be a multiple of key/value heads ({k.shape[2]})")
    if causal and q.shape[1] > k.shape[1]:
        raise ValueError(f"causal attention treats the S={q.shape[1]} queries as the last of the "
                         f"T={k.shape[1]} positions, so S must be <= T")
    return IMPLEMENTATIONS[impl](q, k, v, causal=causal, segment_ids=segment_ids, scale=scale)
