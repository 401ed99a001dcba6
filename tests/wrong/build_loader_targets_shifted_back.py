"""Wrong build (lesson 07): the targets shifted the wrong way, each the token before its input."""

from pathlib import Path

import numpy as np

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_pack_rows_shift", "shifted the wrong way")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/07_training_end_to_end/build_loader.py")
batch_indices = _m.batch_indices


def pack_rows(tokens, starts, seq_len, rows):
    out = _m.pack_rows(tokens, starts, seq_len, rows)
    before = np.pad(out["inputs"], ((0, 0), (1, 0)))[:, :-1]  # [n, S]: 0, t_0 .. t_{S-2}
    return out | {"targets": before}
