"""Exercise 10.7, answered: flash attention's forward pass as one Pallas kernel.

A drop-in for shared.flash_pallas.flash_forward: the same arguments, the same (out, lse).
One program of the grid (batch row b, query head h, query block i) keeps its [bq, D]
queries on chip and walks over the [bk, D] tiles of keys and values of the head it reads,
with a running max, running sum and running weighted sum in float32 (exercise 5.5's online
softmax; exercise 10.3's row softmax, one tile of keys at a time). The scores exist only
as one [bq, bk] tile at a time. Each step is a small helper (_kv_head, _causal,
_online_update, _finish, ...) so that it reads on its own; tests/wrong/ replaces one of
them at a time with a classic mistake.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from shared.kernels import pallas_call, platform

BLOCK_Q, BLOCK_K = 128, 64  # fits a GPU's shared memory for D up to 128 in float32 and bfloat16

# Masked scores are set to this, not -inf: a tile in which all of a query's keys are masked
# then gives exp(MASKED - MASKED) = 1 rather than NaN, and the first allowed key wipes it out
# with the rescale exp(MASKED - m_new) = 0.
MASKED = -1e30


def _block_size(n: int, block: int, what: str) -> int:
    """min(block, n), which must divide n: the blocks tile the sequence exactly."""
    size = min(block, n)
    if n % size:
        raise ValueError(f"flash_forward: the {what} length {n} is not a multiple of its block "
                         f"{size}; pass block sizes that divide it")
    return size


def _check_gpu_tiles(bq: int, bk: int, D: int) -> None:
    """Triton's arrays have power-of-two sizes, and its dot wants at least 16 along each."""
    for what, n in (("query block", bq), ("key block", bk), ("head width D", D)):
        if n < 16 or n & (n - 1):
            raise ValueError(f"flash_forward on a GPU: the {what} {n} must be a power of two >= 16")


def _scale(D: int, scale: float | None) -> float:
    return D ** -0.5 if scale is None else scale


def _kv_head(h, H: int, K: int):
    """The key/value head that query head h reads: the G = H / K consecutive query heads
    k G, ..., k G + G - 1 share head k."""
    return h // (H // K)


def _causal(q_pos: jax.Array, k_pos: jax.Array) -> jax.Array:
    """[bq, bk] query and key positions -> bool: a query reads keys at its position or before."""
    return k_pos <= q_pos


