"""Wrong build (lesson 04): the reduce-scattered gradient is divided by n, as if averaged over devices."""

from pathlib import Path

import jax

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_fsdp_matmul_gradients", "1/n = 1/8")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/04_sharding_strategies/build_fsdp.py")


def _bwd_averaged(axis, saved, dy):
    x, w_shard = saved
    w = _m._gather(w_shard, axis)
    n = jax.lax.axis_size(axis)
    return dy @ w.T, jax.lax.psum_scatter(x.T @ dy, axis, scatter_dimension=0, tiled=True) / n


_m._fsdp_matmul.defvjp(_m._fsdp_matmul_fwd, _bwd_averaged)
fsdp_matmul, fsdp_forward = _m.fsdp_matmul, _m.fsdp_forward
