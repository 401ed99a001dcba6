"""Wrong build (lesson 09): static batching: admit starts requests only when every slot is free,
so the slots of short requests stand idle until the batch's longest one is done."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_admit_policy", "the whole batch is done")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/09_efficient_inference/build_decode.py")
extend, retire = _m.extend, _m.retire


def admit(queue, active, kv, budget):
    if any(s is not None for s in active):
        return []
    return _m.admit(queue, active, kv, budget)
