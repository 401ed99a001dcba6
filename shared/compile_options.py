"""The XLA options the course's programs compile with on a CPU (lesson 06).

In float32, XLA:CPU's own dot emitter instead of YNNPACK. By default XLA:CPU hands each
matmul to a YNNPACK fusion; `xla_cpu_experimental_ynn_fusion_type=""` turns those off, so
every dot goes to XLA's emitter. The attention matmuls, which YNNPACK runs on one core, run
faster there, and on a Zen 4 CPU the weight matmuls too. Timed on 2-core AMD EPYC VMs
(lesson 06 §11): the `small` float32 training step 1.09x faster on Zen 5 and 1.13-1.19x on
Zen 4; the `tiny` step 0.95x and 1.01x; float32 decoding unchanged. In bfloat16 the
emitter's dots are slower (the `small` step 0.81x), so bfloat16 keeps YNNPACK.

In bfloat16, two of XLA:CPU's passes, harmless in float32, cost a program time or memory.
Lesson 06 §11 times the step without each.

- `float-normalization-bf16` rewrites each bfloat16 op that the CPU backend does not list
  as supported into float32, with converts around it. A dynamic-update-slice is one of
  them. Writing one layer's activations into the layer scan's saved stack, or one token's
  keys into the KV cache, then becomes: convert the whole stack to float32, write the slice,
  convert the stack back. Every step reads and writes all L layers of the stack, where it
  should write one slice in place. Without the pass, a bfloat16 op runs as written and
  rounds its result to bfloat16, as it does on a GPU.
- `while-loop-invariant-code-motion` moves the backward loop's per-layer converts of the
  saved bfloat16 activations out of the loop, which makes a float32 copy of the whole stack.

GPUs and TPUs compile with XLA's defaults: `for_dtype` returns None for them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

CPU_FLOAT32 = {"xla_cpu_experimental_ynn_fusion_type": ""}
CPU_LOW_PRECISION = {"xla_disable_hlo_passes":
                     "while-loop-invariant-code-motion,float-normalization-bf16"}


def for_dtype(dtype, int8_matmuls: bool = False) -> dict | None:
    """compiler_options for a program that computes in `dtype` on the default backend.
    int8_matmuls: its weight matmuls take int8 operands (shared.qtrain). YNNPACK runs those as
    int8 dots; XLA's emitter would widen them to int32, so such a program keeps YNNPACK."""
    if jax.default_backend() != "cpu":
        return None
    if jnp.dtype(dtype) != jnp.float32:
        return dict(CPU_LOW_PRECISION)
    return None if int8_matmuls else dict(CPU_FLOAT32)
