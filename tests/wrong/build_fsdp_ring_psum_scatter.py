"""Wrong build (lesson 04): the whole [B, F] partial product, then one reduce-scatter: no ring, nothing overlaps."""

from pathlib import Path

import jax
from jax.sharding import PartitionSpec as P

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_matmul_reduce_scatter_collectives", "want 7 collective-permutes")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/04_sharding_strategies/build_fsdp.py")
fsdp_matmul, fsdp_forward = _m.fsdp_matmul, _m.fsdp_forward


def matmul_reduce_scatter(x, w, mesh, axis):
    def local(x_cols, w_rows):  # [B, E/n] @ [E/n, F]: this device's partial sum of all of x @ w
        return jax.lax.psum_scatter(x_cols @ w_rows, axis, scatter_dimension=1, tiled=True)

    return jax.shard_map(local, mesh=mesh, in_specs=(P(None, axis), P(axis, None)),
                         out_specs=P(None, axis))(x, w)
