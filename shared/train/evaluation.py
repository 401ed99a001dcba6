"""Batches of a run: the training loader and the fixed validation batches (make_eval)."""

from __future__ import annotations

from types import ModuleType

import jax

from shared import config as cfg
from shared import data, model, pipeline
from shared.train.step import Placement


def loader(rows: data.Rows, batch_size: int, seed: int, position: int = 0) -> pipeline.Loader:
    """pipeline.Loader over packed rows; a corpus too small for one batch is a DataError."""
    try:
        return pipeline.Loader(rows, batch_size, seed, position)
    except ValueError as e:
        raise data.DataError(str(e)) from None


def make_eval(mc: cfg.ModelConfig, tc: cfg.TrainConfig, val, placement: Placement = Placement(),
              net: ModuleType = model):
    """evaluate(params) -> mean loss over tc.eval_batches fixed validation batches, under
    net.loss_sums (shared.model's, or a drop-in replacement).

    val: packed rows (data.Rows), or a token array (lesson 01) cut into random windows.
    """
    if isinstance(val, data.Rows):
        rows = loader(val, tc.batch_size, tc.seed)
        batches = [pipeline.place(rows, i, placement.batch()) for i in range(tc.eval_batches)]
    else:
        batches = [dict(zip(("inputs", "targets"), data.batch(val, tc.batch_size, mc.seq_len,
                                                              tc.seed, step=i)))
                   for i in range(tc.eval_batches)]
    sums = jax.jit(net.loss_sums, static_argnums=2)

    def evaluate(params) -> float:
        parts = [sums(params, b, mc) for b in batches]
        return float(sum(t for t, _ in parts) / sum(c for _, c in parts))

    return evaluate
