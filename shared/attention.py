"""Attention: one entry point, several implementations with the same semantics (lesson 05).

q: [B, S, H, D], k and v: [B, T, K, D] with H a multiple of K (grouped-query
attention: query head h reads key/value head h // G, G = H / K). Masks come from
positions: with `causal`, query s may read key t when k_positions[t] <= q_positions[s].
By default the queries are the last S of the T positions (q_positions T-S..T-1,
k_positions 0..T-1), which is training's case; a KV cache (lesson 09) passes the
positions it holds instead. segment_ids [B, T] (the queries use the last S) keep packed
documents from attending to each other. Every implementation returns [B, S, H, D] in
q's dtype, accumulated in float32. Every query may attend at least to its own position,
so no softmax row is empty.

    reference  scores, mask, softmax, weighted sum: the readable oracle; [S, T] memory
    blockwise  online softmax over blocks in plain JAX, forward and backward; memory linear in S
    xla        jax.nn.dot_product_attention, the library baseline (its XLA path)
    cudnn      the same through cuDNN's fused kernels, forward and backward; NVIDIA GPUs only
    dense      the reference's scores with a hand-written backward (shared.backward, lesson 06)
    pallas     a flash-attention kernel (shared.flash_pallas, lesson 10); no explicit positions
"""

from __future__ import annotations

import functools
import importlib
from typing import Callable, Protocol

import jax
import jax.numpy as jnp

from shared.config import Error

# Masked scores are set to this rather than -inf: a block where all of a query's keys
# are masked then gives weights exp(MASKED - MASKED) = 1, not exp(-inf + inf) = NaN, and
# the first allowed key wipes them with the rescale exp(MASKED - m_new) = 0.
MASKED = -1e30


