"""Wrong build (lesson 04): no custom backward; autodiff keeps the gathered weight for the backward pass."""

from pathlib import Path

import jax.numpy as jnp

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_fsdp_matmul_keeps_shard", "as large as a whole")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/04_sharding_strategies/build_fsdp.py")
_m._fsdp_matmul = lambda x, w_shard, axis: jnp.matmul(x, _m._gather(w_shard, axis))
fsdp_matmul, fsdp_forward = _m.fsdp_matmul, _m.fsdp_forward
