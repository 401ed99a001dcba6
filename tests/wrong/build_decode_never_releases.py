"""Wrong build (lesson 09): retire reports the done requests but never frees their slots or
their memory, so no waiting request can ever take their place."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_retire_policy", "was not freed")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/09_efficient_inference/build_decode.py")
extend, admit = _m.extend, _m.admit


def retire(active, kv):
    done = []
    for slot, s in enumerate(active):
        if s is None:
            continue
        cut = _m._stop_at_end(s.out, s.request.stop)
        if cut is not None:
            del s.out[cut:]
            done.append((slot, s, "stop"))
        elif len(s.out) >= s.budget:
            done.append((slot, s, "length"))
    return done
