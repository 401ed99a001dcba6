"""Training in int8: every weight matmul, forward and backward, on int8 operands (lesson 09).

In the spirit of Accurate Quantized Training (AQT, github.com/google/aqt): a training step
does three matmuls per weight matmul, and all three run as int8 x int8 with int32 sums.
For y = x @ w with x [M, K] (M = B·S tokens) and w [K, N]:

    forward   y  = x  @ w     x per token (absmax over K), w per output channel (over K)
    backward  dx = g  @ w^T   g per token (over N),       w per input channel (over N)
              dw = x^T @ g    x per channel (over M),     g per output channel (over M)

Each operand gets one scale per row or column that is *not* summed over, so the scales
come out of the int32 sum: y = acc * s_x * s_w. The rounding is straight-through: the
backward is the float matmul's backward (dx = g w^T, dw = x^T g), just computed in int8
from the float x, w and g the step kept, so no gradient is lost to round()'s zero slope.
The int32 sums are exact while 127 * 127 * (summed length) < 2^31, i.e. a summed axis of
fewer than 133,000 (the dw sum runs over the B·S tokens of a (micro-)batch).

int8_dot(x, w, spec) is the matmul; `net` (this module's init, forward and loss_sums)
trains the course's model with it: loss_sums runs shared.model.loss_sums while model.matmul is the
int8 one (int8_matmuls swaps it in and puts the float one back, as shared.course.mine's
Plug does for a learner's piece). Attention's own products (scores, weights @ values) are
not weight matmuls and stay float; int8 weights for inference (QTensor) pass through.

    from shared import qtrain
    from shared.train.loop import train
    train(mc, tc, "runs/tiny-int8", net=qtrain)   # or make_step(mc, tc, net=qtrain)

or from the command line, `python -m shared.train --int8`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Iterator

import jax
import jax.numpy as jnp

from shared import compile_options, model
from shared.config import ModelConfig
from shared.quant import QTensor

init = model.init  # the parameters are the float model's: only the matmuls change
RUN_CONFIG = {"int8": True}  # what a run trained on this net records in its config.json


def compiler_options(dtype) -> dict | None:
    """How a step on this net compiles: compile_options.for_dtype's. A float32 step on a CPU
    would otherwise use XLA's own dot emitter (compile_options.for_training), which widens the
    int8 dots to int32 x int32; YNNPACK runs them as int8 x int8 -> int32."""
    return compile_options.for_dtype(dtype)


def _quantize(a: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """int8 values and float32 absmax scales of a, one scale per index of the other axis
    (axis is the one a matmul sums over); an all-zero row keeps scale 1."""
    a = a.astype(jnp.float32)
    scale = jnp.max(jnp.abs(a), axis=axis, keepdims=True) / 127
    scale = jnp.where(scale == 0, 1.0, scale)
    return jnp.clip(jnp.round(a / scale), -127, 127).astype(jnp.int8), scale


def _qdot(a: jax.Array, b: jax.Array) -> jax.Array:
    """a [M, K] @ b [K, N] as int8 x int8 -> int32, rescaled: float32 [M, N]."""
    aq, sa = _quantize(a, 1)  # sa [M, 1]
    bq, sb = _quantize(b, 0)  # sb [1, N]
    acc = jax.lax.dot(aq, bq, preferred_element_type=jnp.int32)
    return acc.astype(jnp.float32) * sa * sb


@jax.custom_vjp
def int8_mm(x: jax.Array, w: jax.Array) -> jax.Array:
    """x [M, K] @ w [K, N] in int8, float32 [M, N]; its gradients are int8 matmuls too."""
    return _qdot(x, w)


def _mm_fwd(x, w):
    return _qdot(x, w), (x, w)


def _mm_bwd(res, g):
    x, w = res
    dx = _qdot(g, w.T)  # g per token, w per input channel
    dw = _qdot(x.T, g)  # x per channel, g per output channel, both over the tokens
    return dx.astype(x.dtype), dw.astype(w.dtype)


int8_mm.defvjp(_mm_fwd, _mm_bwd)


def int8_dot(x: jax.Array, w: jax.Array, spec: str, dtype=None) -> jax.Array:
    """model.matmul(spec, x, w, dtype) with int8 operands: x's free letters are flattened
    into tokens M, the summed letters (in w's order) into K, w's free letters into N.
    Returns dtype (default x's)."""
    inputs, out = spec.split("->")
    xs, ws = inputs.split(",")
    summed = [c for c in ws if c not in out]
    free_x = [c for c in xs if c not in summed]
    free_w = [c for c in ws if c not in summed]
    x2 = jnp.transpose(x, [xs.index(c) for c in free_x + summed])
    w2 = jnp.transpose(w, [ws.index(c) for c in summed + free_w])
    M = math.prod(x2.shape[:len(free_x)])
    K = math.prod(x2.shape[len(free_x):])
    y = int8_mm(x2.reshape(M, K), w2.reshape(K, -1))
    y = y.reshape(x2.shape[:len(free_x)] + w2.shape[len(summed):])
    order = free_x + free_w
    return jnp.transpose(y, [order.index(c) for c in out]).astype(x.dtype if dtype is None else dtype)


def matmul(spec: str, x: jax.Array, w, dtype=None) -> jax.Array:
    """What model.matmul is while int8_matmuls is on: int8 for float weights, the core's
    own path for an int8 inference weight (QTensor)."""
    if isinstance(w, QTensor):
        return _float_matmul(spec, x, w, dtype)
    return int8_dot(x, w, spec, dtype)


_float_matmul = model.matmul


@contextlib.contextmanager
def int8_matmuls() -> Iterator[None]:
    """While inside, every weight matmul of shared.model traces as int8 (forward and
    backward); the float matmul is back on exit, even after an error. Tracing is what
    counts: a function jitted inside keeps its int8 matmuls when called later."""
    old = model.matmul
    model.matmul = matmul
    try:
        yield
    finally:
        model.matmul = old


def _autodiff_mlp(config: ModelConfig) -> ModelConfig:
    # shared.backward's hand-written MLP backward (mlp="manual", the presets' choice) calls
    # the float matmul itself; the same maths through autodiff gets int8_mm's backward.
    return dataclasses.replace(config, mlp="autodiff")


def loss_sums(params: dict, batch: dict, config: ModelConfig) -> tuple[jax.Array, jax.Array]:
    """shared.model.loss_sums with int8 weight matmuls: the `net` the training step takes."""
    with int8_matmuls():
        return model.loss_sums(params, batch, _autodiff_mlp(config))


def forward(params: dict, tokens: jax.Array, config: ModelConfig, **kw) -> jax.Array:
    """shared.model.forward with int8 weight matmuls: logits [B, S, V] of a model trained
    in int8, computed as it was trained (the sampling at the end of a run calls it)."""
    with int8_matmuls():
        return model.forward(params, tokens, _autodiff_mlp(config), **kw)
