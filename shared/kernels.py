"""Small Pallas kernels: add, tiled matmul with a fused epilogue, RMSNorm (lesson 10).

Also the TPU-style matmul with K on the grid (`matmul_k_grid`) and a model of the
HBM -> VMEM pipeline Pallas runs over a grid (`pipeline_model`).

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
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu
from jax.experimental.pallas import triton as plt

from shared import hardware
from shared.config import Error


class BlockError(Error):
    """No block size fits the shape under the platform's rule; the message is one line."""


def platform() -> str:
    """'cpu', 'gpu' or 'tpu': the platform of the default device."""
    return jax.devices()[0].platform


def pallas_call(kernel, *, interpret: bool | None = None, num_warps: int | None = None,
                num_stages: int | None = None,
                dimension_semantics: tuple[str, ...] | None = None, **kwargs):
    """pl.pallas_call in interpret mode on the CPU, through Triton on a GPU, Mosaic on a TPU.

    Every Pallas kernel of shared/ is called through this (shared.flash_pallas too).
    interpret=None chooses interpret mode exactly when the default device is a CPU;
    True forces it anywhere (slow, for checking values). Triton compiler params
    (num_warps, num_stages; None keeps Triton's default) select the Triton lowering for a
    GPU explicitly: recent JAX otherwise picks Mosaic GPU, which wants a different kernel
    style. They are passed unless the default device is a TPU, so that a program exported
    for a GPU from a CPU (jax.export) takes the Triton lowering too; interpret mode ignores them.
    dimension_semantics ("parallel" or "arbitrary" per grid axis) goes to Mosaic on a TPU,
    which may split "parallel" axes over its cores and runs "arbitrary" ones in order; the
    interpreter runs every grid in order and Triton has no such parameter, so elsewhere it is
    dropped.
    """
    where = platform()
    if where == "tpu":
        params = (None if dimension_semantics is None
                  else pltpu.CompilerParams(dimension_semantics=tuple(dimension_semantics)))
    else:
        params = plt.CompilerParams(num_warps=num_warps, num_stages=num_stages)
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


# --- K on the grid: the TPU-style matmul, and a model of its pipeline ---------------------------

def _matmul_k_grid_kernel(x_ref, y_ref, o_ref, acc_ref):
    # x_ref: block (i, k) [bm, bk], y_ref: block (k, j) [bk, bn], o_ref: block (i, j) [bm, bn];
    # acc_ref: [bm, bn] float32 scratch that outlives the program, from k = 0 to the last k.
    k = pl.program_id(2)

    @pl.when(k == 0)
    def _zero():  # the first K step of this output block
        acc_ref[...] = jnp.zeros(acc_ref.shape, jnp.float32)

    acc_ref[...] += jnp.dot(x_ref[...], y_ref[...], preferred_element_type=jnp.float32)

    @pl.when(k == pl.num_programs(2) - 1)
    def _store():  # the last K step: the only write of the output block
        o_ref[...] = acc_ref[...].astype(o_ref.dtype)


