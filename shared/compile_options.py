"""The XLA options the course's programs compile with on a CPU (lesson 06).

A float32 training step uses XLA:CPU's own dot emitter instead of YNNPACK (`for_training`).
By default XLA:CPU hands each matmul to a YNNPACK fusion; `xla_cpu_experimental_ynn_fusion_type=""`
turns those off, so every dot goes to XLA's emitter. The attention matmuls, which YNNPACK runs
on one core, run faster there, and on a Zen 4 CPU the weight matmuls too. Timed on 2-core AMD
EPYC VMs (lesson 06 §11): the `small` float32 step 1.09x faster on Zen 5 and 1.13-1.19x on
Zen 4; the `tiny` step 0.95x and 1.01x. Decoding, whose batch-1 matrix-vector products go to
XLA's emitter either way, timed the same (0.98-1.04x), so it keeps the defaults. In bfloat16
the emitter's dots are slower (the `small` step 0.81x), so bfloat16 keeps YNNPACK.

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

GPUs and TPUs compile with XLA's defaults: both functions return None for them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

CPU_FLOAT32 = {"xla_cpu_experimental_ynn_fusion_type": ""}
CPU_LOW_PRECISION = {"xla_disable_hlo_passes":
                     "while-loop-invariant-code-motion,float-normalization-bf16"}


def for_dtype(dtype) -> dict | None:
    """compiler_options for a program that computes in `dtype` on the default backend."""
    low = jnp.dtype(dtype) != jnp.float32
    return dict(CPU_LOW_PRECISION) if low and jax.default_backend() == "cpu" else None


def for_training(dtype) -> dict | None:
    """compiler_options for a training step: for_dtype's, and in float32 on a CPU XLA's own dot
    emitter. A net whose matmuls this does not suit declares its own (shared.qtrain)."""
    float32_cpu = jnp.dtype(dtype) == jnp.float32 and jax.default_backend() == "cpu"
    return dict(CPU_FLOAT32) if float32_cpu else for_dtype(dtype)
