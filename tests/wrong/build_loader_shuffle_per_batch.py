"""Wrong build (lesson 07): every batch draws its own shuffle from (seed, position), so an epoch
repeats rows (and misses others): pure, resumable, but no epochs."""

from pathlib import Path

import numpy as np

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_batch_indices_epoch", "twice")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/07_training_end_to_end/build_loader.py")
pack_rows = _m.pack_rows


def batch_indices(num_rows, batch_size, seed, position):
    return np.random.default_rng([seed, position]).permutation(num_rows)[:batch_size]
