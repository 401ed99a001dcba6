"""Wrong build (lesson 07): one generator per run, drawing each epoch's shuffle when the epoch
is first asked for. Epoch e's order is the k-th draw, k the number of epochs this process asked
for before it: a resumed run reshuffles."""

from pathlib import Path

import numpy as np

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_batch_indices_resume", "a run resumed at position")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/07_training_end_to_end/build_loader.py")
pack_rows = _m.pack_rows

_runs: dict = {}  # (num_rows, seed) -> (the run's generator, {epoch: order})


def batch_indices(num_rows, batch_size, seed, position):
    epoch, i = divmod(position, num_rows // batch_size)
    rng, orders = _runs.setdefault((num_rows, seed), (np.random.default_rng(seed), {}))
    if epoch not in orders:
        orders[epoch] = rng.permutation(num_rows)  # the run's next shuffle
    return orders[epoch][i * batch_size:(i + 1) * batch_size]