def _online_update(carry, s, v):
    """One tile into the running weighted sum acc [bq, D], max m and sum l [bq, 1] (float32):
    s [bq, bk] masked scores, v [bk, D] values."""
    acc, m, l = carry
    m_new = jnp.maximum(m, jnp.max(s, axis=1, keepdims=True))  # [bq, 1]
    p = jnp.exp(s - m_new)  # [bq, bk], against the new max
    rescale = jnp.exp(m - m_new)  # < 1 where this tile raised the max: shrink what was summed
    l = rescale * l + jnp.sum(p, axis=1, keepdims=True)
    acc = rescale * acc + jnp.dot(p.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return acc, m_new, l


def _finish(acc, m, l):
    """Output [bq, D] and log-sum-exp [bq, 1] of each query's scores. l >= 1 (the max itself
    adds exp(0)); l sums exp(s - m), so the scores' own log-sum-exp adds m back."""
    return acc / l, m + jnp.log(l)


def _kernel(q_ref, k_ref, v_ref, q_seg_ref, k_seg_ref, o_ref, lse_ref, *,
            scale: float, causal: bool, block_k: int, offset: int):
    """One (b, h, i) program. q_ref [bq, D] its queries; k_ref, v_ref [T, D] the keys and
    values of the head it reads; q_seg_ref [bq, 1] and k_seg_ref [1, T] segment ids, or None.
    Writes o_ref [bq, D] and lse_ref [bq, 1]. Per-query statistics are [bq, 1] columns, not
    [bq] vectors: a TPU wants 2-D values."""
    bq = q_ref.shape[0]
    i = pl.program_id(2)  # the query block; axes 0 and 1 are the batch row and the head
    q = q_ref[...]  # [bq, D], loaded once: it stays on chip for the whole loop

    def step(j, carry):
        start = pl.multiple_of(j * block_k, block_k)
        k = k_ref[pl.ds(start, block_k), :]  # [bk, D]
        v = v_ref[pl.ds(start, block_k), :]  # [bk, D]
        s = jnp.dot(q, k.T, preferred_element_type=jnp.float32) * scale  # [bq, bk], float32
        # This tile's mask, from positions and ids: the [S, T] mask never exists.
        allowed = None
        if causal:  # query index s sits at position offset + s: the queries are the last S of T
            q_pos = offset + i * bq + jax.lax.broadcasted_iota(jnp.int32, s.shape, 0)
            k_pos = start + jax.lax.broadcasted_iota(jnp.int32, s.shape, 1)
            allowed = _causal(q_pos, k_pos)
        if q_seg_ref is not None:
            same = q_seg_ref[...] == k_seg_ref[:, pl.ds(start, block_k)]  # [bq, 1] vs [1, bk]
            allowed = same if allowed is None else allowed & same
        if allowed is not None:
            s = jnp.where(allowed, s, MASKED)
        return _online_update(carry, s, v)

    num_k_blocks = k_ref.shape[0] // block_k
    if causal:  # stop after the tile holding this block's last query; the ones after are masked
        last = offset + (i + 1) * bq  # one past this block's last query position
        num_k_blocks = jnp.minimum(num_k_blocks, jax.lax.div(last + block_k - 1, block_k))
    init = (jnp.zeros(q.shape, jnp.float32), jnp.full((bq, 1), -jnp.inf, jnp.float32),
            jnp.zeros((bq, 1), jnp.float32))
    out, lse = _finish(*jax.lax.fori_loop(0, num_k_blocks, step, init))
    o_ref[...] = out.astype(o_ref.dtype)
    lse_ref[...] = lse


def flash_forward(q: jax.Array, k: jax.Array, v: jax.Array, *, segment_ids: jax.Array | None = None,
                  causal: bool = True, scale: float | None = None, block_q: int = BLOCK_Q,
                  block_k: int = BLOCK_K, interpret: bool | None = None) -> tuple[jax.Array, jax.Array]:
    """Exercise 10.7: attention output [B, S, H, D] (q's dtype) and log-sum-exp [B, H, S]
    (float32), one Pallas program per (batch row, query head, query block)."""
    B, S, H, D = q.shape
    T, K = k.shape[1], k.shape[2]
    if H % K:
        raise ValueError(f"flash_forward: {H} query heads are not a multiple of {K} key/value heads")
    bq, bk = _block_size(S, block_q, "query"), _block_size(T, block_k, "key")
    interpret = platform() == "cpu" if interpret is None else interpret
    if not interpret and platform() == "gpu":
        _check_gpu_tiles(bq, bk, D)

    # Head-major, so that each program's blocks are contiguous [rows, D] slabs.
    qh = jnp.swapaxes(q, 1, 2)  # [B, S, H, D] -> [B, H, S, D]
    kh, vh = jnp.swapaxes(k, 1, 2), jnp.swapaxes(v, 1, 2)  # [B, T, K, D] -> [B, K, T, D]
    # Query ids as a column, key ids as a row: the kernel compares them by broadcasting.
    q_seg = None if segment_ids is None else segment_ids[:, T - S:, None]  # [B, S, 1]
    k_seg = None if segment_ids is None else segment_ids[:, None, :]  # [B, 1, T]

    # Block shapes (None squeezes the axis away) and index maps from the program ids (b, h, i)
    # to a block's position, counted in blocks. Grouped-query attention is k's index map.
    q_spec = pl.BlockSpec((None, None, bq, D), lambda b, h, i: (b, h, i, 0))
    kv_spec = pl.BlockSpec((None, None, T, D), lambda b, h, i: (b, _kv_head(h, H, K), 0, 0))
    lse_spec = pl.BlockSpec((None, None, bq, 1), lambda b, h, i: (b, h, i, 0))
    seg_specs = [None, None] if segment_ids is None else [
        pl.BlockSpec((None, bq, 1), lambda b, h, i: (b, i, 0)),
        pl.BlockSpec((None, 1, T), lambda b, h, i: (b, 0, 0))]

    kernel = functools.partial(_kernel, scale=_scale(D, scale), causal=causal, block_k=bk,
                               offset=T - S)
    out, lse = pallas_call(  # interpret mode on a CPU, Triton on a GPU, Mosaic on a TPU
        kernel,
        grid=(B, H, S // bq),
        in_specs=[q_spec, kv_spec, kv_spec, *seg_specs],
        out_specs=[q_spec, lse_spec],
        out_shape=[jax.ShapeDtypeStruct(qh.shape, q.dtype),
                   jax.ShapeDtypeStruct((B, H, S, 1), jnp.float32)],
        interpret=interpret,
        num_warps=4 if D <= 64 else 8, num_stages=2,  # GPU only
    )(qh, kh, vh, q_seg, k_seg)
    return jnp.swapaxes(out, 1, 2), lse[..., 0]  # [B, H, S, D] -> [B, S, H, D]; [B, H, S]
