"""Wrong build (lesson 09): admit asks whether each waiting request fits before reserving any, so
two requests that each fit the free memory alone both start, and together exceed it."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_admit_policy", "before asking whether the next one fits")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/09_efficient_inference/build_decode.py")
extend, retire = _m.extend, _m.retire


def admit(queue, active, kv, budget):
    free = [slot for slot, s in enumerate(active) if s is None]
    fits = []
    for slot, (request, _) in zip(free, queue):
        if not kv.can_admit(len(request.prompt), budget(request)):
            break
        fits.append(slot)
    started = [(slot, queue.popleft()) for slot in fits]
    for slot, (request, _) in started:
        kv.admit(slot, len(request.prompt), budget(request))
    return started
