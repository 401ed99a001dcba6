"""Wrong build (lesson 04): the weight's gradient is all-reduced whole, then each device slices its rows."""

from pathlib import Path

import jax

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_fsdp_matmul_backward_collectives", "all-reduce of the whole gradient")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/04_sharding_strategies/build_fsdp.py")


def _bwd_all_reduce_then_slice(axis, saved, dy):
    x, w_shard = saved
    w = _m._gather(w_shard, axis)
    whole = jax.lax.psum(x.T @ dy, axis)  # [E, F] on every device
    rows = w_shard.shape[0]
    return dy @ w.T, jax.lax.dynamic_slice_in_dim(whole, jax.lax.axis_index(axis) * rows, rows)


_m._fsdp_matmul.defvjp(_m._fsdp_matmul_fwd, _bwd_all_reduce_then_slice)
fsdp_matmul, fsdp_forward = _m.fsdp_matmul, _m.fsdp_forward
