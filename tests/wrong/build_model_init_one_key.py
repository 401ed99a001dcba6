"""Wrong build (lesson 01): init draws every weight from the same key."""

import jax
import jax.numpy as jnp

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_init_statistics", "same draw")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/01_llm_from_scratch/build_model.py")
forward, loss_sums = _m.forward, _m.loss_sums


def init(config, key):
    redraw = lambda w: w if (w == 1).all() else jnp.std(w) * jax.random.normal(key, w.shape)  # noqa: E731
    return jax.tree.map(redraw, _m.init(config, key))
