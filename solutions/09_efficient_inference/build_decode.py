"""Exercises 9.7-9.9, answered: the KV-cached forward pass, and continuous batching's scheduler.

extend runs the model's layers over new tokens through the cache: each layer's new keys and
values are scattered into the cache at the tokens' absolute positions, and every query reads
the cache of its own row up to its own position. admit and retire are the host half of the
engine's step: first come first served into free slots while memory allows, and done
requests out at a stop sequence or their budget. Each step is a small helper (_write_keys,
_allowed, _rope, _last_valid, ...) so that it reads on its own; tests/wrong/ replaces one
of them at a time with a classic mistake.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Protocol

import jax
import jax.numpy as jnp

from shared.config import ModelConfig
from shared.inference import Cache
from shared.model import cast, matmul, mlp_block, rms_norm, rope, unembed


# ---- 9.7: the cached forward pass ----

def _layers(blocks) -> list[dict]:
    """Per-layer weight dicts, from a list of them or from weights stacked over L."""
    if isinstance(blocks, list):
        return blocks
    L = jax.tree.leaves(blocks)[0].shape[0]
    return [jax.tree.map(lambda w: w[i], blocks) for i in range(L)]


def _positions(length: jax.Array, S: int) -> jax.Array:
    """[B, S]: new token s of row b sits right after the row's `length` cached ones."""
    return length[:, None] + jnp.arange(S)


