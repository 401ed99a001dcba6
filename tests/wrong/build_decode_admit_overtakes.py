"""Wrong build (lesson 09): admit skips a waiting request that does not fit the memory and starts
the ones behind it, so a long request can wait forever behind a stream of short ones."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_admit_policy", "none may overtake it")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/09_efficient_inference/build_decode.py")
extend, retire = _m.extend, _m.retire


def admit(queue, active, kv, budget):
    free = [slot for slot, s in enumerate(active) if s is None]
    started, waiting = [], []
    while queue and len(started) < len(free):
        entry = queue.popleft()
        n, b = len(entry[0].prompt), budget(entry[0])
        if kv.can_admit(n, b):
            kv.admit(free[len(started)], n, b)
            started.append((free[len(started)], entry))
        else:
            waiting.append(entry)
    queue.extendleft(reversed(waiting))
    return started
