"""Wrong build (lesson 01): forward ignores config.dtype and always computes in float32."""

import dataclasses

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_bfloat16", "no matmul takes bfloat16 inputs")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/01_llm_from_scratch/build_model.py")
init, loss_sums = _m.init, _m.loss_sums


def forward(params, tokens, config, **kw):
    return _m.forward(params, tokens, dataclasses.replace(config, dtype="float32"), **kw)
