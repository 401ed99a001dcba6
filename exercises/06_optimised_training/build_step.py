"""Build exercise (6.6-6.7): the optimised training step, written by you.

You write the step the training job runs every step, with this lesson's four techniques:
mixed precision (section 4), rematerialisation (section 5), donation (section 7) and
gradient accumulation over micro-batches, around AdamW. Two functions, each with the
contract of the course core's own, so they are drop-in replacements:

    make_step   the loop's jitted step (shared.train.step.make_step, on one device)
    remat       the wrapper the model's layer scan puts around each layer when
                config.remat is not "none" (shared.backward.remat)

Once the tests pass,

    python -m shared.train --mine

trains on your step. Check it with
`python -m pytest exercises/06_optimised_training/test_build_step.py`.

Letters, in every shape below:

    B  batch (TrainConfig.batch_size)      S  sequence (ModelConfig.seq_len)
    k  micro-batches (TrainConfig.grad_accum), each of B / k rows

The training state is one pytree, a dict:

    params     the model's parameter tree (shared.model.init), every array float32
    opt_state  the optimizer's state for params: optimizer(tc).init(params), float32 moments
    step       int32 scalar, the number of steps taken

A batch is a dict of [B, S] arrays: inputs, targets, positions, segment_ids (int32) and
weights (float32: 1 for a token that counts, 0 for padding; packed rows hold different
numbers of counted tokens).

Imports: jax, jax.numpy, numpy, optax, the standard library, shared.config, shared.model
(the model and its loss, lesson 01; model.cast casts a parameter tree) and shared.train.optim
(the optimizer, AdamW with its schedule), nothing else from the course. The tests read this
file's imports and fail on shared.train.step, shared.train.loop and shared.backward: this
exercise is where you write them. Helper functions are yours to add; name them with a
leading underscore.
"""

from __future__ import annotations

from types import ModuleType
from typing import Callable

from shared import model
from shared.config import ModelConfig, TrainConfig


def make_step(mc: ModelConfig, tc: TrainConfig, net: ModuleType = model):
    """Exercise 6.6: the loop's step, jitted: step(state, batch) -> (new state, metrics).

    net: the model, a module with loss_sums(params, batch, config) -> (total, count): the
    sum of weight * cross-entropy over the batch and the sum of the weights (shared.model,
    or your lesson-01 build). Call it with mc, unchanged.

    The contract:
    - one optimizer step of optimizer(tc) (shared.train.optim) on the gradient of the
      batch's mean loss, total / count over the whole batch; the new state holds the new
      params, the new opt_state and step + 1;
    - mixed precision: params and opt_state stay float32 in the state (the master
      weights); the model computes in mc.dtype ("float32" or "bfloat16"): your step hands
      net.loss_sums the weights already cast to mc.dtype, inside the function it
      differentiates, so that the gradients, the optimizer's update and the new weights
      are float32. Do not count on the model to cast: the tests also run your step on a
      model that computes in whatever dtype its weights arrive in;
    - rematerialisation: what the backward pass recomputes is mc.remat ("none", "full",
      "matmuls"), applied by the model to each layer (through remat, exercise 6.7);
    - gradient accumulation: with tc.grad_accum = k, the B rows are split into k
      micro-batches of B / k rows whose gradients are computed one after another (a
      jax.lax.scan: one micro-batch's activations alive at a time); the result is one
      big step's on the whole batch (any split of the rows; the course's sends row i to
      micro-batch i mod k), although micro-batches hold different numbers of counted
      tokens;
    - donation: the old state's buffers are given to the new one (after a call the old
      state's arrays are deleted);
    - metrics, float32: "loss" (the batch's mean loss, a scalar), "grad_norm" (the global
      norm of the gradient of the mean loss, before clipping) and "grad_sq" ([n] for the
      n parameter arrays in tree order: each one's squared gradient norm, so the loop can
      name the first non-finite one);
    - it returns a jax.jit-ed function: the loop compiles it ahead of time with
      step.lower(state, batch).compile().
    """
    raise NotImplementedError("Exercise 6.6: the jitted training step, in mixed precision, with "
                              "gradient accumulation and the old state donated")


def remat(layer: Callable, policy: str) -> Callable:
    """Exercise 6.7: `layer` with what its backward pass keeps set by `policy`.

    layer: one step of the model's layer scan, a function of arrays (the model calls
    remat(layer, config.remat) and scans what comes back). policy is one of
    shared.config.REMAT:
    - "none": the layer itself; autodiff keeps every intermediate it needs;
    - "full": the backward pass keeps only the layer's inputs and recomputes the rest;
    - "matmuls": it keeps the outputs of the weight matmuls (matmuls without a batch
      dimension in jax.lax.dot_general's sense) and recomputes everything else, attention's
      batched matmuls and the elementwise work (norms, RoPE, softmax, GELU) between them.
    Any other policy is a ValueError. The returned function computes the same values and
    the same gradients as layer.
    """
    raise NotImplementedError("Exercise 6.7: the layer wrapped so that its backward pass "
                              "recomputes what the policy does not keep")
