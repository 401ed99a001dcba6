"""KV-cache inference: prefill the prompt once, then decode one token per step.

Naive generation (shared.sampling) recomputes the keys and values of the whole
prefix for every new token. They never change, so we keep them: a cache

    k, v    [L, B, K, T, D]   keys and values of every layer, T positions per row and head
    length  [B]               how many positions of each row are filled

holds key/value heads only (K, not H: grouped-query attention shrinks it by G). K comes
before T so that attention's matmuls (batched over B and K) read each head's keys and
values where they lie, without transposing the cache first.
`extend` is the one step both phases use: it writes S new tokens per row at
positions length..length+S-1 (dynamic_update_slice into the fixed-shape cache, so
one compiled program serves every step) and returns the logits at each row's last
new token. Prefill is extend with S = the prompt length; decode is extend with S = 1.

Rows may hold prompts of different lengths (right-padded): a query at position p
attends to cache positions 0..p only, so padding written beyond a row's length is
never read before the next decode step overwrites it.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from shared import attention as attn_lib
from shared import model, sampling
from shared.config import ModelConfig
from shared.quant import QTensor, dense


class InferenceError(ValueError):
    """A generation request cannot be served as asked; the message is one line."""


def init_cache(config: ModelConfig, batch: int, max_len: int | None = None) -> dict:
    """An empty cache for `batch` rows of max_len (default config.seq_len) positions."""
    c = config
    T = max_len or c.seq_len
    shape = (c.n_layers, batch, c.kv_heads, T, c.head_dim)  # [L, B, K, T, D]
    dtype = jnp.dtype(c.dtype)
    return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype),
            "length": jnp.zeros((batch,), jnp.int32)}


def kv_bytes_per_token(config: ModelConfig) -> int:
    """Cache bytes one position takes: keys and values of every layer."""
    c = config
    return 2 * c.n_layers * c.kv_heads * c.head_dim * jnp.dtype(c.dtype).itemsize


def attend(q: jax.Array, k: jax.Array, v: jax.Array, q_pos: jax.Array) -> jax.Array:
    """Attention of queries at positions q_pos to cache positions 0..q_pos.

    q: [B, S, H, D]; k, v: [B, K, T, D] (position t of the cache at index t); q_pos:
    [B, S]. Returns [B, S, H, D] in q's dtype, accumulated in float32. This is
    shared.attention's reference with a per-row position mask: the cache's queries
    are not "the last S of T positions" that its causal mask assumes.
    """
    B, S, H, D = q.shape
    K, T = k.shape[1], k.shape[2]
    qg = q.reshape(B, S, K, H // K, D)  # [B, S, K, G, D]: query heads grouped by their K head
    scores = jnp.einsum("BSKGD,BKTD->BKGST", qg, k, preferred_element_type=jnp.float32) * D ** -0.5
    allowed = jnp.arange(T)[None, None, :] <= q_pos[:, :, None]  # [B, S, T]
    scores = jnp.where(allowed[:, None, None], scores, attn_lib.MASKED)
    weights = jax.nn.softmax(scores, axis=-1)
    out = jnp.einsum("BKGST,BKTD->BSKGD", weights.astype(v.dtype), v,
                     preferred_element_type=jnp.float32)
    return out.reshape(B, S, H, D).astype(q.dtype)  # [B, S, K, G, D] -> [B, S, H, D]


# KVUpdate(state, layer, k_new [B,S,K,D], v_new, positions [B,S]) -> (state, k [B,K,T,D], v):
# store layer `layer`'s new keys and values in the state (arrays with a leading L axis),
# and return every key and value of that layer the queries may read.
KVUpdate = Callable


def write(cache: jax.Array, layer: int, new: jax.Array, positions: jax.Array) -> jax.Array:
    """cache [L, B, K, T, D] with new [B, S, K, D] written at (layer, b, :, positions[b, s]).

    One scatter into the stacked cache: with the cache donated XLA updates it in place,
    moving only the new tokens' bytes. Positions past T are dropped, not written.
    """
    rows = jnp.arange(new.shape[0])[:, None]  # [B, 1], broadcast against positions [B, S]
    # Indices split by a slice put their broadcast shape [B, S] first: the slots are [B, S, K, D].
    return cache.at[layer, rows, :, positions].set(new, mode="drop")


def _contiguous_update(cache: dict, layer: int, k_new, v_new, positions):
    cache = {"k": write(cache["k"], layer, k_new, positions),
             "v": write(cache["v"], layer, v_new, positions)}
    return cache, cache["k"][layer], cache["v"][layer]


def cast_params(params: dict, dtype) -> dict:
    """Float weights in the compute dtype; int8 weights (QTensor) stay as they are."""
    return jax.tree.map(lambda w: w if isinstance(w, QTensor) else w.astype(dtype), params,
                        is_leaf=lambda w: isinstance(w, QTensor))


def split_layers(params: dict) -> dict:
    """params with "blocks" as a list of L per-layer dicts, each weight its own array.

    Call it once, outside jit. A decode step reads every weight once; slicing layer i
    out of a stacked [L, ...] weight inside the compiled step makes the CPU backend copy
    it first (twice the bytes), whereas a separate array is read where it lies.
    Stacked parameters still work, at that cost.
    """
    blocks = params["blocks"]
    if isinstance(blocks, list):
        return params
    n = jax.tree.leaves(blocks)[0].shape[0]
    return {**params, "blocks": [jax.tree.map(lambda w: w[i], blocks) for i in range(n)]}


def prepare(params: dict, config: ModelConfig) -> dict:
    """Parameters as a decode step reads them best: cast to the compute dtype and split by
    layer, once, outside jit (inside, every step would read the float32 copy and write
    the cast one, then copy each layer out of the stack)."""
    return split_layers(cast_params(params, jnp.dtype(config.dtype)))


def forward_layers(params: dict, tokens: jax.Array, positions: jax.Array, kv_state,
                   update: KVUpdate, config: ModelConfig):
    """The model's blocks over tokens [B, S] at positions [B, S], reading and writing keys and
    values through `update`. kv_state: a pytree whose arrays have a leading L axis.
    Returns (hidden [B, S, E] after the final norm, kv_state).

    The same block as shared.model.block (pre-norm, rotary, GQA, gelu MLP), with the
    attention split at the cache: project, rotate, store, attend to everything stored.
    A Python loop over layers rather than lax.scan: see split_layers.
    """
    c = config
    p = cast_params(split_layers(params), jnp.dtype(c.dtype))
    x = p["embed"][tokens]  # [B, S, E]
    for i, w in enumerate(p["blocks"]):
        h = model.rms_norm(x, w["attn_norm"])
        q = model.rope(dense("BSE,EHD->BSHD", h, w["wq"]), positions, c.rope_base)
        k = model.rope(dense("BSE,EKD->BSKD", h, w["wk"]), positions, c.rope_base)
        v = dense("BSE,EKD->BSKD", h, w["wv"])
        kv_state, k_all, v_all = update(kv_state, i, k, v, positions)
        x = x + dense("BSHD,HDE->BSE", attend(q, k_all, v_all, positions), w["wo"])
        h = model.rms_norm(x, w["mlp_norm"])
        x = x + dense("BSF,FE->BSE", jax.nn.gelu(dense("BSE,EF->BSF", h, w["w_up"])), w["w_down"])
    return model.rms_norm(x, p["final_norm"]), kv_state


def last_logits(params: dict, hidden: jax.Array, n_valid: jax.Array, config: ModelConfig) -> jax.Array:
    """Float32 logits [B, V] at each row's last new token, hidden[b, n_valid[b] - 1]."""
    idx = jnp.maximum(n_valid - 1, 0)[:, None, None]  # [B, 1, 1]; rows with no new token: any
    last = jnp.take_along_axis(hidden, idx, axis=1)[:, 0]  # [B, E]
    unembed = cast_params({"u": params["unembed"]}, jnp.dtype(config.dtype))["u"]
    return dense("BE,EV->BV", last, unembed).astype(jnp.float32)