def _slots(new: jax.Array, positions: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Row, head and position [B, S, K] each of the slots of new [B, S, K, D]: token s of row b
    goes to its row's position positions[b, s], every head at once."""
    B, S, K, _ = new.shape
    return jnp.broadcast_arrays(jnp.arange(B)[:, None, None], jnp.arange(K), positions[:, :, None])


def _write_keys(keys: jax.Array, new: jax.Array, positions: jax.Array) -> jax.Array:
    """One layer's keys [B, K, D, T] with new [B, S, K, D] at (b, k, :, positions[b, s])."""
    rows, heads, slots = _slots(new, positions)
    # The index arrays are split by a slice (D), so their shape [B, S, K] comes first: the slots
    # are [B, S, K, D], new's shape. A position past T (an idle row at a full cache) is dropped
    # rather than clamped onto a filled one.
    return keys.at[rows, heads, :, slots].set(new, mode="drop")


def _write_values(values: jax.Array, new: jax.Array, positions: jax.Array) -> jax.Array:
    """One layer's values [B, K, T, D] with new [B, S, K, D] at (b, k, positions[b, s]): the
    slots are [B, S, K, D] again, and a position past T is dropped."""
    rows, heads, slots = _slots(new, positions)
    return values.at[rows, heads, slots].set(new, mode="drop")


def _allowed(positions: jax.Array, T: int) -> jax.Array:
    """[B, S, T] bool: the query at positions[b, s] reads cache positions at or before it,
    in its own row only (each row's mask comes from its own positions)."""
    return jnp.arange(T)[None, None, :] <= positions[:, :, None]


def _rope(q: jax.Array, k: jax.Array, positions: jax.Array, config: ModelConfig):
    """Queries and keys rotated by their absolute positions in the sequence."""
    return rope(q, positions, config.rope_base), rope(k, positions, config.rope_base)


def _attend(q: jax.Array, keys: jax.Array, values: jax.Array, allowed: jax.Array) -> jax.Array:
    """q [B, S, H, D] over one layer's cached keys [B, K, D, T] and values [B, K, T, D]."""
    B, S, H, D = q.shape
    K = keys.shape[1]
    qg = q.reshape(B, S, K, H // K, D)  # [B, S, K, G, D]: query head h reads key head h // G
    scores = jnp.einsum("BSKGD,BKDT->BKGST", qg, keys,
                        preferred_element_type=jnp.float32) * D ** -0.5
    # Every query may read its own position, so no row of the softmax is all -inf.
    scores = jnp.where(allowed[:, None, None], scores, -jnp.inf)  # mask [B, 1, 1, S, T]
    weights = jax.nn.softmax(scores, axis=-1)
    out = jnp.einsum("BKGST,BKTD->BSKGD", weights.astype(values.dtype), values,
                     preferred_element_type=jnp.float32)
    return out.reshape(B, S, H, D).astype(q.dtype)  # [B, S, K, G, D] -> [B, S, H, D]


def _attention(x: jax.Array, p: dict, keys: jax.Array, values: jax.Array, positions: jax.Array,
               config: ModelConfig):
    """One layer's attention through its cache buffers: ([B, S, E], keys, values)."""
    q = matmul("BSE,EHD->BSHD", x, p["wq"])
    k = matmul("BSE,EKD->BSKD", x, p["wk"])
    v = matmul("BSE,EKD->BSKD", x, p["wv"])
    q, k = _rope(q, k, positions, config)
    # Write first, then read: a new token also attends to itself and to the chunk before it.
    keys = _write_keys(keys, k, positions)
    values = _write_values(values, v, positions)
    out = _attend(q, keys, values, _allowed(positions, values.shape[2]))
    return matmul("BSHD,HDE->BSE", out, p["wo"]), keys, values


def _last_valid(x: jax.Array, n_valid: jax.Array) -> jax.Array:
    """x [B, S, E] at each row's last real token: [B, 1, E] (a row with none: any)."""
    idx = jnp.maximum(n_valid - 1, 0)[:, None, None]  # [B, 1, 1]
    return jnp.take_along_axis(x, idx, axis=1)


def extend(params: dict, cache: Cache, tokens: jax.Array, n_valid: jax.Array,
           config: ModelConfig) -> tuple[jax.Array, Cache]:
    """Tokens [B, S] at positions cache.length..+S through the cache; logits [B, V] at each
    row's last valid token, and the cache with their keys and values and longer rows."""
    B, S = tokens.shape
    dtype = jnp.dtype(config.dtype)
    positions = _positions(cache.length, S)  # [B, S]
    x = params["embed"][tokens].astype(dtype)  # [B, S, E]
    keys, values = list(cache.k), list(cache.v)  # one buffer per layer
    for layer, p in enumerate(_layers(params["blocks"])):
        p = cast(p, dtype)
        h, keys[layer], values[layer] = _attention(rms_norm(x, p["attn_norm"]), p, keys[layer],
                                                   values[layer], positions, config)
        x = x + h
        x = x + mlp_block(rms_norm(x, p["mlp_norm"]), p, config)
    x = rms_norm(x, params["final_norm"])
    logits = unembed(params, _last_valid(x, n_valid), config)[:, 0]  # [B, 1, V] -> [B, V]
    return logits, Cache(tuple(keys), tuple(values), cache.length + n_valid)


# ---- 9.8-9.9: the scheduler ----

class Memory(Protocol):
    """The engine's KV memory bookkeeping (shared.engine.ContiguousKV, shared.paged.PagedKV)."""

    def can_admit(self, n_prompt: int, budget: int) -> bool: ...

    def admit(self, slot: int, n_prompt: int, budget: int) -> None: ...

    def release(self, slot: int) -> None: ...


def admit(queue: collections.deque, active: list, kv: Memory,
          budget: Callable[[Any], int]) -> list[tuple[int, tuple]]:
    """The waiting entries that start now, each with its slot, oldest first."""
    free = [slot for slot, s in enumerate(active) if s is None]
    admitted = []
    for slot in free:
        if not queue:
            break
        request = queue[0][0]
        n, b = len(request.prompt), budget(request)
        if not kv.can_admit(n, b):
            break  # the oldest waits for memory, and the rest wait behind it: none starves
        kv.admit(slot, n, b)  # reserve now, so that the next can_admit sees it taken
        admitted.append((slot, queue.popleft()))
    return admitted


def _stop_at_end(out: list[int], stops) -> int | None:
    """The length of out without the stop sequence it ends with, or None."""
    for stop in stops:
        if stop and tuple(out[-len(stop):]) == tuple(stop):
            return len(out) - len(stop)
    return None


def retire(active: list, kv: Memory) -> list[tuple[int, Any, str]]:
    """End the done requests, free their slots and memory; (slot, record, finish) each."""
    done = []
    for slot, s in enumerate(active):
        if s is None:
            continue
        cut = _stop_at_end(s.out, s.request.stop)
        if cut is not None:
            del s.out[cut:]
            finish = "stop"
        elif len(s.out) >= s.budget:
            finish = "length"
        else:
            continue
        active[slot] = None
        kv.release(slot)
        done.append((slot, s, finish))
    return done
