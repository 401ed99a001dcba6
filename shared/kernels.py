"""Small Pallas kernels: add, tiled matmul with a fused epilogue, RMSNorm (lesson 10).

A Pallas kernel is a Python function over Refs (mutable views of memory blocks),
run once per point of a grid. `pl.pallas_call` takes the kernel, the grid, and a
BlockSpec per operand whose index map sends a grid point (i, j, ...) to the block
of that operand the program reads or writes. The same kernel body runs on:

    cpu  interpret mode: the kernel runs as ordinary JAX ops, one program after
         another. It checks values; it says nothing about speed or memory limits.
    gpu  the Triton lowering: every array a kernel touches must have power-of-two
         dimensions, and a dot needs blocks of at least 16.
    tpu  the Mosaic lowering: the last two block dimensions must be multiples of
         8 and 128 or equal to the array's dimensions.

`choose_blocks` picks block sizes that meet the platform's rule and divide the
problem, or raises BlockError naming the shape and the block. No kernel pads.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plt

from shared.config import Error


class BlockError(Error):
    """No block size fits the shape under the platform's rule; the message is one line."""


def platform() -> str:
    """'cpu', 'gpu' or 'tpu': the platform of the default device."""
    return jax.devices()[0].platform


def pallas_call(kernel, *, interpret: bool | None = None, num_warps: int | None = None,
                num_stages: int | None = None, **kwargs):
    """pl.pallas_call in interpret mode on the CPU, through Triton on a GPU, Mosaic on a TPU.

    Every Pallas kernel of shared/ is called through this (shared.flash_pallas too).
    interpret=None chooses interpret mode exactly when the default device is a CPU;
    True forces it anywhere (slow, for checking values). Triton compiler params
    (num_warps, num_stages; None keeps Triton's default) select the Triton lowering for a
    GPU explicitly: recent JAX otherwise picks Mosaic GPU, which wants a different kernel
    style. They are passed unless the default device is a TPU, so that a program exported
    for a GPU from a CPU (jax.export) takes the Triton lowering too; interpret mode ignores them.
    """
    where = platform()
    params = None if where == "tpu" else plt.CompilerParams(num_warps=num_warps, num_stages=num_stages)
    return pl.pallas_call(kernel, interpret=where == "cpu" if interpret is None else interpret,
                          compiler_params=params, **kwargs)


def _divides(n: int, candidates) -> int | None:
    return max((b for b in candidates if n % b == 0), default=None)


def choose_blocks(shape: tuple[int, ...], target: tuple[int, ...], *,
                  where: str | None = None) -> tuple[int, ...]:
    """The largest block size <= target along each dimension that divides it and suits `where`.

    cpu: any divisor. gpu: a power of two >= 16. tpu: the whole dimension, or a
    multiple of 128 (last dimension) / 8 (second to last) / 1 (others).
    Raises BlockError (one line: shape, dimension, target, rule) when none exists.
    """
    where = where or platform()
    if len(shape) != len(target):
        raise BlockError(f"shape {tuple(shape)} and block target {tuple(target)} differ in rank")
    blocks = []
    for axis, (n, t) in enumerate(zip(shape, target)):
        if where == "gpu":
            rule, block = "a power of two >= 16", _divides(n, [2**p for p in range(4, 31) if 2**p <= t])
        elif where == "tpu":
            m = 128 if axis == len(shape) - 1 else 8 if axis == len(shape) - 2 else 1
            rule = f"the whole dimension or a multiple of {m}"
            block = n if n <= t else _divides(n, range(m, t + 1, m))
        else:
            rule, block = "at least 1", _divides(n, range(1, t + 1))
        if block is None:
            raise BlockError(f"no {where} block <= {t} for dimension {axis} (size {n}) of shape "
                             f"{tuple(shape)}: a block must divide {n} and be {rule}")
        blocks.append(block)
    return tuple(blocks)


def _check_blocks(shape: tuple[int, ...], blocks: tuple[int, ...], what: str) -> None:
    bad = [(n, b) for n, b in zip(shape, blocks) if b < 1 or n % b]
    if bad:
        raise BlockError(f"{what}: block {tuple(blocks)} does not divide shape {tuple(shape)}")


# --- elementwise -------------------------------------------------------------------------------

def _add_kernel(x_ref, y_ref, o_ref):
    o_ref[...] = x_ref[...] + y_ref[...]


