"""A mixture-of-experts MLP: a router sends each token to top_k of X expert MLPs (lesson 06).

GShard's and Switch Transformer's formulation, written as one-hot einsums so that every shape
is static and a sharded step can split the experts over devices:

    router   probs [B, S, X] = softmax(x @ w_router); each token picks its top_k experts
    slots    each expert takes at most C = ceil(capacity_factor * S * top_k / X) tokens of a
             sequence (a sequence is a group: its slots do not depend on how the batch is split)
    dispatch [B, S, X, C]  1 where token s sits in slot c of expert x; a token past its
             expert's C slots is dropped: its MLP output is 0 and it passes on the residual
    combine  [B, S, X, C]  dispatch times the token's gate for that expert
    experts  x_e [X, B, C, E] = dispatch . x;  y_e = gelu(x_e @ w_up[x]) @ w_down[x]
    output   y [B, S, E] = combine . y_e

With the experts on the data axis (shared.sharding: fsdp), the dispatch einsum turns
[B_data, ...] tokens into [X_data, ...] expert inputs and the combine turns them back: the
compiler inserts an all-to-all for each (and for each in the backward pass).

The load-balancing loss (Switch, eq. 4) is X * sum_i f_i * P_i, with f_i the fraction of the
tokens' top_k choices that pick expert i and P_i the mean router probability of expert i: 1
when the router spreads tokens evenly, up to X when it sends everything to one expert. The
model adds config.aux_loss times its mean over layers to the cross-entropy (shared.model.loss_sums).

Gates: with top_k = 1 the gate is the router's probability (Switch), so the router learns from
the loss through it; with top_k > 1 the chosen probabilities are renormalised to sum to 1
(GShard, Mixtral). Always autodiff's backward pass, whatever config.mlp says.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Callable, Iterator

import jax
import jax.numpy as jnp

from shared.config import ModelConfig
from shared.model import matmul
from shared.sharding import hint


def capacity(config: ModelConfig, S: int) -> int:
    """C, the slots of each expert per sequence of S tokens (never more than S: a token picks an
    expert at most once)."""
    return min(S, math.ceil(config.capacity_factor * S * config.top_k / config.n_experts))


def balance_loss(probs: jax.Array, choice: jax.Array) -> jax.Array:
    """Switch's load-balancing loss X * sum_i f_i * P_i. probs: [..., X] router probabilities;
    choice: [..., k, X] one-hot of each token's k chosen experts (before any is dropped)."""
    X, k = probs.shape[-1], choice.shape[-2]
    f = choice.sum(-2).reshape(-1, X).mean(0) / k  # [X] fraction of choices per expert
    P = probs.reshape(-1, X).mean(0)  # [X]
    return X * jnp.sum(f * P)


def route(x: jax.Array, w_router: jax.Array, config: ModelConfig
          ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(dispatch, combine) [B, S, X, C] float32 and the load-balancing loss, for x [B, S, E]."""
    B, S, _ = x.shape
    X, k, C = config.n_experts, config.top_k, capacity(config, S)
    probs = jax.nn.softmax(matmul("BSE,EX->BSX", x, w_router, jnp.float32), axis=-1)
    gates, chosen = jax.lax.top_k(probs, k)  # [B, S, k] each
    if k > 1:
        gates = gates / gates.sum(-1, keepdims=True)
    choice = jax.nn.one_hot(chosen, X, dtype=jnp.float32)  # [B, S, k, X]
    # Slots fill with every token's first choice, in sequence order, then the second choices.
    order = jnp.swapaxes(choice, 1, 2).reshape(B, k * S, X)
    slot = jnp.swapaxes((jnp.cumsum(order, axis=1) - 1).reshape(B, k, S, X), 1, 2)  # [B, S, k, X]
    kept = choice * (slot < C)  # over capacity: dropped
    dispatch_k = kept[..., None] * jax.nn.one_hot(slot.astype(jnp.int32), C)  # [B, S, k, X, C]
    combine = jnp.einsum("BSk,BSkXC->BSXC", gates, dispatch_k)
    return dispatch_k.sum(2), combine, balance_loss(probs, choice)


def _batched(spec: str, x: jax.Array, w: jax.Array) -> jax.Array:
    """One matmul per expert (X is a batch dimension, which shared.model.matmul does not take),
    products summed in float32 as there."""
    return jnp.einsum(spec, x, w, preferred_element_type=jnp.float32).astype(x.dtype)


def moe(x: jax.Array, p: dict, config: ModelConfig) -> tuple[jax.Array, jax.Array]:
    """The routed MLP of one layer: (y [B, S, E], load-balancing loss) for x [B, S, E].

    p holds w_router [E, X], w_up [X, E, F] and w_down [X, F, E] (shared.params.MOE)."""
    dispatch, combine, aux = route(x, p["w_router"], config)
    expert_side = ("experts", "expert_groups", None)
    xe = hint(jnp.einsum("BSXC,BSE->XBCE", dispatch.astype(x.dtype), x), *expert_side, None)
    h = hint(_batched("XBCE,XEF->XBCF", xe, p["w_up"]), *expert_side, "mlp")
    ye = _batched("XBCF,XFE->XBCE", jax.nn.gelu(h.astype(jnp.float32)).astype(x.dtype), p["w_down"])
    ye = hint(ye, *expert_side, None)
    y = jnp.einsum("BSXC,XBCE->BSE", combine.astype(x.dtype), ye)
    return hint(y, "batch", "sequence", "embed"), aux


# ---- carrying each layer's loss out of the model, without changing what its functions return ----

_collected: contextvars.ContextVar = contextvars.ContextVar("moe_aux", default=None)


@contextlib.contextmanager
def collect() -> Iterator[list]:
    """A list that every report() made while it is open (in the same trace) appends to."""
    got: list = []
    token = _collected.set(got)
    try:
        yield got
    finally:
        _collected.reset(token)


def report(aux: jax.Array) -> None:
    got = _collected.get()
    if got is not None:
        got.append(aux)


def with_aux(layer: Callable) -> Callable:
    """A scan body (carry, xs) -> (carry, ys) as one whose carry is (carry, sum of the losses its
    layers reported): a value made inside a scan cannot be appended to a list outside it."""
    def body(carry, xs):
        inner, total = carry
        with collect() as got:
            inner, ys = layer(inner, xs)
        return (inner, total + sum(got, jnp.zeros((), jnp.float32))), ys

    return body
