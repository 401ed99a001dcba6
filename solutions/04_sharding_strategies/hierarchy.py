"""Lesson 04 reference answers 4.10-4.11: FSDP within a slice, DP across slices."""

from __future__ import annotations


def hybrid_tokens_per_chip(peak: float, fast_bw: float, network_bw: float, n_within: int,
                           n_across: int, itemsize: int) -> float:
    """Exercise 4.10: the larger of what each level asks.

    Fast level, per layer: 2 (B/n) E^2 / peak >= E^2 b (n_within-1)/n_within / fast_bw.
    Network, per step and weight: 6 (B/n) / peak >= 2 b (n_across-1)/n_across / n_within
    / network_bw, since after FSDP within a chip holds (and all-reduces) 1/n_within of it.
    """
    fsdp = peak / fast_bw * itemsize / 2 * (n_within - 1) / n_within
    dp = peak / network_bw * itemsize / 3 * (n_across - 1) / n_across / n_within
    return max(fsdp, dp)


def hybrid_bytes_per_level(E: int, L: int, n_across: int, n_within: int, itemsize: int,
                           grad_reduce: str) -> dict[str, float]:
    """Exercise 4.11: a reduce-scatter sends what a gather does; an all-reduce twice that."""
    weight = E * E * itemsize
    gather = weight * (n_within - 1) / n_within
    reduce = gather if grad_reduce == "reduce-scatter" else 2 * gather
    across = 2 * (weight / n_within) * (n_across - 1) / n_across
    return {"fast": L * (gather + reduce), "network": L * across}
