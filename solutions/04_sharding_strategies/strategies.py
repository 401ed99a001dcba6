"""Lesson 04 reference answers: costs of parallelism strategies."""

from __future__ import annotations


def fsdp_flops_per_chip(B: int, E: int, N: int) -> float:
    """Exercise 4.1: [B/N, E] @ [E, E] on each chip."""
    return 2 * (B / N) * E * E


def fsdp_gather_bytes(E: int, N: int, bytes_per_param: int) -> float:
    """Exercise 4.2: the weight is E*E params; a chip already holds 1/N of it."""
    return E * E * bytes_per_param * (N - 1) / N


def comm_hidden(flops: float, comm_bytes: float, peak_flops: float, link_bw: float) -> bool:
    """Exercise 4.3: time to communicate <= time to compute."""
    return comm_bytes / link_bw <= flops / peak_flops


def least_communication(B: int, E: int, N: int) -> str:
    """Exercise 4.5: FSDP gathers E*E per layer, TP all-reduces B*E every second layer.

    Per layer and chip, FSDP sends E^2 (N-1)/N and TP 2 B E (N-1)/N / 2 = B E (N-1)/N
    elements: FSDP wins when E <= B, i.e. more tokens than model width.
    """
    return "fsdp" if E <= B else "tp"