def einsum32(spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
    """jnp.einsum(spec, a, b) with its products summed in float32 (the result is float32).

    On a CPU, bfloat16 operands are converted to float32 first (exactly: every bfloat16 is a
    float32). XLA:CPU runs some batched dots outside its bfloat16 kernels, on a fallback
    that cannot give a float32 result from bfloat16 inputs ("UNIMPLEMENTED ... BF16 x BF16 =
    F32"); the decode step's weighted sum over a KV cache at batch >= 2 was one. The
    arithmetic is the same as a GPU's or TPU's bfloat16 matmul with float32 accumulation.
    """
    if jax.default_backend() == "cpu":
        a, b = (x.astype(jnp.float32) if x.dtype != jnp.float32 else x for x in (a, b))
    return jnp.einsum(spec, a, b, preferred_element_type=jnp.float32)


class AttentionError(Error):
    """Attention cannot run as asked (unknown implementation, shapes); one line."""


class Implementation(Protocol):
    def __call__(self, q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = True,
                 segment_ids: jax.Array | None = None, q_positions: jax.Array | None = None,
                 k_positions: jax.Array | None = None,
                 scale: float | None = None) -> jax.Array: ...


def check_segment_ids(segment_ids: jax.Array | None, q_shape: tuple, k_shape: tuple) -> None:
    """segment_ids must be [B, T] for queries [B, S, H, D] and keys [B, T, K, D]; else a
    one-line AttentionError naming the shapes (rather than a broadcasting error deep inside)."""
    if segment_ids is None:
        return
    B, T = k_shape[0], k_shape[1]
    if tuple(segment_ids.shape) != (B, T):
        raise AttentionError(f"segment_ids of shape {tuple(segment_ids.shape)} should be [B, T] = "
                             f"{(B, T)} for queries of shape {tuple(q_shape)} and keys of shape "
                             f"{tuple(k_shape)}")


def mask(S: int, T: int, *, causal: bool, segment_ids: jax.Array | None,
         q_positions: jax.Array | None = None, k_positions: jax.Array | None = None) -> jax.Array:
    """Boolean [B or 1, S, T]: True where query s may attend to key t.

    q_positions [B, S] and k_positions [B, T] default to the queries being the last S
    of the T positions.
    """
    if segment_ids is not None and (segment_ids.ndim != 2 or segment_ids.shape[1] != T):
        raise AttentionError(f"segment_ids of shape {tuple(segment_ids.shape)} should be [B, T] "
                             f"with T = {T} key positions (S = {S} queries)")
    allowed = jnp.ones((1, S, T), bool)
    if causal:
        q_pos = jnp.arange(T - S, T)[None] if q_positions is None else q_positions  # [B or 1, S]
        k_pos = jnp.arange(T)[None] if k_positions is None else k_positions  # [B or 1, T]
        allowed &= k_pos[:, None, :] <= q_pos[:, :, None]
    if segment_ids is not None:
        allowed &= segment_ids[:, -S:, None] == segment_ids[:, None, :]
    return allowed


def reference(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = True,
              segment_ids: jax.Array | None = None, q_positions: jax.Array | None = None,
              k_positions: jax.Array | None = None, scale: float | None = None) -> jax.Array:
    """Scores, mask, softmax, weighted sum: the readable oracle. Materialises [B, K, G, S, T]."""
    B, S, H, D = q.shape
    T, K = k.shape[1], k.shape[2]
    G = H // K
    scale = D ** -0.5 if scale is None else scale
    qg = q.reshape(B, S, K, G, D)  # [B, S, K, G, D]: query heads grouped by the K head they read
    scores = einsum32("BSKGD,BTKD->BKGST", qg, k) * scale
    allowed = mask(S, T, causal=causal, segment_ids=segment_ids, q_positions=q_positions,
                   k_positions=k_positions)[:, None, None]  # [B or 1, 1, 1, S, T]
    scores = jnp.where(allowed, scores, -jnp.inf)
    weights = jax.nn.softmax(scores, axis=-1)
    weights = jnp.where(allowed, weights, 0.0)  # rows with no allowed key give 0, not NaN
    out = einsum32("BKGST,BTKD->BSKGD", weights.astype(v.dtype), v)
    return out.reshape(B, S, H, D).astype(q.dtype)  # [B, S, H, D]


# --- blockwise: the flash-attention schedule in plain JAX ------------------------------------

BLOCK_Q, BLOCK_K = 256, 256  # blockwise's default tiles (lesson 05 says how they were chosen)
MIN_BLOCK = 16  # the smallest block chosen for a long sequence: smaller ones waste the matmul units
# Padding rows' segment id: padded keys are masked for every real query (shared.flash_pallas too).
PAD_SEGMENT = -(2**31)


def tile(n: int, preferred: int, *, pow2: bool = False) -> tuple[int, int]:
    """(block, padded length) for a sequence of n positions and a preferred block size.

    n <= preferred: one block of n (pow2: the next power of two >= max(n, MIN_BLOCK), padded
    to it). Otherwise the largest power of two <= preferred that divides n, down to MIN_BLOCK;
    when none does (n = 300 = 4 x 75), the largest power of two whose padding adds at most
    n / 8 positions (300: blocks of 64, padded to 320), else MIN_BLOCK.
    """
    if n <= preferred:
        if not pow2:
            return n, n
        block = max(MIN_BLOCK, 1 << (n - 1).bit_length())
        return block, block
    block = 1 << (preferred.bit_length() - 1)  # the largest power of two <= preferred
    while block >= MIN_BLOCK:
        if n % block == 0:
            return block, n
        block //= 2
    block = 1 << (preferred.bit_length() - 1)
    while block > MIN_BLOCK and -(-n // block) * block - n > n / 8:
        block //= 2
    return block, -(-n // block) * block


def _block_size(n: int, preferred: int, what: str) -> int:
    """tile's block for n, which must divide n here: the entry points pad first (pad_to_blocks)."""
    block, padded = tile(n, preferred)
    if padded != n:
        raise AttentionError(f"{what} length {n} has no block size dividing it near {preferred}; "
                             f"pad it (shared.attention.pad_to_blocks)")
    return block


def pad_to_blocks(q, k, v, segment_ids, positions, block_q: int, block_k: int, *, pow2: bool = False):
    """q, k, v, segment ids and positions padded on the left to whole blocks (tile), and how
    many query rows were added (drop them from the output: out[:, pad:]).

    Padding goes in front, so that the real queries stay the last S of the T positions and
    their causal offset to the real keys is unchanged. The padded keys get segment id
    PAD_SEGMENT, which no real query shares, so nothing reads them; the padded queries read
    whatever they may (never NaN, MASKED rather than -inf) and are dropped. Their gradient is
    zero, so the backward pass (which recomputes the same masks) is unchanged for the real rows.
    """
    B, S, T = q.shape[0], q.shape[1], k.shape[1]
    S_pad, T_pad = tile(S, block_q, pow2=pow2)[1], tile(T, block_k, pow2=pow2)[1]
    if (S_pad, T_pad) == (S, T):
        return q, k, v, segment_ids, positions, 0
    T_pad = max(T_pad, S_pad)  # queries are the last S of the T positions: S <= T
    if T_pad != tile(T_pad, block_k, pow2=pow2)[1]:
        T_pad = tile(T_pad, block_k, pow2=pow2)[1]
    pq, pk = S_pad - S, T_pad - T
    front = lambda x, n: jnp.pad(x, [(0, 0), (n, 0)] + [(0, 0)] * (x.ndim - 2))
    seg = jnp.zeros((B, T), jnp.int32) if segment_ids is None else segment_ids.astype(jnp.int32)
    seg = jnp.concatenate([jnp.full((B, pk), PAD_SEGMENT, jnp.int32), seg], axis=1)
    if positions is not None:
        positions = (front(positions[0], pq), front(positions[1], pk))
    return front(q, pq), front(k, pk), front(v, pk), seg, positions, pq


def _block_scores(q_blk, k_blk, i, j, *, bq, bk, offset, causal, segment_ids, positions, scale):
    """Scaled, masked scores of query block i against key block j.

    q_blk: [B, bq, K, G, D], k_blk: [B, bk, K, D]. Returns scores [B, K, G, bq, bk] in
    float32, masked entries set to MASKED. The mask comes from positions and segment
    ids of this block only.
    """
    s = einsum32("BSKGD,BTKD->BKGST", q_blk, k_blk) * scale
    allowed = None
    if causal and positions is None:
        q_pos = offset + i * bq + jnp.arange(bq)  # queries are the last S of the T positions
        k_pos = j * bk + jnp.arange(bk)
        allowed = (q_pos[:, None] >= k_pos[None, :])[None]  # [1, bq, bk]
    elif causal:
        q_pos = jax.lax.dynamic_slice_in_dim(positions[0], i * bq, bq, axis=1)  # [B, bq]
        k_pos = jax.lax.dynamic_slice_in_dim(positions[1], j * bk, bk, axis=1)  # [B, bk]
        allowed = k_pos[:, None, :] <= q_pos[:, :, None]  # [B, bq, bk]
    if segment_ids is not None:
        q_seg = jax.lax.dynamic_slice_in_dim(segment_ids, offset + i * bq, bq, axis=1)  # [B, bq]
        k_seg = jax.lax.dynamic_slice_in_dim(segment_ids, j * bk, bk, axis=1)  # [B, bk]
        same = q_seg[:, :, None] == k_seg[:, None, :]  # [B, bq, bk]
        allowed = same if allowed is None else allowed & same
    if allowed is None:
        return s
    return jnp.where(allowed[:, None, None], s, MASKED)  # mask: [B or 1, 1, 1, bq, bk]


def _key_blocks_for(i, *, bq, bk, offset, nk, causal):
    """How many key blocks query block i reads: all of them, or up to its last query if the
    mask is causal by index (explicit positions may put any key anywhere: all of them)."""
    if not causal:
        return nk
    return jnp.minimum(nk, (offset + (i + 1) * bq + bk - 1) // bk)


def _first_query_block_for(j, *, bq, bk, offset, causal):
    """The first query block that reads key block j (0 unless causal)."""
    return jnp.maximum(0, (j * bk - offset) // bq) if causal else 0


def _tiling(q, k, segment_ids, positions, causal, scale, block_q, block_k):
    """Sizes, blocks (bq, bk), block counts, the causal offset T - S, the block-scores
    function that the forward and the backward pass share, and whether blocks may be
    skipped (a mask causal by index: no explicit positions)."""
    B, S, H, D = q.shape
    T, K = k.shape[1], k.shape[2]
    bq, bk = _block_size(S, block_q, "query"), _block_size(T, block_k, "key")
    offset = T - S
    scores = functools.partial(_block_scores, bq=bq, bk=bk, offset=offset, causal=causal,
                               segment_ids=segment_ids, positions=positions, scale=scale)
    skip = causal and positions is None
    return B, S, T, H, K, H // K, D, bq, bk, S // bq, T // bk, offset, scores, skip


def _blockwise_forward(q, k, v, segment_ids, positions, causal, scale, block_q, block_k):
    """Output [B, S, H, D] and log-sum-exp of the scores [B, K, G, S] (float32).

    For each query block (lax.map), loop over the key blocks it needs (fori_loop) with
    a running max m, running sum l and running weighted sum acc: when a new block
    raises the max, the old l and acc are rescaled by exp(m_old - m_new).
    """
    B, S, T, H, K, G, D, bq, bk, nq, nk, offset, scores, skip = _tiling(
        q, k, segment_ids, positions, causal, scale, block_q, block_k)
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
            pv = einsum32("BKGST,BTKD->BSKGD", p.astype(v.dtype), v_blk)
            acc = jnp.moveaxis(rescale, -1, 1)[..., None] * acc + pv
            return acc, m_new, l

        init = (jnp.zeros((B, bq, K, G, D), jnp.float32),
                jnp.full((B, K, G, bq), -jnp.inf, jnp.float32),
                jnp.zeros((B, K, G, bq), jnp.float32))
        hi = _key_blocks_for(i, bq=bq, bk=bk, offset=offset, nk=nk, causal=skip)
        acc, m, l = jax.lax.fori_loop(0, hi, step, init)
        out = acc / jnp.moveaxis(l, -1, 1)[..., None]
        return out.astype(q.dtype), m + jnp.log(l)

    out, lse = jax.lax.map(one_query_block, (q_blocks, jnp.arange(nq)))
    out = jnp.moveaxis(out, 0, 1).reshape(B, S, H, D)  # [nq, B, bq, K, G, D] -> [B, S, H, D]
    lse = jnp.moveaxis(lse, 0, -2).reshape(B, K, G, S)  # [nq, B, K, G, bq] -> [B, K, G, S]
    return out, lse


def blockwise_backward(q, k, v, segment_ids, positions, out, lse, d_out, causal, scale,
                        block_q, block_k):
    """Gradients (dq, dk, dv) from the saved output and log-sum-exp, recomputing each block.

    Softmax weights are rebuilt block by block as p = exp(s - lse), so nothing [S, T]
    is ever stored. With delta = rowsum(d_out * out):
      dv += p^T d_out,  dp = d_out v^T,  ds = p (dp - delta),  dq += scale ds k,  dk += scale ds^T q.
    A scan over key blocks carries dq; an inner loop over the query blocks that read
    key block j accumulates dk_j and dv_j. (shared.flash_pallas's kernel uses it too.)
    """
    B, S, T, H, K, G, D, bq, bk, nq, nk, offset, scores, skip = _tiling(
        q, k, segment_ids, positions, causal, scale, block_q, block_k)
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
            dv += einsum32("BKGST,BSKGD->BTKD", p.astype(do_blk.dtype), do_blk)
            dp = einsum32("BSKGD,BTKD->BKGST", do_blk, v_blk)
            ds = (p * (dp - delta_blk[..., None]) * scale).astype(q.dtype)  # d(loss)/d(q.k)
            dk += einsum32("BKGST,BSKGD->BTKD", ds, q_blk)
            dq_blk = einsum32("BKGST,BTKD->BSKGD", ds, k_blk)
            dq = jax.lax.dynamic_update_slice_in_dim(
                dq, jax.lax.dynamic_slice_in_dim(dq, i * bq, bq, axis=1) + dq_blk, i * bq, axis=1)
            return dq, dk, dv

        zeros = jnp.zeros((B, bk, K, D), jnp.float32)
        lo = _first_query_block_for(j, bq=bq, bk=bk, offset=offset, causal=skip)
        dq, dk, dv = jax.lax.fori_loop(lo, nq, step, (dq, zeros, zeros))
        return dq, (dk, dv)

    dq, (dk, dv) = jax.lax.scan(one_key_block, jnp.zeros((B, S, K, G, D), jnp.float32),
                                jnp.arange(nk))
    dk = jnp.moveaxis(dk, 0, 1).reshape(B, T, K, D)  # [nk, B, bk, K, D] -> [B, T, K, D]
    dv = jnp.moveaxis(dv, 0, 1).reshape(B, T, K, D)
    return dq.reshape(B, S, H, D).astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7, 8))
def _blockwise(q, k, v, segment_ids, positions, causal, scale, block_q, block_k):
    return _blockwise_forward(q, k, v, segment_ids, positions, causal, scale, block_q, block_k)[0]


def _blockwise_fwd(q, k, v, segment_ids, positions, causal, scale, block_q, block_k):
    out, lse = _blockwise_forward(q, k, v, segment_ids, positions, causal, scale, block_q, block_k)
    return out, (q, k, v, segment_ids, positions, out, lse)


def _blockwise_bwd(causal, scale, block_q, block_k, residuals, d_out):
    q, k, v, segment_ids, positions, out, lse = residuals
    grads = blockwise_backward(q, k, v, segment_ids, positions, out, lse, d_out, causal, scale,
                                block_q, block_k)
    return (*grads, None, None)  # segment ids and positions are integers: no gradient


_blockwise.defvjp(_blockwise_fwd, _blockwise_bwd)


def blockwise(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = True,
              segment_ids: jax.Array | None = None, q_positions: jax.Array | None = None,
              k_positions: jax.Array | None = None, scale: float | None = None,
              block_q: int = BLOCK_Q, block_k: int = BLOCK_K) -> jax.Array:
    """Flash attention's schedule in plain JAX: [bq, bk] scores at a time, never [S, T].

    Any S and T: a length up to the block is one block; a longer one is cut into the
    largest power-of-two block <= block_q (block_k) that divides it, down to MIN_BLOCK, or
    padded to whole blocks and masked when none does (tile, pad_to_blocks). The backward
    pass recomputes the scores block by block from the saved log-sum-exp (custom_vjp).
    Causal by index (no positions given), blocks above the diagonal are skipped.
    """
    check_segment_ids(segment_ids, q.shape, k.shape)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    positions = None
    if q_positions is not None or k_positions is not None:
        B, S, T = q.shape[0], q.shape[1], k.shape[1]
        q_pos = jnp.arange(T - S, T) if q_positions is None else q_positions
        k_pos = jnp.arange(T) if k_positions is None else k_positions
        positions = (jnp.broadcast_to(q_pos, (B, S)), jnp.broadcast_to(k_pos, (B, T)))
    q, k, v, segment_ids, positions, pad = pad_to_blocks(q, k, v, segment_ids, positions,
                                                         block_q, block_k)
    out = _blockwise(q, k, v, segment_ids, positions, causal, scale, block_q, block_k)
    return out[:, pad:]


# --- xla: the library baseline --------------------------------------------------------------

def xla(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = True,
        segment_ids: jax.Array | None = None, q_positions: jax.Array | None = None,
        k_positions: jax.Array | None = None, scale: float | None = None) -> jax.Array:
    """jax.nn.dot_product_attention with its XLA implementation.

    It has GQA built in. Its is_causal aligns queries with the first S keys, so when
    S != T (or with segment ids or positions) the mask is passed explicitly as a
    [B, 1, S, T] array, which its cuDNN path would not take; this course uses its XLA
    path throughout.
    """
    S, T = q.shape[1], k.shape[1]
    explicit = q_positions is not None or k_positions is not None or segment_ids is not None
    if causal and S == T and not explicit:
        return jax.nn.dot_product_attention(q, k, v, scale=scale, is_causal=True)
    allowed = None
    if causal or segment_ids is not None:
        allowed = mask(S, T, causal=causal, segment_ids=segment_ids, q_positions=q_positions,
                       k_positions=k_positions)[:, None]  # [B or 1, 1, S, T]
    return jax.nn.dot_product_attention(q, k, v, scale=scale, mask=allowed)


# --- cudnn: the library's fused kernels, on an NVIDIA GPU ---------------------------------------

def cudnn(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = True,
          segment_ids: jax.Array | None = None, scale: float | None = None) -> jax.Array:
    """jax.nn.dot_product_attention through cuDNN's fused flash-attention kernels, forward and
    backward: no [S, T] array is kept for the backward pass.

    An NVIDIA GPU only, in bfloat16 or float16 (cuDNN's dtypes), with the queries at the same
    S positions as the keys (training; no KV cache). GQA is built in. Segment ids go in as a
    [B, 1, S, S] mask, which cuDNN adds to the scores as a bias: packed documents stay apart,
    for one [S, S] read per sequence and kernel.
    """
    check_segment_ids(segment_ids, q.shape, k.shape)
    if jax.default_backend() != "gpu":
        raise AttentionError(f"attention 'cudnn' runs on an NVIDIA GPU only, not on this "
                             f"{jax.default_backend()}; use dense, blockwise or pallas")
    if q.dtype not in (jnp.bfloat16, jnp.float16):
        raise AttentionError(f"attention 'cudnn' runs in bfloat16 or float16, not {q.dtype} "
                             f"(train with --dtype bfloat16)")
    S, T = q.shape[1], k.shape[1]
    if S != T:
        raise AttentionError(f"attention 'cudnn' needs as many queries as keys (S = T), got "
                             f"S={S}, T={T}")
    allowed = None
    if segment_ids is not None:
        allowed = mask(S, T, causal=False, segment_ids=segment_ids)[:, None]  # [B, 1, S, T]
    return jax.nn.dot_product_attention(q, k, v, scale=scale, mask=allowed, is_causal=causal,
                                        implementation="cudnn")


# Implementations by name, as "module:function": the later lessons' modules are imported
# only when their implementation is asked for.
IMPLEMENTATIONS = {
    "reference": "shared.attention:reference",
    "dense": "shared.backward:dense",
    "blockwise": "shared.attention:blockwise",
    "pallas": "shared.flash_pallas:flash_attention",
    "xla": "shared.attention:xla",
    "cudnn": "shared.attention:cudnn",
}
TAKE_POSITIONS = ("reference", "dense", "blockwise", "xla")  # those that read a KV cache
GPU_ONLY = ("cudnn",)  # the others run everywhere (pallas interpreted on a CPU)


_PLUGGED: dict[str, Implementation] = {}


def plug(name: str, fn: Implementation | None) -> None:
    """Run fn wherever implementation `name` is asked for, in this process (None: unplug).

    This is how `--mine` runs the learner's attention (lesson 05's build exercise) in the
    real jobs while the run's saved config keeps naming the implementation it stands in for.
    """
    implementation(name)  # a known name, or a one-line error
    if fn is None:
        _PLUGGED.pop(name, None)
    else:
        _PLUGGED[name] = fn
    jax.clear_caches()  # programs traced before would keep the implementation they traced


def implementation(name: str) -> Implementation:
    """The attention function registered as `name` (or plugged in its place)."""
    if name in _PLUGGED:
        return _PLUGGED[name]
    if name not in IMPLEMENTATIONS:
        raise AttentionError(f"unknown attention impl {name!r}; valid: "
                             f"{', '.join(IMPLEMENTATIONS)}")
    module, function = IMPLEMENTATIONS[name].split(":")
    return getattr(importlib.import_module(module), function)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = True,
              segment_ids: jax.Array | None = None, q_positions: jax.Array | None = None,
              k_positions: jax.Array | None = None, impl: str = "reference",
              scale: float | None = None) -> jax.Array:
    """Attention output [B, S, H, D] in q's dtype, accumulated in float32.

    q_positions [B, S] and k_positions [B, T]: where the queries and keys are in their
    sequences (default: the queries are the last S of the T positions).
    """
    fn = implementation(impl)
    (B, S, H, _), (T, K) = q.shape, k.shape[1:3]
    if H % K:
        raise AttentionError(f"query heads ({H}) must be a multiple of key/value heads ({K})")
    positions = q_positions is not None or k_positions is not None
    if positions and impl not in TAKE_POSITIONS:
        raise AttentionError(f"attention {impl!r} takes no explicit positions (no KV cache); "
                             f"use one of {', '.join(TAKE_POSITIONS)}")
    if causal and S > T and not positions:
        raise AttentionError(f"causal attention treats the S={S} queries as the last of the "
                             f"T={T} positions, so S must be <= T")
    check_segment_ids(segment_ids, q.shape, k.shape)
    kw = {"q_positions": q_positions, "k_positions": k_positions} if positions else {}
    return fn(q, k, v, causal=causal, segment_ids=segment_ids, scale=scale, **kw)
