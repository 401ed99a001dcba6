"""Wrong build (lesson 07): the targets are the inputs themselves, not the next tokens."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_pack_rows_shift", "targets equal the inputs")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/07_training_end_to_end/build_loader.py")
batch_indices = _m.batch_indices


def pack_rows(tokens, starts, seq_len, rows):
    out = _m.pack_rows(tokens, starts, seq_len, rows)
    return out | {"targets": out["inputs"].copy()}
