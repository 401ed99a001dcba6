"""Checks for timing.py: the timer must wait for work that outlives dispatch and skip warm-up.

The oracle is a fake asynchronous result whose readiness time is known: threading
timers never fire early, so a correct timer can only read more than the work takes.
"""

from shared.timing import Pending

WORK_S = 0.05


def test_timeit_waits_for_the_result(answers):
    got = answers.timeit(lambda: Pending(WORK_S), runs=3)
    assert isinstance(got, float), f"expected the median in seconds as a float, got {type(got).__name__}"
    assert got >= WORK_S, f"median {got:.4f} s < the {WORK_S} s of work: the timer stopped at dispatch, not when the result was ready"


def test_timeit_skips_warmup_and_repeats(answers):
    calls = []

    def fn(x):
        calls.append(x)
        return Pending(1.0 if len(calls) == 1 else WORK_S)  # the first call "compiles" for 1 s

    got = answers.timeit(fn, 7, warmup=1, runs=5)
    assert len(calls) == 6 and set(calls) == {7}, f"expected fn(7) called 1 (warm-up) + 5 (timed) times, got {len(calls)} calls with {set(calls)}"
    # 0.5 s: half the fake compile, ten times the steady run; the median ignores one slow run anyway.
    assert WORK_S <= got < 0.5, f"median {got:.3f} s: expected about {WORK_S} s with the 1 s first call left out of the timing"
