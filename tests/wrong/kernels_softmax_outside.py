"""Wrong answer (exercise 10.3): jax.nn.softmax computed outside, then a Pallas kernel that only
copies the rows: right values and a pallas_call, but the softmax is not the kernel's."""

import jax
from jax.experimental import pallas as pl

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_row_softmax_kernel", "runs outside the kernel")


def _copy(x_ref, o_ref):
    o_ref[...] = x_ref[...]


def row_softmax(x, block_rows):
    R, N = x.shape
    spec = pl.BlockSpec((block_rows, N), lambda i: (i, 0))
    return pl.pallas_call(_copy, out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype), grid=(R // block_rows,),
                          in_specs=[spec], out_specs=spec, interpret=True)(jax.nn.softmax(x, axis=-1))
