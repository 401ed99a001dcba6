"""Wrong build (lesson 01): init draws wo and w_down with std 0.02, without GPT-2's 1/sqrt(2 L)."""

import math

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_init_statistics", "0.02 / sqrt(2 L)")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/01_llm_from_scratch/build_model.py")
forward, loss_sums = _m.forward, _m.loss_sums


def init(config, key):
    p = _m.init(config, key)
    up = math.sqrt(2 * config.n_layers)
    blocks = p["blocks"]
    return {**p, "blocks": {**blocks, "wo": blocks["wo"] * up, "w_down": blocks["w_down"] * up}}
