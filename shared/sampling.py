"""Naive generation: the whole context through the model for every new token (lesson 01).

Each step recomputes keys and values of the entire prefix, so generating n
tokens costs about n forward passes over the context. The KV cache of lesson 09
removes that repetition; this version is the simple, obviously-correct baseline.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from shared import model
from shared.config import Error, ModelConfig


def sample_logits(logits: jax.Array, key: jax.Array, temperature: float = 1.0,
                  top_k: int | None = None, *, top_p: float | None = None) -> jax.Array:
    """One token per row from logits [B, V]; returns int32 [B].

    temperature 0 is greedy (argmax). top_k keeps only the k largest logits before
    sampling, so rare, likely-wrong tokens are never drawn. top_p (nucleus) then keeps
    the fewest likeliest tokens whose probabilities sum to at least top_p.
    """
    if temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits.astype(jnp.float32) / temperature
    if top_k is not None:
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]  # [B, 1]: the k-th largest logit
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p is not None:
        ranked = jnp.sort(logits, axis=-1)[:, ::-1]  # [B, V], largest first
        before = jnp.cumsum(jax.nn.softmax(ranked, axis=-1), axis=-1) - jax.nn.softmax(ranked, axis=-1)
        keep = jnp.maximum((before < top_p).sum(axis=-1, keepdims=True), 1)  # [B, 1]: tokens kept
        cutoff = jnp.take_along_axis(ranked, keep - 1, axis=-1)  # [B, 1]: the smallest kept logit
        logits = jnp.where(logits < cutoff, -jnp.inf, logits)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("config", "temperature", "top_k", "top_p", "forward"))
def _next_token(params, window, length, key, config, temperature, top_k, top_p=None,
                forward=model.forward):
    """window: int32 [1, S] padded after `length` tokens; the padding cannot affect
    position length-1 because attention is causal."""
    logits = forward(params, window, config)  # [1, S, V]
    last = jax.lax.dynamic_index_in_dim(logits, length - 1, axis=1, keepdims=False)  # [1, V]
    return sample_logits(last, key, temperature, top_k, top_p=top_p)[0]


def generate(params: dict, config: ModelConfig, prompt: np.ndarray, max_new_tokens: int, *,
             temperature: float = 1.0, top_k: int | None = None, seed: int = 0,
             top_p: float | None = None, forward: Callable = model.forward) -> np.ndarray:
    """Prompt tokens [P] followed by max_new_tokens sampled tokens: int32 [P + n].

    The model sees at most its last config.seq_len tokens. One program is compiled
    (the window has a fixed shape), whatever the prompt length. forward: the model's
    logits function, model.forward or a drop-in replacement (yours, with --mine).
    """
    if len(prompt) < 1:
        raise Error("the prompt is empty; give at least one token")
    S = config.seq_len
    tokens = list(np.asarray(prompt, np.int32))
    key = jax.random.key(seed)
    for _ in range(max_new_tokens):
        context = tokens[-S:]
        window = np.zeros((1, S), np.int32)
        window[0, :len(context)] = context
        key, sub = jax.random.split(key)
        tokens.append(int(_next_token(params, window, len(context), sub, config,
                                      temperature, top_k, top_p, forward)))
    return np.array(tokens, np.int32)
