"""Flash attention's forward pass as a Pallas kernel (lesson 10).

One program of the grid (batch b, query head h, query block i) holds a [bq, D]
block of queries and walks over the key/value blocks of the head it reads,
keeping a running max, running sum and running weighted sum: the [S, T] scores
exist only as one [bq, bk] tile at a time. The same kernel runs in interpret
mode on the CPU (chosen automatically; slow, for checking) and compiles natively
on a GPU through Pallas's Triton backend. On a TPU it is untested.

Tiling: blocks are powers of two of at least 16 (Triton's smallest matrix tile on a GPU,
and the same everywhere so that every platform runs the same program): the largest one up
to block_q (block_k) that divides S (T), or, when none does or the length is shorter than
a block, the length padded on the left to whole blocks with the padding masked
(shared.attention.tile and pad_to_blocks), so any S and T run. Compiled for a GPU the head
width D must also be a power of two >= 16; another D is a one-line AttentionError.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from shared.attention import BLOCK_K as BACKWARD_BLOCK_K, BLOCK_Q as BACKWARD_BLOCK_Q
from shared.attention import MASKED, AttentionError, blockwise_backward, check_segment_ids
from shared.attention import pad_to_blocks, tile
from shared.kernels import pallas_call, platform

BLOCK_Q, BLOCK_K = 128, 64  # fits a GPU's shared memory for D up to 128 in float32 and bfloat16


def _flash_kernel(q_ref, k_ref, v_ref, q_seg_ref, k_seg_ref, o_ref, lse_ref, *,
                  scale: float, causal: bool, block_k: int, offset: int):
    """One (batch, head, query block) program.

    q_ref: [bq, D] this program's queries; k_ref, v_ref: [T, D] all keys and values of
    the key/value head that query head reads; q_seg_ref: [bq, 1] and k_seg_ref: [1, T]
    segment ids, or None. Writes o_ref: [bq, D] and lse_ref: [bq, 1], the log-sum-exp of
    each query's scores (what the backward pass needs to rebuild the softmax). Per-query
    statistics are [bq, 1] columns, not [bq] vectors: TPUs want 2-D values.
    """
    # Block 1: this program's queries, loaded once; they stay on chip for the whole loop.
    block_q = q_ref.shape[0]
    i = pl.program_id(2)  # which query block; grid axes 0 and 1 are batch and head
    q = q_ref[...]  # [bq, D]

    # Block 2: step j of the loop reads one [bk, D] tile of keys and values.
    def step(j, carry):
        acc, m, l = carry  # [bq, D] weighted sum, [bq, 1] running max and running sum; float32
        start = pl.multiple_of(j * block_k, block_k)
        k = k_ref[pl.ds(start, block_k), :]  # [bk, D]
        v = v_ref[pl.ds(start, block_k), :]  # [bk, D]

        # Block 3: scores of this tile, in float32 whatever the input dtype.
        s = jnp.dot(q, k.T, preferred_element_type=jnp.float32) * scale  # [bq, bk]

        # Block 4: the mask of this tile, built from positions and ids, never stored as [S, T].
        allowed = None
        if causal:
            q_pos = offset + i * block_q + jax.lax.broadcasted_iota(jnp.int32, s.shape, 0)
            k_pos = start + jax.lax.broadcasted_iota(jnp.int32, s.shape, 1)
            allowed = q_pos >= k_pos
        if q_seg_ref is not None:
            same = q_seg_ref[...] == k_seg_ref[:, pl.ds(start, block_k)]  # [bq, 1] vs [1, bk]
            allowed = same if allowed is None else allowed & same
        if allowed is not None:
            s = jnp.where(allowed, s, MASKED)

        # Block 5: online softmax. A larger max shrinks what was summed so far by
        # exp(m - m_new); the new tile's weights are taken against the new max. A row
        # whose keys so far were all masked has m = MASKED and sums junk weights of 1,
        # but every query may attend to itself, so an allowed key comes and its
        # rescale exp(MASKED - m_new) = 0 wipes the junk.
        m_new = jnp.maximum(m, jnp.max(s, axis=1, keepdims=True))  # [bq, 1]
        p = jnp.exp(s - m_new)  # [bq, bk]
        rescale = jnp.exp(m - m_new)  # [bq, 1]
        l = rescale * l + jnp.sum(p, axis=1, keepdims=True)
        acc = rescale * acc + jnp.dot(p.astype(v.dtype), v, preferred_element_type=jnp.float32)
        return acc, m_new, l

    # Block 6: how many key tiles to visit. Causal: stop after the block holding
    # this query block's last position; the blocks after it are all masked.
    num_k_blocks = k_ref.shape[0] // block_k
    if causal:
        last = offset + (i + 1) * block_q  # one past this block's last query position
        num_k_blocks = jnp.minimum(num_k_blocks, jax.lax.div(last + block_k - 1, block_k))
    init = (jnp.zeros(q.shape, jnp.float32),
            jnp.full((block_q, 1), -jnp.inf, jnp.float32),
            jnp.zeros((block_q, 1), jnp.float32))
    acc, m, l = jax.lax.fori_loop(0, num_k_blocks, step, init)

    # Block 7: normalise once at the end (l >= 1: the max itself contributes exp(0)).
    o_ref[...] = (acc / l).astype(o_ref.dtype)
    lse_ref[...] = m + jnp.log(l)


def _check_tiles(S: int, T: int, D: int, block_q: int, block_k: int, native_gpu: bool):
    for what, n, block in (("query length S", S, block_q), ("key length T", T, block_k)):
        if n % block:
            raise AttentionError(f"pallas attention: {what}={n} is not a multiple of its block "
                                 f"{block}; flash_attention pads it (shared.attention.pad_to_blocks)")
    if native_gpu:
        for what, n in (("query block", block_q), ("key block", block_k), ("head width D", D)):
            if n < 16 or n & (n - 1):
                raise AttentionError(f"pallas attention on GPU: {what} {n} must be a power of two >= 16")


def flash_forward(q, k, v, *, segment_ids=None, causal: bool = True, scale: float | None = None,
                  block_q: int = BLOCK_Q, block_k: int = BLOCK_K, interpret: bool | None = None):
    """Attention output [B, S, H, D] (q's dtype) and log-sum-exp [B, H, S] (float32).

    q: [B, S, H, D]; k, v: [B, T, K, D] with H a multiple of K; segment_ids: [B, T]
    int or None (the queries use the last S). interpret=None runs the kernel in
    interpret mode exactly when the default device is a CPU.
    """
    B, S, H, D = q.shape
    T, K = k.shape[1], k.shape[2]
    G = H // K
    scale = D ** -0.5 if scale is None else scale
    where = platform()
    interpret = where == "cpu" if interpret is None else interpret
    block_q, block_k = tile(S, block_q, pow2=True)[0], tile(T, block_k, pow2=True)[0]
    _check_tiles(S, T, D, block_q, block_k, native_gpu=not interpret and where == "gpu")

    # Head-major layout, so each program's blocks are contiguous [rows, D] slabs.
    qh = jnp.swapaxes(q, 1, 2)  # [B, H, S, D]
    kh, vh = jnp.swapaxes(k, 1, 2), jnp.swapaxes(v, 1, 2)  # [B, K, T, D]
    # Query ids as a column and key ids as a row, so the kernel compares them by broadcasting.
    q_seg = None if segment_ids is None else segment_ids[:, T - S:, None]  # [B, S, 1]
    k_seg = None if segment_ids is None else segment_ids[:, None, :]  # [B, 1, T]

    # BlockSpecs: block shape (None squeezes that axis away) and an index map from the
    # program ids (b, h, i) to the block's position, counted in blocks. GQA lives in
    # k's index map: query head h reads key/value head h // G.
    q_spec = pl.BlockSpec((None, None, block_q, D), lambda b, h, i: (b, h, i, 0))
    kv_spec = pl.BlockSpec((None, None, T, D), lambda b, h, i: (b, h // G, 0, 0))
    q_seg_spec = None if segment_ids is None else pl.BlockSpec((None, block_q, 1), lambda b, h, i: (b, i, 0))
    k_seg_spec = None if segment_ids is None else pl.BlockSpec((None, 1, T), lambda b, h, i: (b, 0, 0))
    lse_spec = pl.BlockSpec((None, None, block_q, 1), lambda b, h, i: (b, h, i, 0))

    kernel = functools.partial(_flash_kernel, scale=scale, causal=causal, block_k=block_k,
                               offset=T - S)
    out, lse = pallas_call(  # shared.kernels: interpret on a CPU, Triton on a GPU, Mosaic on a TPU
        kernel,
        grid=(B, H, S // block_q),
        in_specs=[q_spec, kv_spec, kv_spec, q_seg_spec, k_seg_spec],
        out_specs=[q_spec, lse_spec],
        out_shape=[jax.ShapeDtypeStruct(qh.shape, q.dtype),
                   jax.ShapeDtypeStruct((B, H, S, 1), jnp.float32)],
        interpret=interpret,
        num_warps=4 if D <= 64 else 8, num_stages=2,  # GPU only
        name="flash_attention_forward",
    )(qh, kh, vh, q_seg, k_seg)
    return jnp.swapaxes(out, 1, 2), lse[..., 0]  # [B, S, H, D], [B, H, S]


# --- the kernel as one of shared.attention's implementations: the blockwise backward -----------

def _forward(q, k, v, segment_ids, causal, scale):
    """flash_forward with the blocks named (tile's, which divide the padded S and T), so that a
    kernel plugged in its place (lesson 10's build exercise, min(block, length)) tiles them too."""
    block_q, block_k = tile(q.shape[1], BLOCK_Q, pow2=True)[0], tile(k.shape[1], BLOCK_K, pow2=True)[0]
    return flash_forward(q, k, v, segment_ids=segment_ids, causal=causal, scale=scale,
                         block_q=block_q, block_k=block_k)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _attention(q, k, v, segment_ids, causal, scale):
    return _forward(q, k, v, segment_ids, causal, scale)[0]


def _attention_fwd(q, k, v, segment_ids, causal, scale):
    out, lse = _forward(q, k, v, segment_ids, causal, scale)
    B, H, S = lse.shape
    lse = lse.reshape(B, k.shape[2], H // k.shape[2], S)  # [B, H, S] -> [B, K, G, S]
    return out, (q, k, v, segment_ids, out, lse)


def _attention_bwd(causal, scale, residuals, d_out):
    q, k, v, segment_ids, out, lse = residuals
    grads = blockwise_backward(q, k, v, segment_ids, None, out, lse, d_out, causal, scale,
                               BACKWARD_BLOCK_Q, BACKWARD_BLOCK_K)
    return (*grads, None)


_attention.defvjp(_attention_fwd, _attention_bwd)


def flash_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = True,
              segment_ids: jax.Array | None = None, scale: float | None = None) -> jax.Array:
    """shared.attention's "pallas": this kernel's forward, the blockwise backward.

    Any S <= T: lengths that no power-of-two block divides are padded to whole blocks and
    the padding masked (shared.attention.pad_to_blocks); the backward pass (blockwise's, on
    the padded arrays) then tiles them too. Queries are the last S of the T positions (no
    explicit positions, so no KV cache).
    """
    check_segment_ids(segment_ids, q.shape, k.shape)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    q, k, v, segment_ids, _, pad = pad_to_blocks(q, k, v, segment_ids, None, BLOCK_Q, BLOCK_K, pow2=True)
    return _attention(q, k, v, segment_ids, causal, scale)[:, pad:]
