"""Tensor-parallel serving: the engine's programs with the model split over devices (lesson 09).

    mesh = serving_tp.mesh()                      # {data: 1, model: n} over every device
    engine = Engine(params, config, slots=8, mesh=mesh)

The weights are split as shared.sharding's "tp" strategy says: query and key/value
heads, MLP width and vocabulary over the `model` axis (Megatron's pairs: wq/wk/wv and
w_up by output columns, wo and w_down by input rows). The KV cache is split by its
key/value heads, so each device keeps and reads only its own heads' keys and values:
attention needs no communication. What does:

    per layer   all-reduce of wo's partial outputs     [B, S, E]
                all-reduce of w_down's partial outputs [B, S, E]
    per step    the logits, split over V, gathered for sampling; the embedding lookup

A decode step (S = 1) reads weights/n and cache/n bytes per device but still pays
2L all-reduces of B x E values, each a latency of microseconds on a fast link. It pays
when the weight-read time saved, (weights / n) x (n - 1) / bandwidth, exceeds that
latency: large models, few devices joined by fast links (lesson 09 computes it).
"""

from __future__ import annotations

from typing import Sequence

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from shared import sharding
from shared.config import ModelConfig


def mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The tensor-parallel mesh {data: 1, model: n} over these devices (default: all)."""
    return sharding.strategy_mesh("tp", devices)


def check_divides(config: ModelConfig, mesh: Mesh) -> None:
    """Raise ShardingError naming the size that the model axis does not divide."""
    n = mesh.shape[sharding.MODEL]
    for name in ("n_heads", "kv_heads", "d_ff", "vocab_size"):
        if getattr(config, name) % n:
            raise sharding.ShardingError(f"tensor-parallel serving over {n} devices needs "
                                         f"{name} divisible by {n}, got {getattr(config, name)}")


def kv_shardings(state, mesh: Mesh):
    """Shardings of a KV state: its caches split on the key/value heads K; the rest replicated.

    The contiguous cache holds per-layer [B, K, D, T] and [B, K, T, D] buffers (K second), the
    paged one [L, P, K, page, D] pools (K third); the result is the state's pytree
    (inference.Cache, paged.PagedCache) of shardings.
    """
    split = {4: P(None, sharding.MODEL, None, None), 5: P(None, None, sharding.MODEL, None, None)}
    return jax.tree.map(lambda x: NamedSharding(mesh, split.get(x.ndim, P())), state)


def place(params: dict, state: dict, config: ModelConfig, mesh: Mesh) -> tuple[dict, dict, dict]:
    """(params, KV state, the state's shardings), placed on the mesh for tensor-parallel serving."""
    check_divides(config, mesh)
    state_shardings = kv_shardings(state, mesh)
    return (sharding.shard_params(params, "tp", mesh), jax.device_put(state, state_shardings),
            state_shardings)
