"""Wrong build (lesson 07): positions count the row's columns, not restarting where a document
starts inside the row."""

from pathlib import Path

import numpy as np

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_pack_rows_positions", "do not restart at 0 at a document start")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/07_training_end_to_end/build_loader.py")
batch_indices = _m.batch_indices


def pack_rows(tokens, starts, seq_len, rows):
    out = _m.pack_rows(tokens, starts, seq_len, rows)
    columns = np.broadcast_to(np.arange(seq_len, dtype=np.int32), out["positions"].shape).copy()
    return out | {"positions": columns}