def extend(params: dict, cache: dict, tokens: jax.Array, n_valid: jax.Array,
           config: ModelConfig) -> tuple[jax.Array, dict]:
    """Run tokens [B, S] at positions cache.length..+S; logits [B, V] at the last valid one.

    n_valid [B] int: how many of each row's S tokens are real (the rest is padding, or
    0 for a row that takes no step); the row's length grows by it. Every row needs
    length + S <= T.
    """
    B, S = tokens.shape
    positions = cache["length"][:, None] + jnp.arange(S)  # [B, S]
    kv = {"k": cache["k"], "v": cache["v"]}
    hidden, kv = forward_layers(params, tokens, positions, kv, _contiguous_update, config)
    return last_logits(params, hidden, n_valid, config), {**kv, "length": cache["length"] + n_valid}


def sample(logits: jax.Array, seeds: jax.Array, counts: jax.Array, *, temperature: float = 0.0,
           top_k: int | None = None, top_p: float | None = None) -> jax.Array:
    """One token per row of logits [B, V]; int32 [B].

    Row b draws with key fold_in(key(seeds[b]), counts[b]): its request's seed and the
    index of the token in its output. A request's tokens then do not depend on which
    other requests share its batch, nor on the step at which it joined.
    """
    def one(row, seed, count):
        key = jax.random.fold_in(jax.random.key(seed), count)
        return sampling.sample_logits(row[None], key, temperature, top_k, top_p=top_p)[0]

    return jax.vmap(one)(logits, seeds, counts)


