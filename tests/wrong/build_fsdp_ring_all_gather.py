"""Wrong build (lesson 04): x and w gathered whole inside the shard_map, then each device's columns computed."""

from pathlib import Path

import jax
from jax.sharding import PartitionSpec as P

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_matmul_reduce_scatter_collectives", "all-gather")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/04_sharding_strategies/build_fsdp.py")
fsdp_matmul, fsdp_forward = _m.fsdp_matmul, _m.fsdp_forward


def matmul_reduce_scatter(x, w, mesh, axis):
    n = mesh.shape[axis]

    def local(x_cols, w_rows):
        x_all = jax.lax.all_gather(x_cols, axis, axis=1, tiled=True)  # [B, E]
        w_all = jax.lax.all_gather(w_rows, axis, tiled=True)  # [E, F]
        width = w_all.shape[1] // n
        mine = jax.lax.dynamic_slice_in_dim(w_all, jax.lax.axis_index(axis) * width, width, axis=1)
        return x_all @ mine

    return jax.shard_map(local, mesh=mesh, in_specs=(P(None, axis), P(axis, None)),
                         out_specs=P(None, axis))(x, w)
