"""A decoder-only transformer as pure functions over a parameter pytree, and its loss (lesson 01).

The course's letters, used in every einsum and shape comment:

    B  batch                      L  layers
    S  sequence (query positions) T  sequence (key/value positions)
    E  model width (d_model)      V  vocabulary
    H  query heads                K  key/value heads (K = H without GQA)
    G  query heads per K head     D  head width (E = H * D)
    F  MLP width

Parameters (the pytree `init` returns; shared.params describes each weight once):

    embed       [V, E]            token embedding
    blocks      attn_norm [L, E]  wq [L, E, H, D]  wk, wv [L, E, K, D]  wo [L, H, D, E]
                mlp_norm  [L, E]  w_up [L, E, F]   w_down [L, F, E]
    final_norm  [E]
    unembed     [E, V]            output projection (not tied to embed)

A block is pre-norm: x + attn(rmsnorm(x)), then x + mlp(rmsnorm(x)). Positions are
rotary (RoPE) on queries and keys, so there is no position table.

Later lessons plug into seams that do nothing until they are used:
    config.attention     which attention implementation (shared.attention, lesson 05)
    config.mlp, remat    what the backward pass keeps (shared.backward, lesson 06)
    config.n_experts     a mixture-of-experts MLP (shared.moe, lesson 06): w_router [L, E, X],
                         w_up [L, X, E, F], w_down [L, X, F, E]
    sharding.hint        how a sharded step splits the activations (shared.sharding, lesson 06)
    kv                   a key/value cache: the same blocks prefill and decode (lesson 09)
    matmul               also takes int8 weights (shared.quant, lesson 09)
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
from typing import Protocol

import jax
import jax.numpy as jnp

from shared import params as table
from shared.attention import TAKE_POSITIONS, attention
from shared.config import ModelConfig
from shared.quant import QTensor
from shared.sharding import hint


def init(config: ModelConfig, key: jax.Array) -> dict:
    """Random parameters, as shared.params describes them (GPT-2's initialisation)."""
    c = config.validate()
    rows = table.rows(c)
    keys = iter(jax.random.split(key, max(8, sum(w.init != "ones" for _, w, _ in rows))))
    tree: dict = {"blocks": {}}
    for path, w, stacked in rows:
        shape = ((c.n_layers,) if stacked else ()) + w.dims(c)
        if w.init == "ones":
            array = jnp.ones(shape)
        else:
            array = w.std(c) * jax.random.normal(next(keys), shape, jnp.float32)
        (tree["blocks"] if stacked else tree)[path[-1]] = array
    return tree


def param_count(params: dict) -> int:
    return sum(x.size for x in jax.tree.leaves(params))


def matmul_param_count(config: ModelConfig) -> int:
    """Parameters that take part in a matmul per token: all but the embedding table and norms.
    With experts (shared.moe) a token meets top_k of the X experts: top_k / X of their weights."""
    def active(w):  # the fraction of this weight one token multiplies by
        return config.top_k / config.n_experts if "X" in w.shape[:1] else 1
    return int(sum(math.prod(w.dims(config)) * (config.n_layers if stacked else 1) * active(w)
                   for _, w, stacked in table.rows(config) if w.contracted))


def train_flops_per_token(config: ModelConfig) -> int:
    """Model FLOPs to train on one token: 6 * matmul params + 12 * L * S * E.

    2 FLOPs per multiply-add, times 3 for forward + backward (the backward does two
    matmuls per forward one). The second term is attention's QK^T and AV over the
    full context (PaLM, appendix B); a causal kernel that skips masked blocks does
    about half of it, but MFU counts the model's FLOPs, not the kernel's.
    """
    c = config
    return 6 * matmul_param_count(c) + 12 * c.n_layers * c.seq_len * c.d_model


def rms_norm(x: jax.Array, scale: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Normalise the last axis to unit root-mean-square, in float32 for stability."""
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
    return (x32 * scale).astype(x.dtype)


def rope(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """Rotate pairs (x[i], x[i + D/2]) by angle position * base^(-2i/D).

    x: [B, S, N, D] (N heads), positions: [B, S]. Dot products between rotated
    queries and keys then depend only on the distance between their positions.
    """
    D = x.shape[-1]
    freqs = base ** (-jnp.arange(0, D // 2, dtype=jnp.float32) * 2 / D)  # [D/2]
    angle = positions.astype(jnp.float32)[:, :, None, None] * freqs  # [B, S, 1, D/2]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)  # 2 x [B, S, N, D/2]
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return rotated.astype(x.dtype)


def matmul(spec: str, x: jax.Array, w: jax.Array | QTensor, dtype=None) -> jax.Array:
    """jnp.einsum(spec, x, w) in dtype (default x's), its products summed in float32, for a weight w
    whose letters are all in x or the output (every weight of the model).

    The sum runs over w's axes in w's stored order: einsum would pick its own order
    (D before H for "BSHD,HDE->BSE") and the CPU compiler would then transpose the whole
    weight to match. GPUs and TPUs sum bfloat16 products in float32 inside the matmul
    unit; a CPU is asked for a float32 result, cast back (lesson 06 measures why), and so
    are the two matmuls of its backward pass (_cpu_matmul). One row in bfloat16 (batch-1
    decoding) is computed as two on a CPU, whose one-row kernel is slow (lesson 09 §2).
    w may be an int8 QTensor (lesson 09): converted to x's dtype inside the matmul, its
    per-output-channel scale applied to the result.
    """
    if isinstance(w, QTensor):
        y = matmul(spec, x, w.q.astype(x.dtype), dtype)
        return y * w.output_scale(spec).astype(y.dtype)
    dtype = jnp.dtype(x.dtype if dtype is None else dtype)
    if jax.default_backend() == "cpu" and dtype == x.dtype != jnp.float32:
        return _cpu_matmul(spec, x, w)
    return _dot(spec, x, w, dtype)


def _dot(spec: str, x: jax.Array, w: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """matmul's arithmetic: one dot_general summing over w's letters missing from the output."""
    inputs, out = spec.split("->")
    xs, ws = inputs.split(",")
    summed = [c for c in ws if c not in out]
    dims = ((tuple(xs.index(c) for c in summed), tuple(ws.index(c) for c in summed)), ((), ()))
    cpu = jax.default_backend() == "cpu"
    free = [i for i, c in enumerate(xs) if c not in summed]  # y's leading axes, in x's order
    one_row = cpu and x.dtype != jnp.float32 and free and all(x.shape[i] == 1 for i in free)
    if one_row:  # XLA:CPU runs a bfloat16 matrix-vector product as a loop ~10x slower than
        x = jnp.concatenate([x, x], axis=free[0])  # its matmul: a second row (batch-1 decode)
    wide = cpu or dtype == jnp.float32
    y = jax.lax.dot_general(x, w, dims, preferred_element_type=jnp.float32 if wide else None)
    if one_row:
        y = jax.lax.slice_in_dim(y, 0, 1, axis=0)  # the real row
    order = [c for c in xs if c not in summed] + [c for c in ws if c not in summed]  # y's letters
    return jnp.transpose(y, [order.index(c) for c in out]).astype(dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _cpu_matmul(spec: str, x: jax.Array, w: jax.Array) -> jax.Array:
    """matmul in bfloat16 on a CPU, whose backward pass is the two matmuls a GPU would do.

    Autodiff's would not be: the cast back to bfloat16 hands the matmul a float32 gradient,
    so XLA:CPU would run dx = g w^T and dw = x^T g in float32, slower than in bfloat16.
    """
    return _dot(spec, x, w, x.dtype)


def _cpu_matmul_fwd(spec, x, w):
    return _dot(spec, x, w, x.dtype), (x, w)


def _cpu_matmul_bwd(spec, res, g):
    x, w = res
    (xs, ws), out = spec.split("->")[0].split(","), spec.split("->")[1]
    g = g.astype(x.dtype)
    return _dot(f"{out},{ws}->{xs}", g, w, x.dtype), _dot(f"{xs},{out}->{ws}", x, g, w.dtype)


_cpu_matmul.defvjp(_cpu_matmul_fwd, _cpu_matmul_bwd)


class KVCache(Protocol):
    """Where decoding keeps keys and values (lesson 09: shared.inference, shared.paged)."""

    def update(self, layer: int, k: jax.Array, v: jax.Array, positions: jax.Array
               ) -> tuple["KVCache", jax.Array, jax.Array, jax.Array]:
        """Store layer `layer`'s new keys and values k, v [B, S, K, D] at positions [B, S].
        Returns the cache, every key and value [B, T, K, D] the queries may read, and
        the positions [B, T] of those keys."""


def attention_block(x: jax.Array, p: dict, positions: jax.Array, segment_ids: jax.Array | None,
                    config: ModelConfig, kv: KVCache | None = None, layer: int | jax.Array = 0
                    ) -> tuple[jax.Array, KVCache | None]:
    """Causal self-attention of one layer. x: [B, S, E] -> ([B, S, E], kv).

    Without a cache, every query reads the keys of this x (the last S of S positions);
    with one, it reads every key the cache holds at or before its position.
    """
    q = hint(matmul("BSE,EHD->BSHD", x, p["wq"]), "batch", "sequence", "heads", None)
    k = hint(matmul("BSE,EKD->BSKD", x, p["wk"]), "batch", "sequence", "kv_heads", None)
    v = hint(matmul("BSE,EKD->BSKD", x, p["wv"]), "batch", "sequence", "kv_heads", None)
    q, k = rope(q, positions, config.rope_base), rope(k, positions, config.rope_base)
    if kv is None:
        out = attention(q, k, v, segment_ids=segment_ids, impl=config.attention)  # [B, S, H, D]
    else:
        kv, k, v, k_positions = kv.update(layer, k, v, positions)  # k, v: [B, T, K, D]
        # pallas and cudnn read no explicit positions; the reference is the same function and does.
        impl = config.attention if config.attention in TAKE_POSITIONS else "reference"
        out = attention(q, k, v, segment_ids=segment_ids, q_positions=positions,
                        k_positions=k_positions, impl=impl)
    return matmul("BSHD,HDE->BSE", out, p["wo"]), kv


def mlp(x: jax.Array, w_up: jax.Array, w_down: jax.Array) -> jax.Array:
    """gelu(x @ w_up) @ w_down, position-wise. x: [B, S, E] -> [B, S, E]."""
    h = hint(matmul("BSE,EF->BSF", x, w_up), "batch", "sequence", "mlp")
    return matmul("BSF,FE->BSE", jax.nn.gelu(h.astype(jnp.float32)).astype(x.dtype), w_down)


def _load(path: str):
    """A function named "module:function", imported when first asked for: the model does not
    import the later lessons' modules unless the config switches them on."""
    module, function = path.split(":")
    return getattr(importlib.import_module(module), function)


def mlp_block(x: jax.Array, p: dict, config: ModelConfig) -> jax.Array:
    """The MLP of one layer, with autodiff's backward or the hand-written one (config.mlp); with
    config.n_experts > 0 a mixture of experts (shared.moe), whose load-balancing loss it reports
    to loss_sums (shared.moe.collect)."""
    if config.n_experts:
        y, aux = _load("shared.moe:moe")(x, p, config)
        _load("shared.moe:report")(aux)
        return y
    fn = mlp if config.mlp == "autodiff" else _load("shared.backward:mlp")
    return fn(x, p["w_up"], p["w_down"])


def block(x: jax.Array, p: dict, positions: jax.Array, segment_ids: jax.Array | None,
          config: ModelConfig, kv: KVCache | None = None, layer: int | jax.Array = 0
          ) -> tuple[jax.Array, KVCache | None]:
    """One transformer layer, for training, prefill and decode alike. x: [B, S, E].

    The named scopes label this layer's ops in a profile (lesson 08): block/attention/...
    """
    with jax.named_scope("block"):
        with jax.named_scope("attention"):
            h, kv = attention_block(rms_norm(x, p["attn_norm"]), p, positions, segment_ids,
                                    config, kv, layer)
        x = x + h
        with jax.named_scope("mlp"):
            x = x + mlp_block(rms_norm(x, p["mlp_norm"]), p, config)
    return x, kv


def cast(tree, dtype):
    """Float weights in the compute dtype; int8 weights (QTensor) stay as they are."""
    return jax.tree.map(lambda w: w if isinstance(w, QTensor) else w.astype(dtype), tree,
                        is_leaf=lambda w: isinstance(w, QTensor))


def hidden(params: dict, tokens: jax.Array, config: ModelConfig, *,
           positions: jax.Array | None = None, segment_ids: jax.Array | None = None,
           kv: KVCache | None = None) -> tuple[jax.Array, KVCache | None]:
    """The final-normed residual stream [B, S, E] of tokens [B, S], and the cache.

    params["blocks"] stacked over L runs the layers with lax.scan (one layer compiled
    once); a list of per-layer dicts runs a Python loop, which decoding prefers
    (shared.inference.prepare says why), and so does any call with a cache, whose
    update takes the layer as a Python int (shared.inference.Cache keeps one buffer per
    layer, which a scan could not index).
    """
    B, S = tokens.shape
    if positions is None:
        positions = jnp.broadcast_to(jnp.arange(S), (B, S))
    dtype = jnp.dtype(config.dtype)
    # Look up, then cast: the embedding's gradient then adds up in float32, whatever the dtype.
    x = hint(params["embed"][tokens].astype(dtype), "batch", "sequence", "embed")  # [B, S, E]
    blocks = params["blocks"]
    if kv is not None and not isinstance(blocks, list):
        L = jax.tree.leaves(blocks)[0].shape[0]
        blocks = [jax.tree.map(lambda w, i=i: w[i], blocks) for i in range(L)]
    if isinstance(blocks, list):
        for i, p in enumerate(blocks):
            with jax.named_scope(f"layer{i}"):
                x, kv = block(x, cast(p, dtype), positions, segment_ids, config, kv, i)
    else:
        def layer(carry, xs):
            (x, kv), (p, i) = carry, xs
            x, kv = block(x, cast(p, dtype), positions, segment_ids, config, kv, i)
            return (hint(x, "batch", "sequence", "embed"), kv), None

        if config.n_experts:  # lesson 06: the layers' load-balancing losses ride in the carry
            layer = _load("shared.moe:with_aux")(layer)
        if config.remat != "none":  # lesson 06
            layer = _load("shared.backward:remat")(layer, config.remat)
        L = jax.tree.leaves(blocks)[0].shape[0]
        if config.n_experts:
            ((x, kv), aux), _ = jax.lax.scan(layer, ((x, kv), jnp.zeros(())),
                                             (blocks, jnp.arange(L)))
            _load("shared.moe:report")(aux)
        else:
            (x, kv), _ = jax.lax.scan(layer, (x, kv), (blocks, jnp.arange(L)))
    return rms_norm(x, params["final_norm"]), kv


def unembed(params: dict, x: jax.Array, config: ModelConfig) -> jax.Array:
    """Float32 logits [B, S, V] of final-normed hidden states x [B, S, E]."""
    return matmul("BSE,EV->BSV", x, cast(params["unembed"], jnp.dtype(config.dtype)), jnp.float32)


def forward(params: dict, tokens: jax.Array, config: ModelConfig, *,
            positions: jax.Array | None = None,
            segment_ids: jax.Array | None = None) -> jax.Array:
    """Logits for every position.

    tokens: [B, S] int; positions: [B, S] (default 0..S-1, per document when packing);
    segment_ids: [B, S] int, tokens attend only within their own segment (None: one
    document per row). Returns float32 logits [B, S, V]; logits at position t depend
    only on tokens[:, :t+1].
    """
    x, _ = hidden(params, tokens, config, positions=positions, segment_ids=segment_ids)
    return hint(unembed(params, x, config), "batch", "sequence", "vocab")


# ---- the loss, beside the model it scores ----

def loss_sums(params: dict, batch: dict, config: ModelConfig) -> tuple[jax.Array, jax.Array]:
    """(sum of weight * cross-entropy, sum of weights) over a batch of [B, S] arrays:
    inputs, targets, and optionally positions, segment_ids and weights (default 1).

    Sums rather than a mean, so that micro-batches add up to exactly the big batch.
    With experts (shared.moe), config.aux_loss times the layers' mean load-balancing loss is
    added once per counted target (aux * count), so that sum / count is the mean cross-entropy
    plus the weighted loss.
    """
    collect = _load("shared.moe:collect") if config.n_experts else contextlib.nullcontext
    with collect() as aux:
        logits = forward(params, batch["inputs"], config, positions=batch.get("positions"),
                         segment_ids=batch.get("segment_ids"))  # [B, S, V] float32
    logprobs = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logprobs, batch["targets"][..., None], axis=-1)[..., 0]  # [B, S]
    weights = batch.get("weights")
    if weights is None:
        total, count = nll.sum(), jnp.asarray(nll.size, jnp.float32)
    else:
        total, count = (nll * weights).sum(), weights.sum()
    if aux:
        total = total + config.aux_loss * (sum(aux) / config.n_layers) * count
    return total, count


def loss_fn(params: dict, tokens: jax.Array, targets: jax.Array, config: ModelConfig, *,
            positions: jax.Array | None = None, segment_ids: jax.Array | None = None,
            weights: jax.Array | None = None) -> jax.Array:
    """Mean cross-entropy in nats of targets [B, S] under the model's logits, over the
    targets whose weight is 1 (all of them when weights is None)."""
    batch = {"inputs": tokens, "targets": targets, "positions": positions,
             "segment_ids": segment_ids, "weights": weights}
    total, count = loss_sums(params, {k: v for k, v in batch.items() if v is not None}, config)
    return total / count
