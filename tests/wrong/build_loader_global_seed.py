"""Wrong build (lesson 07): the shuffle reseeds numpy's global generator (np.random.seed),
which every other user of np.random in the process shares."""

from pathlib import Path

import numpy as np

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_batch_indices_resume", "global random state")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/07_training_end_to_end/build_loader.py")
pack_rows = _m.pack_rows


def batch_indices(num_rows, batch_size, seed, position):
    epoch, i = divmod(position, num_rows // batch_size)
    np.random.seed([seed, epoch])
    return np.random.permutation(num_rows)[i * batch_size:(i + 1) * batch_size]
