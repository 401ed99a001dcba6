"""int8 weights: per-channel absmax quantization, the int8 matmul, bytes saved (lesson 09).

A decode step reads every weight once, so its time is about bytes / bandwidth:
storing weights in one byte instead of four (float32) or two (bfloat16) cuts the
bytes a step must read. Each output channel c of a weight gets its own scale

    scale[c] = max |w[:, c]| / 127        q[:, c] = round(w[:, c] / scale[c])   (int8)

so one large channel does not crush the resolution of the others. Because the scale
belongs to an output channel, it comes out of the sum unchanged:

    sum_k x[k] w[k, c]  ~  (sum_k x[k] q[k, c]) * scale[c]

shared.model.matmul computes exactly that for a QTensor weight. Whether it is faster depends on the chip: XLA on a GPU
converts int8 to the compute dtype inside the matmul (bytes read fall 2-4x), the CPU
backend converts into a temporary float copy first (more bytes, slower). The loss of
quality is measured, not assumed: shared.bench.inference.compare gives the validation
loss of both models.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from shared.params import BLOCK, TOP

# Matmul weights of a block and how many of their leading axes (after L) a matmul sums over.
CONTRACTED = {name: w.contracted for name, w in BLOCK.items() if w.contracted}


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class QTensor:
    """An int8 weight and its float32 per-output-channel scales.

    q has the float weight's shape; scale has the same rank with the summed-over axes
    of size 1 (keepdims), so q * scale is the dequantized weight with or without a
    leading layer axis.
    """

    q: jax.Array  # int8
    scale: jax.Array  # float32

    @property
    def shape(self) -> tuple[int, ...]:
        return self.q.shape

    def output_scale(self, spec: str) -> jax.Array:
        """The scale per output channel of a matmul "x,w->out" with this weight: the summed
        letters of w must lead it (true of every weight in shared.params)."""
        inputs, out = spec.split("->")
        summed = sum(c not in out for c in inputs.split(",")[1])
        return self.scale.reshape(self.scale.shape[summed:])


def quantize(w: jax.Array, contracted: int, leading: int = 0) -> QTensor:
    """Absmax int8 of w [*leading, *contracted, *out]: one scale per (leading, out) index."""
    axes = tuple(range(leading, leading + contracted))
    scale = jnp.max(jnp.abs(w), axis=axes, keepdims=True) / 127
    scale = jnp.where(scale == 0, 1.0, scale)  # an all-zero channel stays zero
    q = jnp.clip(jnp.round(w / scale), -127, 127).astype(jnp.int8)
    return QTensor(q, scale.astype(jnp.float32))


def dequantize(t: QTensor) -> jax.Array:
    return t.q.astype(jnp.float32) * t.scale


def quantize_params(params: dict) -> dict:
    """The model's matmul weights (blocks and unembed) as QTensors; embedding and norms stay float.

    The embedding is a lookup of B rows per step, not a matmul over all of it, so
    quantizing it would save memory but no bandwidth.
    """
    blocks = {name: quantize(w, CONTRACTED[name], leading=1) if name in CONTRACTED else w
              for name, w in params["blocks"].items()}
    return {**params, "blocks": blocks,
            "unembed": quantize(params["unembed"], TOP["unembed"].contracted)}


def dequantize_params(params: dict) -> dict:
    """Float32 parameters with the rounded values: the int8 model's maths, model.forward's layout."""
    return jax.tree.map(lambda w: dequantize(w) if isinstance(w, QTensor) else w, params,
                        is_leaf=lambda w: isinstance(w, QTensor))


def int8_matmul(x: jax.Array, w: QTensor) -> jax.Array:
    """x [M, K] float @ w [K, N] int8 as int8 x int8 with int32 accumulation; float32 [M, N].

    Each row of x gets its own absmax scale too; the int32 sum is exact (127 * 127 * K
    fits 32 bits for K < 133,000), and both scales come out of it: y = acc * sx * sw.
    """
    sx = jnp.max(jnp.abs(x), axis=-1, keepdims=True) / 127  # [M, 1]
    sx = jnp.where(sx == 0, 1.0, sx)
    xq = jnp.clip(jnp.round(x / sx), -127, 127).astype(jnp.int8)
    acc = jax.lax.dot(xq, w.q, preferred_element_type=jnp.int32)  # [M, N]
    return acc.astype(jnp.float32) * sx * w.scale


def nbytes(params: dict) -> int:
    """Bytes of every array in a parameter pytree (QTensor: its int8 values and scales);
    works on jax.eval_shape's shapes too."""
    return sum(x.size * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(params))


def matmul_bytes(params: dict) -> int:
    """Bytes of the weights a decode step reads in matmuls (all but the embedding and norms)."""
    blocks = params["blocks"]
    return sum(nbytes(blocks[n]) for n in CONTRACTED) + nbytes(params["unembed"])

