"""Lesson 09 exercises: the KV cache, int8 weights, paged lookup and a scheduler step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from shared import inference
from shared.config import ModelConfig


def cache_update(cache: jax.Array, new: jax.Array, positions: jax.Array) -> jax.Array:
    """Exercise 9.1: write each row's new key into its cache at its own position.

    cache: [B, T, K, D]; new: [B, K, D] (one token per row); positions: int [B].
    Returns the cache [B, T, K, D] with cache[b, positions[b]] = new[b], other entries
    unchanged. Use jax.lax.dynamic_update_slice (per row, e.g. under jax.vmap).
    """
    raise NotImplementedError("Exercise 9.1: write each row's new key into its cache at its own position")


def greedy_decode(params: dict, config: ModelConfig, prompts: np.ndarray, lengths: np.ndarray,
                  n: int) -> np.ndarray:
    """Exercise 9.2: batched greedy decoding from a KV cache.

    prompts: int32 [B, S], row b's prompt in its first lengths[b] entries (right-padded);
    n >= 1 new tokens per row. Prefill with shared.inference.extend on a cache from
    shared.inference.init_cache, take the argmax, then feed each new token back one
    step at a time. Returns int32 [B, n].
    """
    raise NotImplementedError("Exercise 9.2: batched greedy decoding from a KV cache")


def absmax_quantize(w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Exercise 9.3: per-output-channel absmax int8 quantization of w [K, N].

    scale[c] = max_k |w[k, c]| / 127 (use 1 for an all-zero column);
    q[k, c] = round(w[k, c] / scale[c]) as int8. Returns (q int8 [K, N], scale float32 [N]).
    """
    raise NotImplementedError("Exercise 9.3: int8 quantization of a weight matrix, per output channel")


def int8_dot(x: jax.Array, q: jax.Array, w_scale: jax.Array) -> jax.Array:
    """Exercise 9.4: x [M, K] float32 times an int8 weight q [K, N] with scales w_scale [N].

    Quantize each row of x with its own absmax scale (as in 9.3, but per row), multiply
    the int8 matrices with int32 accumulation (jax.lax.dot with
    preferred_element_type=jnp.int32), then rescale by both scales. Returns float32 [M, N].
    """
    raise NotImplementedError("Exercise 9.4: x [M, K] float32 times an int8 weight q [K, N] with scales w_scale [N]")


def lookup_key(pages: jax.Array, table: jax.Array, position: int) -> jax.Array:
    """Exercise 9.5: a sequence's key at `position`, read through its page table.

    pages: [P, page, K, D] (the pool); table: int [n], entry j is the page holding
    positions j * page .. (j + 1) * page - 1 of the sequence. Returns [K, D].
    """
    raise NotImplementedError("Exercise 9.5: a sequence's key at `position`, read through its page table")


def schedule(queue: list[int], slots: list[int | None],
             finished: list[bool]) -> tuple[list[int | None], list[int]]:
    """Exercise 9.6: one scheduler step of continuous batching.

    queue: waiting request ids, oldest first; slots: the request id in each decode
    slot, None when free; finished[i]: slot i's request is done. Free the finished
    slots, then fill free slots in increasing slot order with the oldest waiting
    requests. Returns (new slots, new queue); the inputs are not modified.
    """
    raise NotImplementedError("Exercise 9.6: one scheduler step of continuous batching")