def add(x: jax.Array, y: jax.Array, *, blocks: tuple[int, int] | None = None) -> jax.Array:
    """x + y for [M, N] arrays, one program per [bm, bn] block on a grid (M / bm, N / bn)."""
    if x.shape != y.shape or x.ndim != 2:
        raise Error(f"add takes two [M, N] arrays of one shape, got {x.shape} and {y.shape}")
    M, N = x.shape
    bm, bn = blocks or choose_blocks((M, N), (256, 256))
    _check_blocks((M, N), (bm, bn), "add")
    spec = pl.BlockSpec((bm, bn), lambda i, j: (i, j))  # program (i, j) sees block (i, j)
    return pallas_call(_add_kernel, out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype),
                       grid=(M // bm, N // bn), in_specs=[spec, spec], out_specs=spec)(x, y)


# --- tiled matmul with a fused epilogue ---------------------------------------------------------

def _matmul_kernel(x_ref, y_ref, o_ref, *, bk: int, activation: Callable | None):
    # x_ref: [bm, K] strip of rows, y_ref: [K, bn] strip of columns, o_ref: [bm, bn].
    def step(k, acc):
        start = pl.multiple_of(k * bk, bk)
        x = x_ref[:, pl.ds(start, bk)]  # [bm, bk]
        y = y_ref[pl.ds(start, bk), :]  # [bk, bn]
        return acc + jnp.dot(x, y, preferred_element_type=jnp.float32)

    acc = jax.lax.fori_loop(0, x_ref.shape[1] // bk, step, jnp.zeros(o_ref.shape, jnp.float32))
    if activation is not None:
        acc = activation(acc)  # the epilogue: applied in registers, before the only store
    o_ref[...] = acc.astype(o_ref.dtype)


def matmul_hbm_bytes(M: int, N: int, K: int, bm: int, bn: int, itemsize: int,
                     out_itemsize: int | None = None) -> int:
    """Bytes the tiled matmul moves between main memory and the chip.

    Each of the (M/bm)(N/bn) programs reads a [bm, K] strip of x and a [K, bn] strip of
    y and writes one [bm, bn] block: x is read N/bn times, y M/bm times, out written once.
    """
    out_itemsize = itemsize if out_itemsize is None else out_itemsize
    return (M * K * (N // bn) + K * N * (M // bm)) * itemsize + M * N * out_itemsize


def matmul(x: jax.Array, y: jax.Array, *, blocks: tuple[int, int, int] | None = None,
           activation: Callable[[jax.Array], jax.Array] | None = None,
           out_dtype=None) -> jax.Array:
    """activation(x @ y) for x [M, K], y [K, N], accumulated in float32; returns [M, N].

    Grid (M / bm, N / bn): program (i, j) owns output block (i, j), loops over the K
    axis in steps of bk adding [bm, bk] @ [bk, bn] into a float32 accumulator, then
    applies `activation` (any elementwise jnp function, or None) and stores once, so
    the activation costs no extra pass over memory. The K loop lives inside the kernel
    rather than on a third grid axis because a GPU runs grid programs in parallel: two
    programs adding into one output block would race.
    blocks = (bm, bn, bk); default: the largest that suit the platform up to 128 x 128
    for the output block and 32 along K (128 on a TPU, whose lanes are 128 wide).
    """
    (M, K), (K2, N) = x.shape, y.shape
    if K != K2:
        raise Error(f"matmul: inner dimensions differ: x {x.shape} @ y {y.shape}")
    if blocks is None:
        bm, bn = choose_blocks((M, N), (128, 128))  # the output block [bm, bn]
        bk = choose_blocks((M, K), (bm, 128 if platform() == "tpu" else 32))[1]  # x's block [bm, bk]
        blocks = (bm, bn, bk)
    bm, bn, bk = blocks
    _check_blocks((M, N, K), (bm, bn, bk), "matmul")
    out_dtype = jnp.dtype(out_dtype or x.dtype)
    cost = pl.CostEstimate(
        flops=2 * M * N * K, transcendentals=M * N if activation is not None else 0,
        bytes_accessed=matmul_hbm_bytes(M, N, K, bm, bn, x.dtype.itemsize, out_dtype.itemsize))
    return pallas_call(
        functools.partial(_matmul_kernel, bk=bk, activation=activation),
        out_shape=jax.ShapeDtypeStruct((M, N), out_dtype),
        grid=(M // bm, N // bn),
        in_specs=[pl.BlockSpec((bm, K), lambda i, j: (i, 0)),   # rows i of x, all of K
                  pl.BlockSpec((K, bn), lambda i, j: (0, j))],  # columns j of y
        out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)),
        cost_estimate=cost,
        num_warps=8 if bm * bn >= 128 * 128 else 4,  # GPU only: threads to hold the accumulator
    )(x, y)


# --- row-wise RMSNorm ----------------------------------------------------------------------------

def _rmsnorm_kernel(x_ref, scale_ref, o_ref, *, eps: float):
    x = x_ref[...].astype(jnp.float32)  # [br, E]: whole rows, so the mean is local to the program
    x = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps)
    o_ref[...] = (x * scale_ref[...].astype(jnp.float32)).astype(o_ref.dtype)


def rmsnorm(x: jax.Array, scale: jax.Array, *, eps: float = 1e-6,
            block_rows: int | None = None) -> jax.Array:
    """x / rms(x) * scale over the last axis, in float32, as shared.model.rms_norm.

    x: [R, E], scale: [E]; returns [R, E] in x's dtype. One program per block of
    block_rows whole rows (default: choose_blocks, at most 16 rows, so that a block of
    float32 rows of a few thousand fits a GPU program's registers).
    """
    if x.ndim != 2 or scale.shape != x.shape[-1:]:
        raise Error(f"rmsnorm takes x [R, E] and scale [E], got {x.shape} and {scale.shape}")
    R, E = x.shape
    br = block_rows or choose_blocks((R, E), (16, E))[0]  # also checks E suits the platform
    _check_blocks((R,), (br,), "rmsnorm")
    return pallas_call(
        functools.partial(_rmsnorm_kernel, eps=eps),
        out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype),
        grid=(R // br,),
        in_specs=[pl.BlockSpec((br, E), lambda i: (i, 0)),
                  pl.BlockSpec((E,), lambda i: (0,))],  # every program reads all of scale
        out_specs=pl.BlockSpec((br, E), lambda i: (i, 0)),
    )(x, scale)
