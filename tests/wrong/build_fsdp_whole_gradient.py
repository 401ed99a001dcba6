"""Wrong build (lesson 04): the backward pass returns the whole summed [E, F] gradient, not the device's shard."""

from pathlib import Path

import jax

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_fsdp_matmul_gradients", "w_shard's gradient [E/n, F]")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/04_sharding_strategies/build_fsdp.py")


def _bwd_whole(axis, saved, dy):
    x, w_shard = saved
    w = _m._gather(w_shard, axis)
    return dy @ w.T, jax.lax.psum(x.T @ dy, axis)  # [E, F]


_m._fsdp_matmul.defvjp(_m._fsdp_matmul_fwd, _bwd_whole)
fsdp_matmul, fsdp_forward = _m.fsdp_matmul, _m.fsdp_forward
