"""Exercise 7.7-7.8, answered: the training job's packed loader.

A drop-in for shared.data.Rows.get (pack_rows) and shared.pipeline.Loader.indices
(batch_indices). pack_rows reads each asked row straight from the stream and finds the
document of every slot with one binary search over the document starts; segment ids,
positions and weights all follow from "which document is this slot in". batch_indices draws
each epoch's shuffle from (seed, epoch) alone, so a batch is a pure function of its position.
"""

from __future__ import annotations

import numpy as np


def pack_rows(tokens: np.ndarray, starts: np.ndarray, seq_len: int,
              rows: np.ndarray) -> dict[str, np.ndarray]:
    """Exercise 7.7: the packed batch for the given rows of the stream."""
    R, N = seq_len + 1, len(tokens)
    offset = np.asarray(rows, np.int64)[:, None] * R + np.arange(R)  # [n, R]: each slot's place in the stream
    real = offset < N  # False only in the last row's padding
    window = np.where(real, tokens[np.minimum(offset, N - 1)], 0).astype(np.int32)  # [n, R]
    # The document each slot belongs to (the padding gets the last one; `real` masks it).
    doc = np.searchsorted(starts, offset, side="right") - 1  # [n, R]
    # Documents are consecutive and never empty, so they number 1, 2, ... from the row's first.
    segment_ids = ((doc - doc[:, :1] + 1) * real).astype(np.int32)  # [n, R]
    # A segment starts where its document does, or at the row's start if the document began before.
    positions = (offset - np.maximum(starts[doc], offset[:, :1])).astype(np.int32)  # [n, R]
    # A target trains only if it is a real token of its input's document.
    weights = (doc[:, 1:] == doc[:, :-1]) & real[:, 1:]  # [n, S]
    return {"inputs": window[:, :-1], "targets": window[:, 1:], "positions": positions[:, :-1],
            "segment_ids": segment_ids[:, :-1], "weights": weights.astype(np.float32)}


def batch_indices(num_rows: int, batch_size: int, seed: int, position: int) -> np.ndarray:
    """Exercise 7.8: the rows of batch `position`, from (seed, position) alone."""
    per_epoch = num_rows // batch_size  # whole batches; the rows left over wait for a later shuffle
    epoch, i = divmod(position, per_epoch)
    # A generator of its own, seeded by (seed, epoch): no state survives the call, and each
    # epoch has its own shuffle.
    order = np.random.default_rng([seed, epoch]).permutation(num_rows)
    return order[i * batch_size:(i + 1) * batch_size]
