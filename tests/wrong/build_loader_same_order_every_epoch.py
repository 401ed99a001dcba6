"""Wrong build (lesson 07): one shuffle per seed, the same in every epoch, so the rows that do
not fill a whole batch are left out of every epoch, forever."""

from pathlib import Path

import numpy as np

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_batch_indices_leftover", "never come")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/07_training_end_to_end/build_loader.py")
pack_rows = _m.pack_rows


def batch_indices(num_rows, batch_size, seed, position):
    i = position % (num_rows // batch_size)
    return np.random.default_rng(seed).permutation(num_rows)[i * batch_size:(i + 1) * batch_size]
