"""Wrong build (lesson 07): segment ids number the documents of the whole stream (1 + the
document's index), so a row that starts inside a document does not start at 1."""

from pathlib import Path

import numpy as np

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_pack_rows_segment_ids", "a row's first segment is 1")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/07_training_end_to_end/build_loader.py")
batch_indices = _m.batch_indices


def pack_rows(tokens, starts, seq_len, rows):
    out = _m.pack_rows(tokens, starts, seq_len, rows)
    offset = np.asarray(rows)[:, None] * (seq_len + 1) + np.arange(seq_len)  # [n, S]
    doc = np.searchsorted(starts, offset, side="right")  # 1 + the document's index
    return out | {"segment_ids": (doc * (offset < len(tokens))).astype(np.int32)}
