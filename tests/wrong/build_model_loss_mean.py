"""Wrong build (lesson 01): loss_sums returns the mean cross-entropy as its total."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_loss_sums_adds_up", "not a mean")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/01_llm_from_scratch/build_model.py")
init, forward = _m.init, _m.forward


def loss_sums(params, batch, config):
    total, count = _m.loss_sums(params, batch, config)
    return total / count, count
