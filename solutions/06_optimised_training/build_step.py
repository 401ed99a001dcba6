"""Exercises 6.6-6.7, answered: the optimised training step, and the remat wrapper of a layer.

make_step is a drop-in for shared.train.step.make_step on one device: float32 master
weights cast to the compute dtype inside the differentiated function, gradient sums
accumulated over micro-batches by a scan and divided once by the batch's total weight,
AdamW (shared.train.optim) in float32, the old state donated. remat is a drop-in for
shared.backward.remat, which the model's layer scan calls. Each step is a small helper
(_compute_params, _micro_batches, _gradients, _metrics) so that it reads on its own;
tests/wrong/ replaces one of them at a time with a classic mistake.
"""

from __future__ import annotations

from types import ModuleType
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from shared import model
from shared.config import ModelConfig, TrainConfig
from shared.train.optim import optimizer

POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,  # keep the layer's inputs only
    # weight matmuls (no batch dimension in dot_general's sense) are kept; attention's
    # batched QK^T and AV are recomputed with the elementwise work
    "matmuls": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def remat(layer: Callable, policy: str) -> Callable:
    """Exercise 6.7: layer under jax.checkpoint with the named policy; "none": layer itself."""
    if policy == "none":
        return layer
    if policy not in POLICIES:
        raise ValueError(f"remat: policy must be one of none, {', '.join(POLICIES)}, got {policy!r}")
    return jax.checkpoint(layer, policy=POLICIES[policy])


def _compute_params(params: dict, dtype: str) -> dict:
    """The float32 master weights in the compute dtype. Called inside the differentiated
    function, so autodiff casts each gradient back to float32 on its way out."""
    return model.cast(params, jnp.dtype(dtype))


def _micro_batches(batch: dict, k: int) -> dict:
    """[B, S] arrays -> [k, B/k, S]: row i goes to micro-batch i mod k."""
    return jax.tree.map(lambda a: jnp.swapaxes(a.reshape(a.shape[0] // k, k, *a.shape[1:]), 0, 1),
                        batch)  # [B, S] -> [B/k, k, S] -> [k, B/k, S]


def _gradients(loss_sums: Callable, params: dict, batch: dict, mc: ModelConfig, k: int):
    """((sum of weighted losses, sum of weights), gradient of the sum) over the whole batch,
    one micro-batch's activations alive at a time. Sums add up across micro-batches; means
    would not (packed rows carry different weights)."""
    grad_sums = jax.value_and_grad(
        lambda p, b: loss_sums(_compute_params(p, mc.dtype), b, mc), has_aux=True)
    if k == 1:
        return grad_sums(params, batch)

    def add(acc, micro):
        return jax.tree.map(jnp.add, acc, grad_sums(params, micro)), None

    zeros = ((jnp.zeros(()), jnp.zeros(())), jax.tree.map(jnp.zeros_like, params))
    return jax.lax.scan(add, zeros, _micro_batches(batch, k))[0]


def _metrics(total: jax.Array, count: jax.Array, grads: dict) -> dict:
    sq = jnp.stack([jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)])  # [n_arrays]
    return {"loss": total / count, "grad_norm": jnp.sqrt(sq.sum()), "grad_sq": sq}


def make_step(mc: ModelConfig, tc: TrainConfig, net: ModuleType = model):
    """Exercise 6.6: the loop's jitted step(state, batch) -> (state, metrics), one device."""
    opt = optimizer(tc)

    def step(state, batch):
        params = state["params"]
        (total, count), grads = _gradients(net.loss_sums, params, batch, mc, tc.grad_accum)
        grads = jax.tree.map(lambda g: g / count, grads)  # the mean over every weighted token
        updates, opt_state = opt.update(grads, state["opt_state"], params)
        new = {"params": optax.apply_updates(params, updates), "opt_state": opt_state,
               "step": state["step"] + 1}
        return new, _metrics(total, count, grads)

    # The new state replaces the old one: donating it lets XLA write into its buffers.
    return jax.jit(step, donate_argnums=0)
