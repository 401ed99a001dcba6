"""Wrong build (lesson 04): each device keeps its rows of its own batch's gradient, not of the sum."""

from pathlib import Path

import jax

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_fsdp_matmul_gradients", "sums over all B rows")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/04_sharding_strategies/build_fsdp.py")


def _bwd_local_rows(axis, saved, dy):
    x, w_shard = saved
    w = _m._gather(w_shard, axis)
    rows = w_shard.shape[0]
    mine = jax.lax.dynamic_slice_in_dim(x.T @ dy, jax.lax.axis_index(axis) * rows, rows)
    return dy @ w.T, mine


_m._fsdp_matmul.defvjp(_m._fsdp_matmul_fwd, _bwd_local_rows)
fsdp_matmul, fsdp_forward = _m.fsdp_matmul, _m.fsdp_forward
