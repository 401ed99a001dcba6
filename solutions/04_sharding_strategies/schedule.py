"""Lesson 04 reference answer 4.9: the overlapped FSDP forward pass's time."""

from __future__ import annotations


def fsdp_forward_overlapped(B: int, E: int, L: int, n: int, peak: float, link: float,
                            itemsize: int) -> float:
    """Exercise 4.9: the first gather has nothing to hide behind and the last matmul nothing
    to hide; between them each layer costs the slower of its gather and its matmul."""
    matmul = 2 * (B / n) * E * E / peak  # this device's rows of x times the whole W
    gather = E * E * itemsize * (n - 1) / n / link  # ring all-gather: it holds 1/n already
    return gather + matmul + (L - 1) * max(gather, matmul)
