"""Exercises 7.1-7.3: packing documents into rows, what padding wastes, and goodput."""

from __future__ import annotations

import numpy as np


def pack(documents: list[np.ndarray], row_len: int) -> dict[str, np.ndarray]:
    """Exercise 7.1: documents end to end in rows of row_len, with segment ids and positions."""
    stream = np.concatenate(documents).astype(np.int32)
    doc = np.concatenate([np.full(len(d), i) for i, d in enumerate(documents)])
    offset = np.concatenate([np.arange(len(d)) for d in documents])
    n_rows = -(-len(stream) // row_len)
    pad = n_rows * row_len - len(stream)
    tokens = np.pad(stream, (0, pad)).reshape(n_rows, row_len)  # [n_rows, row_len]
    doc = np.pad(doc, (0, pad), constant_values=-1).reshape(n_rows, row_len)
    offset = np.pad(offset, (0, pad)).reshape(n_rows, row_len)
    segment_ids = np.zeros((n_rows, row_len), np.int32)
    positions = np.zeros((n_rows, row_len), np.int32)
    for r in range(n_rows):
        first = doc[r, 0]
        real = doc[r] >= 0
        segment_ids[r] = np.where(real, doc[r] - first + 1, 0)
        # The first piece counts from the row start; later pieces start at their document's 0.
        positions[r] = np.where(doc[r] == first, np.arange(row_len), offset[r])
    return {"tokens": tokens, "segment_ids": segment_ids, "positions": positions}


def wasted_fraction(lengths: list[int], seq_len: int, packed: bool) -> float:
    """Exercise 7.2: 1 - trained targets / target slots."""
    R = seq_len + 1
    if not packed:
        rows = [-(-n // R) for n in lengths]
        trained = sum(n - r for n, r in zip(lengths, rows))  # each of r pieces loses one target
        return 1 - trained / (sum(rows) * seq_len)
    n_rows = -(-sum(lengths) // R)
    starts = np.cumsum([0] + list(lengths))  # document boundaries in the stream
    cuts = set(range(0, n_rows * R, R)) | set(int(s) for s in starts[:-1])
    pieces = len(cuts)  # each piece (document start or row start inside real tokens) loses one
    return 1 - (sum(lengths) - pieces) / (n_rows * seq_len)


def goodput(seconds: dict[str, float]) -> float:
    """Exercise 7.3: step time over total time."""
    return seconds.get("step", 0.0) / sum(seconds.values())
