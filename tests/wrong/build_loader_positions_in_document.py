"""Wrong build (lesson 07): positions count from the document's start in the stream, so a row
that starts inside a document does not start at position 0."""

from pathlib import Path

import numpy as np

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_pack_rows_positions", "at the start of a row")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/07_training_end_to_end/build_loader.py")
batch_indices = _m.batch_indices


def pack_rows(tokens, starts, seq_len, rows):
    out = _m.pack_rows(tokens, starts, seq_len, rows)
    offset = np.asarray(rows)[:, None] * (seq_len + 1) + np.arange(seq_len)  # [n, S]
    doc = np.searchsorted(starts, offset, side="right") - 1
    return out | {"positions": (offset - starts[doc]).astype(np.int32)}
