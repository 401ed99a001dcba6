"""Wrong build (lesson 04): n ppermutes instead of n - 1, so every finished sum moves one device too far."""

from pathlib import Path

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_matmul_reduce_scatter_values", "end on the wrong devices")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/04_sharding_strategies/build_fsdp.py")
fsdp_matmul, fsdp_forward = _m.fsdp_matmul, _m.fsdp_forward


def matmul_reduce_scatter(x, w, mesh, axis):
    n = mesh.shape[axis]

    def local(x_cols, w_rows):
        me, width = jax.lax.axis_index(axis), w_rows.shape[1] // n
        acc = jnp.zeros((x_cols.shape[0], width), jnp.float32)
        for step in range(n):
            block = (me - step - 1) % n
            acc += x_cols @ jax.lax.dynamic_slice_in_dim(w_rows, block * width, width, axis=1)
            acc = jax.lax.ppermute(acc, axis, _m._ring_to_right(n))  # also after the last block
        return acc.astype(x.dtype)

    return jax.shard_map(local, mesh=mesh, in_specs=(P(None, axis), P(axis, None)),
                         out_specs=P(None, axis))(x, w)
