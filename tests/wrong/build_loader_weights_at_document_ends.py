"""Wrong build (lesson 07): weight 1 on every real target, also where the target is the next
document's first token."""

from pathlib import Path

import numpy as np

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_pack_rows_weights", "first token of the next document")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/07_training_end_to_end/build_loader.py")
batch_indices = _m.batch_indices


def pack_rows(tokens, starts, seq_len, rows):
    out = _m.pack_rows(tokens, starts, seq_len, rows)
    target_at = np.asarray(rows)[:, None] * (seq_len + 1) + np.arange(1, seq_len + 1)  # [n, S]
    return out | {"weights": (target_at < len(tokens)).astype(np.float32)}
