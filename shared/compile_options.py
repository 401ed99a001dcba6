"""The XLA options a bfloat16 program needs on a CPU (lesson 06).

Two of XLA:CPU's passes, harmless in float32, cost a bfloat16 program time or memory.
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

Float32 programs have nothing for either pass to change here, and GPUs and TPUs compile with
XLA's defaults: `for_dtype` returns None for them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

CPU_LOW_PRECISION = {"xla_disable_hlo_passes":
                     "while-loop-invariant-code-motion,float-normalization-bf16"}


def for_dtype(dtype) -> dict | None:
    """compiler_options for a program that computes in `dtype` on the default backend."""
    low = jnp.dtype(dtype) != jnp.float32
    return dict(CPU_LOW_PRECISION) if low and jax.default_backend() == "cpu" else None
