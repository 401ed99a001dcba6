"""Wrong answer (exercise 10.1): a Pallas matmul with a 2-D grid, each program multiplying whole
[bm, K] and [K, bn] strips: right values, but K is not on the grid (no accumulation over k)."""

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_matmul_kgrid_kernel", "grid is (M // bm, N // bn, K // bk)")


def _kernel(x_ref, y_ref, o_ref):
    o_ref[...] = jnp.dot(x_ref[...], y_ref[...], preferred_element_type=jnp.float32)


def matmul_kgrid(x, y, bm, bn, bk):
    (M, K), N = x.shape, y.shape[1]
    return pl.pallas_call(
        _kernel, out_shape=jax.ShapeDtypeStruct((M, N), jnp.float32), grid=(M // bm, N // bn),
        in_specs=[pl.BlockSpec((bm, K), lambda i, j: (i, 0)), pl.BlockSpec((K, bn), lambda i, j: (0, j))],
        out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)), interpret=True)(x, y)
