"""Exercises 6.1-6.3: the memory and FLOP budget of a training step, and its MFU."""

from __future__ import annotations


def adamw_state_bytes(n_params: int, param_dtype: str) -> int:
    """Exercise 6.1: bytes of AdamW's training state for n_params parameters.

    The state is the parameters plus Adam's two moments (mu, nu), optax keeping each
    moment in its parameter's dtype ("float32" or "bfloat16"); ignore the step counter.
    Returns the total in bytes (an int). Mixed precision keeps float32 master weights:
    its state is the float32 one.
    """
    raise NotImplementedError("Exercise 6.1: the bytes of AdamW's training state")


def step_flops(n_matmul_params: int, tokens: int, remat: bool) -> int:
    """Exercise 6.2: matmul FLOPs of one training step (forward + backward).

    Each of n_matmul_params weights does one multiply-add (2 FLOPs) per token forward,
    and the backward pass does two matmuls per forward one. With full rematerialisation
    (remat=True) the backward pass first runs the forward again. Ignore attention's
    score matmuls. Returns the FLOPs (an int).
    """
    raise NotImplementedError("Exercise 6.2: the training FLOPs of a step, with and without remat")


def mfu(n_matmul_params: int, n_layers: int, seq_len: int, d_model: int, tokens: int,
        step_seconds: float, peak_flops: float) -> float:
    """Exercise 6.3: model FLOPs utilisation of a measured training step.

    Model FLOPs per token: 6 per matmul parameter, plus attention's QK^T and AV over
    the full context, 12 * n_layers * seq_len * d_model (forward and backward). A step
    trains on `tokens` tokens in `step_seconds`; peak_flops is the chip's FLOP/s.
    Returns the fraction of the peak (a float; 0.5 means 50%).
    """
    raise NotImplementedError("Exercise 6.3: the model FLOPs utilisation of a measured training step")
