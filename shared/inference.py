"""KV-cache inference: prefill the prompt once, then decode a token per step (lessons 08-09).

Naive generation (shared.sampling) recomputes the keys and values of the whole
prefix for every new token. They never change, so we keep them: a cache

    k       L x [B, K, D, T]   keys, one buffer per layer: T positions per row and head, last
    v       L x [B, K, T, D]   values, the positions before the head width
    length  [B]                how many positions of each row are filled

holds key/value heads only (K, not H: grouped-query attention shrinks it by G). K comes
before the positions so that each head's keys and values are one block for attention's
matmuls (batched over B and K), and each block is laid out as its matmul reads it: the
scores q . k contract over D, so a head's keys are a [D, T] matrix; the weighted sum
p @ v contracts over T, so its values are [T, D]. Stored [T, D], the keys would be
transposed into [D, T] by a copy of the layer's keys at every step; stacked into one
[L, ...] array, each layer's slice would be copied out for the dots (lesson 08 §5
measures both).

The model is shared.model's, unchanged: its blocks take the cache as an argument and
call cache.update for each layer (shared.model.KVCache). `extend` is the one step both
phases use: it writes S new tokens per row at positions length..length+S-1 (a scatter
into the fixed-shape cache, so one compiled program serves every step) and returns the
logits at each row's last new token. Prefill is extend with S = the prompt length;
decode is extend with S = 1.

Rows may hold prompts of different lengths (right-padded): a query at position p
attends to cache positions 0..p only, so padding written beyond a row's length is
never read before the next decode step overwrites it.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from shared import compile_options, model, sampling
from shared.config import Error, ModelConfig


class InferenceError(Error):
    """A generation request cannot be served as asked; the message is one line."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Cache:
    """A contiguous KV cache: max_len positions reserved for every row, one buffer per layer
    (model.KVCache)."""

    k: tuple[jax.Array, ...]  # L arrays [B, K, D, T]
    v: tuple[jax.Array, ...]  # L arrays [B, K, T, D]
    length: jax.Array  # int32 [B]: positions filled in each row

    def update(self, layer, k, v, positions):
        B, S, K, _ = k.shape
        # Row, head and position of every new token's slot, [B, S, K] each; the slots are then
        # [B, S, K, D] in both buffers, k's and v's shape. A position past T is dropped, not
        # clamped onto a filled one. Written with index arrays, the scatter updates the donated
        # buffer in place and the dots read that buffer; written as a dynamic_update_slice, it
        # was also run into a fresh copy of the layer for the dots (lesson 08 §5).
        rows, heads, slots = jnp.broadcast_arrays(jnp.arange(B)[:, None, None], jnp.arange(K),
                                                  positions[:, :, None])
        keys = self.k[layer].at[rows, heads, :, slots].set(k, mode="drop")  # [B, K, D, T]
        values = self.v[layer].at[rows, heads, slots].set(v, mode="drop")  # [B, K, T, D]
        put = lambda layers, new: layers[:layer] + (new,) + layers[layer + 1:]
        cache = dataclasses.replace(self, k=put(self.k, keys), v=put(self.v, values))
        T = values.shape[2]
        # Views [B, T, K, D]: the attention reads them head-major again.
        return (cache, jnp.einsum("BKDT->BTKD", keys), jnp.einsum("BKTD->BTKD", values),
                jnp.broadcast_to(jnp.arange(T), (B, T)))


def init_cache(config: ModelConfig, batch: int, max_len: int | None = None) -> Cache:
    """An empty cache for `batch` rows of max_len (default config.seq_len) positions."""
    c = config
    T = max_len or c.seq_len
    K, D, dtype = c.kv_heads, c.head_dim, jnp.dtype(c.dtype)
    layers = lambda shape: tuple(jnp.zeros(shape, dtype) for _ in range(c.n_layers))
    return Cache(layers((batch, K, D, T)), layers((batch, K, T, D)), jnp.zeros((batch,), jnp.int32))


def kv_bytes_per_token(config: ModelConfig) -> int:
    """Cache bytes one position takes: keys and values of every layer."""
    c = config
    return 2 * c.n_layers * c.kv_heads * c.head_dim * jnp.dtype(c.dtype).itemsize


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
    return split_layers(model.cast(params, jnp.dtype(config.dtype)))


def run(params: dict, kv: model.KVCache, tokens: jax.Array, positions: jax.Array,
        n_valid: jax.Array, config: ModelConfig) -> tuple[jax.Array, model.KVCache]:
    """The model over tokens [B, S] at positions [B, S], through a cache: float32 logits
    [B, V] at each row's last valid token (n_valid [B] of the S are real), and the cache."""
    x, kv = model.hidden(params, tokens, config, positions=positions, kv=kv)  # [B, S, E]
    idx = jnp.maximum(n_valid - 1, 0)[:, None, None]  # [B, 1, 1]; rows with no new token: any
    last = jnp.take_along_axis(x, idx, axis=1)  # [B, 1, E]
    return model.unembed(params, last, config)[:, 0], kv


def extend(params: dict, cache: Cache, tokens: jax.Array, n_valid: jax.Array,
           config: ModelConfig) -> tuple[jax.Array, Cache]:
    """Run tokens [B, S] at positions cache.length..+S; logits [B, V] at the last valid one.

    n_valid [B] int: how many of each row's S tokens are real (the rest is padding, or
    0 for a row that takes no step); the row's length grows by it. Every row needs
    length + S <= T.
    """
    positions = cache.length[:, None] + jnp.arange(tokens.shape[1])  # [B, S]
    logits, cache = run(params, cache, tokens, positions, n_valid, config)
    return logits, dataclasses.replace(cache, length=cache.length + n_valid)


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


def _extend_and_sample(params, cache, tokens, n_valid, seeds, counts, config, temperature,
                       top_k, top_p):
    """One extend and one sample: the next token of each row as the next step's tokens [B, 1]."""
    logits, cache = extend(params, cache, tokens, n_valid, config)
    token = sample(logits, seeds, counts, temperature=temperature, top_k=top_k, top_p=top_p)
    return token[:, None], cache


@functools.cache
def _jitted(dtype: str):
    """_extend_and_sample jitted with the compiler options of its compute dtype."""
    return jax.jit(_extend_and_sample, static_argnames=("config", "temperature", "top_k", "top_p"),
                   donate_argnames=("cache",), compiler_options=compile_options.for_dtype(dtype))


def _step(params, cache, tokens, n_valid, seeds, counts, *, config, **sampling_options):
    """The compiled step for config's dtype: (next tokens [B, 1], cache)."""
    return _jitted(config.dtype)(params, cache, tokens, n_valid, seeds, counts, config=config,
                                 **sampling_options)


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
    token, cache = _step(params, cache, tokens, lengths, seeds, np.zeros(B, np.int32), **opts)
    out = [token]  # [B, 1] each, left on the device: the host queues step i + 1 while step i runs
    for i in range(1, max(new)):
        active = (np.array(new) > i).astype(np.int32)  # finished rows stop growing their cache
        token, cache = _step(params, cache, token, active, seeds, np.full(B, i, np.int32), **opts)
        out.append(token)
    out = np.concatenate(jax.device_get(out), axis=1)  # [B, max(new)], read once at the end
    return [out[b, :new[b]] for b in range(B)]
