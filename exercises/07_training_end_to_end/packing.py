"""Exercises 7.1-7.3: packing documents into rows, what padding wastes, and goodput."""

from __future__ import annotations

import numpy as np


def pack(documents: list[np.ndarray], row_len: int) -> dict[str, np.ndarray]:
    """Exercise 7.1: lay the documents end to end and cut them into rows of row_len tokens.

    A document runs on from one row into the next; the last row is padded with token 0.
    Returns int32 arrays [n_rows, row_len]:
      tokens       the tokens (0 in the padding)
      segment_ids  1 for the first document piece in each row, 2 for the next, ...;
                   0 in the padding (a row that starts mid-document starts at 1 too)
      positions    0 at each document start and at the start of each row, then 1, 2, ...
    """
    raise NotImplementedError("Exercise 7.1: pack documents into rows with segment ids and positions")


def wasted_fraction(lengths: list[int], seq_len: int, packed: bool) -> float:
    """Exercise 7.2: the fraction of target slots that train on nothing.

    Rows hold seq_len + 1 tokens: seq_len inputs and their seq_len next-token targets.
    A piece of m tokens of one document inside a row trains m - 1 targets. Padded
    (packed=False): every document starts a new row and its last row is padded.
    Packed: documents run on from row to row, only the very last row is padded.
    Returns 1 - trained targets / (rows * seq_len), a float.
    """
    raise NotImplementedError("Exercise 7.2: wasted target slots, padded or packed")


def goodput(seconds: dict[str, float]) -> float:
    """Exercise 7.3: the share of wall time spent in productive training steps.

    seconds maps categories to wall time: "step" (productive), and any of "startup",
    "compile", "data", "checkpoint", "eval" and "restart" (steps redone after a failure
    count here, not in "step"). Returns step time / total time, a float in [0, 1].
    """
    raise NotImplementedError("Exercise 7.3: the goodput of a run")
