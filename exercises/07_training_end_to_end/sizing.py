"""Exercises 7.4-7.6: how many chips a model needs to serve it (the bridge to lessons 08-09)."""

from __future__ import annotations


def min_chips_for_prefill(n_params: float, prefill_tokens: float, deadline_s: float,
                          chip_flops: float) -> float:
    """Exercise 7.4: chips needed to process a prompt within a deadline at full FLOP/s.

    A forward pass costs 2 * n_params FLOPs per token (one multiply-add per weight);
    each chip does chip_flops FLOP/s. Returns the (fractional) number of chips, a float.
    """
    raise NotImplementedError("Exercise 7.4: the chips a prompt needs to meet a prefill deadline")


def min_chips_to_fit(n_params: float, bytes_per_param: float, chip_memory_bytes: float) -> float:
    """Exercise 7.5: chips whose memory together holds the weights (nothing else counted).
    Returns a float."""
    raise NotImplementedError("Exercise 7.5: the chips whose memory holds the weights")


def min_chips_for_decode_rate(n_params: float, bytes_per_param: float, tokens_per_s: float,
                              chip_memory_bw: float) -> float:
    """Exercise 7.6: chips needed to generate tokens_per_s steps per second.

    Each generated step reads every weight once from memory (small batches are
    memory-bound); each chip reads chip_memory_bw bytes/s. Returns a float.
    """
    raise NotImplementedError("Exercise 7.6: the chips a decode rate needs")
