"""Exercises 7.4-7.6: how many chips a model needs to serve it (the bridge to lessons 08-09)."""

from __future__ import annotations


def min_chips_for_prefill(n_params: float, prefill_tokens: float, deadline_s: float,
                          chip_flops: float) -> float:
    """Exercise 7.4: 2 N T FLOPs / (deadline * FLOP/s per chip)."""
    return 2 * n_params * prefill_tokens / (deadline_s * chip_flops)


def min_chips_to_fit(n_params: float, bytes_per_param: float, chip_memory_bytes: float) -> float:
    """Exercise 7.5: weight bytes / memory per chip."""
    return n_params * bytes_per_param / chip_memory_bytes


def min_chips_for_decode_rate(n_params: float, bytes_per_param: float, tokens_per_s: float,
                              chip_memory_bw: float) -> float:
    """Exercise 7.6: weight bytes read per step * steps per second / bandwidth per chip."""
    return n_params * bytes_per_param * tokens_per_s / chip_memory_bw
