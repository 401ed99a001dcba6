"""Exercises 6.1-6.3: the memory and FLOP budget of a training step, and its MFU."""

from __future__ import annotations

import jax.numpy as jnp


def adamw_state_bytes(n_params: int, param_dtype: str) -> int:
    """Exercise 6.1: bytes of the parameters and Adam's two moments, all in param_dtype."""
    return 3 * n_params * jnp.dtype(param_dtype).itemsize


def step_flops(n_matmul_params: int, tokens: int, remat: bool) -> int:
    """Exercise 6.2: 2 N T forward + 4 N T backward, + 2 N T recomputed forward with remat."""
    return (8 if remat else 6) * n_matmul_params * tokens


def mfu(n_matmul_params: int, n_layers: int, seq_len: int, d_model: int, tokens: int,
        step_seconds: float, peak_flops: float) -> float:
    """Exercise 6.3: (6 N + 12 L S E) FLOPs per token, times tokens, per second, over the peak."""
    per_token = 6 * n_matmul_params + 12 * n_layers * seq_len * d_model
    return per_token * tokens / step_seconds / peak_flops