@functools.partial(jax.jit, static_argnames=("config", "temperature", "top_k", "top_p"),
                   donate_argnames=("cache",))
def _step(params, cache, tokens, n_valid, seeds, counts, config, temperature, top_k, top_p):
    logits, cache = extend(params, cache, tokens, n_valid, config)
    return sample(logits, seeds, counts, temperature=temperature, top_k=top_k, top_p=top_p), cache


def check_fits(n_prompt: int, max_new_tokens: int, max_len: int) -> None:
    """A prompt of n tokens plus m new ones needs n + m - 1 cache positions (the last
    token is never fed back); raise InferenceError naming the numbers if they do not fit."""
    if n_prompt < 1:
        raise InferenceError("the prompt is empty; give at least one token")
    if max_new_tokens < 1:
        raise InferenceError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if n_prompt + max_new_tokens - 1 > max_len:
        raise InferenceError(f"a prompt of {n_prompt} tokens plus {max_new_tokens} new tokens "
                             f"needs {n_prompt + max_new_tokens - 1} cache positions; the "
                             f"cache holds {max_len}")


def generate(params: dict, config: ModelConfig, prompts: list[np.ndarray],
             max_new_tokens: int | list[int], *, temperature: float = 0.0,
             top_k: int | None = None, top_p: float | None = None,
             seeds: list[int] | None = None, max_len: int | None = None,
             pad_to: int | None = None) -> list[np.ndarray]:
    """New tokens for each prompt, decoded together as one static batch: int32 arrays.

    All rows prefill together (right-padded to the longest prompt), then decode in
    lockstep until the longest request is done: a finished row keeps its slot, the
    waste that continuous batching (shared.engine) removes. max_len: cache positions
    (default config.seq_len). pad_to: pad prompts to this length instead of the longest,
    so calls with different prompt lengths share one compiled prefill.
    """
    B = len(prompts)
    T = max_len or config.seq_len
    new = [max_new_tokens] * B if isinstance(max_new_tokens, int) else list(max_new_tokens)
    for p, m in zip(prompts, new):
        check_fits(len(p), m, T)
    lengths = np.array([len(p) for p in prompts], np.int32)
    tokens = np.zeros((B, max(pad_to or 0, lengths.max())), np.int32)  # [B, S], right-padded
    for b, p in enumerate(prompts):
        tokens[b, :len(p)] = p
    seeds = np.asarray(seeds if seeds is not None else [0] * B, np.int32)
    opts = dict(config=config, temperature=temperature, top_k=top_k, top_p=top_p)
    params, cache = prepare(params, config), init_cache(config, B, T)
    out = np.zeros((B, max(new)), np.int32)
    token, cache = _step(params, cache, tokens, lengths, seeds, np.zeros(B, np.int32), **opts)
    out[:, 0] = token
    for i in range(1, max(new)):
        active = (np.array(new) > i).astype(np.int32)  # finished rows stop growing their cache
        token, cache = _step(params, cache, token[:, None], active, seeds,
                             np.full(B, i, np.int32), **opts)
        out[:, i] = token
    return [out[b, :new[b]] for b in range(B)]
