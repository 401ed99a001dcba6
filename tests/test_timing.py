"""shared.timing.timeit waits for asynchronous work, skips warm-up, and can record a trace."""


import jax.numpy as jnp

from shared.timing import Pending, in_place, timeit

WORK_S = 0.05  # how long the fake device "works" after dispatch returns


def test_waits_for_work_that_outlives_dispatch():
    t = timeit(lambda: Pending(WORK_S), runs=3)
    # time.sleep and Timer never fire early, so a correct timer cannot read less than WORK_S.
    assert t.min >= WORK_S, f"fastest run {t.min:.4f} s < {WORK_S} s of work: result was not awaited"


def test_warmup_is_not_timed():
    calls = []

    def fn():
        calls.append(None)
        return Pending(1.0 if len(calls) == 1 else 0.0)  # the first call "compiles" for 1 s

    t = timeit(fn, warmup=1, runs=3)
    # 0.5 s is half the fake compile, far above the ~0 s steady runs even on a loaded machine.
    assert t.max < 0.5, f"slowest timed run {t.max:.3f} s: the 1 s first call was timed"
    assert len(calls) == 4, f"expected 1 warm-up + 3 timed calls, got {len(calls)}"


def test_runs_and_statistics():
    t = timeit(lambda x: x + 1, jnp.ones(4), runs=7)
    assert t.runs == 7, f"asked for 7 runs, got {t.runs}"
    assert t.min <= t.median <= t.max, f"min/median/max out of order: {t}"


def test_trace_dir_records_a_profile(tmp_path):
    timeit(lambda x: x * 2, jnp.ones(1024), runs=2, trace_dir=tmp_path)
    files = list(tmp_path.glob("**/*.xplane.pb"))
    assert files and files[0].stat().st_size > 0, f"no non-empty .xplane.pb under {tmp_path}"


def test_in_place_feeds_each_result_back():
    x = jnp.zeros(8)
    step = in_place(lambda x, y: x + y, x)
    for _ in range(3):
        out = step(jnp.ones(8))
    assert (out == 3).all(), f"three in-place additions of 1 to 0 gave {out}"
    assert (x == 0).all() and not x.is_deleted(), "the caller's array must be copied, not donated"
