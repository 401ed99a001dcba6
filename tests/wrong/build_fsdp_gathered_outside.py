"""Wrong build (lesson 04): every weight gathered once, before the first layer, and kept whole (autodiff)."""

import jax
from jax.sharding import PartitionSpec as P

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_fsdp_forward_keeps_shards", "as large as a whole")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/04_sharding_strategies/build_fsdp.py")
fsdp_matmul = _m.fsdp_matmul


def fsdp_forward(x, ws, mesh, axis="data"):
    rows = P(axis, None)

    def local(x, ws):
        whole = [jax.lax.all_gather(w, axis, tiled=True) for w in ws]  # all L weights, [E, E] each
        for w in whole:
            x = jax.nn.relu(x @ w)
        return x

    return jax.shard_map(local, mesh=mesh, in_specs=(rows, [rows] * len(ws)), out_specs=rows)(x, ws)
