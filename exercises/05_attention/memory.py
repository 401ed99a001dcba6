"""Exercise 5.4: the memory wall, in bytes."""

from __future__ import annotations


def scores_bytes(B: int, H: int, S: int, dtype: str) -> int:
    """Exercise 5.4: bytes of the attention scores the reference materialises.

    For a batch of B sequences of S tokens with H heads, self-attention's scores are
    one [S, S] matrix per sequence and head, in `dtype` (e.g. "float32", "bfloat16").
    Returns their size in bytes (an int).
    """
    raise NotImplementedError("Exercise 5.4: the memory of the attention scores")