def matmul_k_grid(x: jax.Array, y: jax.Array, *, blocks: tuple[int, int, int] | None = None,
                  out_dtype=None, interpret: bool | None = None) -> jax.Array:
    """x @ y for x [M, K], y [K, N] with K on the third grid axis; returns [M, N].

    Grid (M / bm, N / bn, K / bk), the K axis last and "arbitrary" (in order): program
    (i, j, k) receives block (i, k) of x and block (k, j) of y, both [.., bk], and adds their
    product into a [bm, bn] float32 scratch accumulator (pltpu.VMEM; the interpreter
    allocates it too), zeroed under pl.when(k == 0) and stored, cast to out_dtype (default
    x's), under pl.when(k == K / bk - 1). Between those steps the output block stays on chip:
    Pallas writes it to HBM only when its block index changes. Against float32 jnp.dot at
    precision HIGHEST the result differs by float32 rounding only (the sums run in another
    order; tests/test_pipelining.py asks for 1e-5 relative to the largest value).

    It is correct where the grid runs in order: on a TPU and in interpret mode. On a GPU,
    Triton runs the programs in parallel and has no scratch memory (\"scratch memory not
    implemented in the Triton backend\"), so without interpret=True it raises Error and
    kernels.matmul, whose K loop lives inside the kernel, is the one to use.
    blocks = (bm, bn, bk); default up to 128 x 128 x 128 as choose_blocks picks them.
    """
    (M, K), (K2, N) = x.shape, y.shape
    if K != K2:
        raise Error(f"matmul_k_grid: inner dimensions differ: x {x.shape} @ y {y.shape}")
    if platform() == "gpu" and interpret is not True:
        raise Error("matmul_k_grid needs a grid run in order (a TPU, or interpret=True): on a GPU "
                    "the programs (i, j, k) run in parallel and Triton has no scratch memory; "
                    "use kernels.matmul, whose K loop is inside the kernel")
    if blocks is None:
        bm, bn = choose_blocks((M, N), (128, 128))
        blocks = (bm, bn, choose_blocks((M, K), (bm, 128))[1])
    bm, bn, bk = blocks
    _check_blocks((M, N, K), (bm, bn, bk), "matmul_k_grid")
    out_dtype = jnp.dtype(out_dtype or x.dtype)
    cost = pl.CostEstimate(
        flops=2 * M * N * K, transcendentals=0,
        bytes_accessed=matmul_hbm_bytes(M, N, K, bm, bn, x.dtype.itemsize, out_dtype.itemsize))
    return pallas_call(
        _matmul_k_grid_kernel,
        out_shape=jax.ShapeDtypeStruct((M, N), out_dtype),
        grid=(M // bm, N // bn, K // bk),
        in_specs=[pl.BlockSpec((bm, bk), lambda i, j, k: (i, k)),
                  pl.BlockSpec((bk, bn), lambda i, j, k: (k, j))],
        out_specs=pl.BlockSpec((bm, bn), lambda i, j, k: (i, j)),  # the same block for every k
        scratch_shapes=[pltpu.VMEM((bm, bn), jnp.float32)],
        dimension_semantics=("parallel", "parallel", "arbitrary"),
        cost_estimate=cost, interpret=interpret,
    )(x, y)


# On-chip memory a pipeline's buffers must fit, per core (a TPU's VMEM, an H100 SM's shared memory).
ON_CHIP_BYTES = {
    "TPU v5e": 128 * 2**20,  # VMEM: pltpu.get_tpu_info_for_chip(ChipVersion.TPU_V5E) in jax 0.10.2
    "TPU v6e": 128 * 2**20,  # VMEM: the same table
    "H100": 228 * 2**10,  # shared memory per SM: NVIDIA Hopper tuning guide (227 KiB per block)
    "H200": 228 * 2**10,  # the same Hopper SM
}


@dataclass(frozen=True)
class Pipeline:
    """matmul_k_grid's grid as the pipeline a chip runs: per step, what moves and what computes.

    Step (i, j, k) copies x's block (i, k) and y's block (k, j) from HBM into VMEM while step
    k - 1 computes (double buffering); the output block leaves once, after its last k.
    """

    chip: str
    grid: tuple[int, int, int]  # (M / bm, N / bn, K / bk)
    blocks: tuple[int, int, int]  # (bm, bn, bk)
    itemsize: int  # b of x and y
    out_itemsize: int
    buffers: int  # copies of each input and output block held in VMEM (2: double buffering)
    peak_flops: float  # P for the input dtype
    hbm_bw: float  # W
    on_chip_bytes: int | None  # ON_CHIP_BYTES of the chip, if known

    @property
    def steps(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]

    @property
    def flops_per_step(self) -> int:
        bm, bn, bk = self.blocks
        return 2 * bm * bn * bk

    @property
    def bytes_per_step(self) -> int:
        """HBM -> VMEM per step: one [bm, bk] block of x and one [bk, bn] block of y."""
        bm, bn, bk = self.blocks
        return (bm * bk + bk * bn) * self.itemsize

    @property
    def out_bytes_per_block(self) -> int:
        """VMEM -> HBM once per output block, after its last K step."""
        return self.blocks[0] * self.blocks[1] * self.out_itemsize

    @property
    def hbm_bytes(self) -> int:
        """The whole call's traffic: equals matmul_hbm_bytes for the same bm, bn."""
        return self.steps * self.bytes_per_step + self.grid[0] * self.grid[1] * self.out_bytes_per_block

    @property
    def vmem_bytes(self) -> int:
        """buffers x (x's block + y's block + the output block), plus the float32 accumulator."""
        bm, bn, _ = self.blocks
        return self.buffers * (self.bytes_per_step + self.out_bytes_per_block) + 4 * bm * bn

    @property
    def fits(self) -> bool | None:
        return None if self.on_chip_bytes is None else self.vmem_bytes <= self.on_chip_bytes

    @property
    def compute_s(self) -> float:
        return self.flops_per_step / self.peak_flops

    @property
    def copy_s(self) -> float:
        return self.bytes_per_step / self.hbm_bw

    @property
    def intensity(self) -> float:
        """FLOPs per byte copied in, per step: 2 bm bn / ((bm + bn) b); bk cancels."""
        return self.flops_per_step / self.bytes_per_step

    @property
    def ridge(self) -> float:
        return self.peak_flops / self.hbm_bw

    @property
    def hidden(self) -> bool:
        """Compute hides the copies: flops / P >= bytes / W, i.e. intensity >= P / W."""
        return self.compute_s >= self.copy_s

    @property
    def min_square_block(self) -> float:
        """The smallest bm = bn that hides the copies: b P / W (for any bk)."""
        return self.itemsize * self.ridge

    @property
    def time_s(self) -> float:
        """First copy (the bubble: nothing to compute under it), then each step at the pace of
        the slower of compute and copy, then the last output block's write."""
        return self.copy_s + self.steps * max(self.compute_s, self.copy_s) \
            + self.out_bytes_per_block / self.hbm_bw


def pipeline_model(M: int, N: int, K: int, blocks: tuple[int, int, int],
                   chip: str | hardware.Chip, *, dtype="bfloat16", out_dtype=None,
                   buffers: int = 2) -> Pipeline:
    """The Pipeline of matmul_k_grid(x [M, K], y [K, N], blocks=(bm, bn, bk)) on `chip`.

    chip: a key of shared.hardware.CHIPS ("TPU v5e", "H100", ...) or a Chip. The peak is the
    chip's for `dtype`; an unknown peak or bandwidth raises Error. kernels.matmul is the same
    pipeline with bk = K: one step per output block, each copying whole strips.
    """
    if isinstance(chip, str):
        if chip not in hardware.CHIPS:
            raise Error(f"pipeline_model: no chip {chip!r}; known: {', '.join(hardware.CHIPS)}")
        key, chip = chip, hardware.CHIPS[chip]
    else:
        key = next((k for k, c in hardware.CHIPS.items() if c == chip), chip.name)
    bm, bn, bk = blocks
    _check_blocks((M, N, K), (bm, bn, bk), "pipeline_model")
    peak = chip.flops(dtype)
    if not peak or not chip.memory_bw:
        raise Error(f"pipeline_model: {chip.name} has no {jnp.dtype(dtype)} peak or no memory "
                    f"bandwidth in shared.hardware")
    return Pipeline(chip=chip.name, grid=(M // bm, N // bn, K // bk), blocks=(bm, bn, bk),
                    itemsize=jnp.dtype(dtype).itemsize,
                    out_itemsize=jnp.dtype(out_dtype or dtype).itemsize, buffers=buffers,
                    peak_flops=peak, hbm_bw=chip.memory_bw, on_chip_bytes=ON_CHIP_BYTES.get(key))
