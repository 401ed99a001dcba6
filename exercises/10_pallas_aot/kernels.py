"""Exercises 10.1-10.4: Pallas kernels, run in interpret mode (interpret=True) on the CPU.

Interpret mode is slow (every grid program runs as separate JAX ops), so the tests
use arrays of a few dozen rows.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl


def matmul_kgrid(x: jax.Array, y: jax.Array, bm: int, bn: int, bk: int) -> jax.Array:
    """Exercise 10.1: a tiled matmul in Pallas with the K loop on the grid.

    x: [M, K], y: [K, N]; bm, bn and bk divide M, N and K. Call pl.pallas_call with
    grid (M // bm, N // bn, K // bk) and interpret=True. Program (i, j, k) reads block
    (i, k) of x ([bm, bk]) and block (k, j) of y ([bk, bn]) and adds their product,
    in float32, into output block (i, j), which it sets to zero first when k == 0
    (pl.when). Returns float32 [M, N].
    """
    raise NotImplementedError("Exercise 10.1: tiled Pallas matmul accumulating over a K grid axis")


def matmul_activation(x: jax.Array, y: jax.Array, bm: int, bn: int, bk: int,
                      activation: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """Exercise 10.2: exercise 10.1 with a fused epilogue: activation(x @ y) in one kernel.

    `activation` is any elementwise function (jax.nn.relu, jnp.tanh, ...). Apply it to
    the output block in the kernel, on the last step along K (k == num_programs(2) - 1),
    so no second pass over the output is needed. Returns float32 [M, N].
    """
    raise NotImplementedError("Exercise 10.2: the tiled matmul with a fused activation")


def row_softmax(x: jax.Array, block_rows: int) -> jax.Array:
    """Exercise 10.3: softmax over the last axis of x [R, N] as a Pallas kernel.

    One program per block of block_rows whole rows (block_rows divides R), grid
    (R // block_rows,), interpret=True. Compute in float32 and subtract each row's
    maximum before exp so that large inputs do not overflow. Returns [R, N] in x's dtype.
    """
    raise NotImplementedError("Exercise 10.3: row softmax as a Pallas kernel")


def choose_block(n: int, target: int, multiple: int = 1) -> int:
    """Exercise 10.4: the largest block size b <= target with n % b == 0 and b % multiple == 0.

    (A TPU wants multiples of 128 along the last axis; a GPU tensor-core dot wants 16.)
    When no such b exists, raise ValueError with a one-line message that names n,
    target and multiple.
    """
    raise NotImplementedError("Exercise 10.4: choose a block size for a dimension")
