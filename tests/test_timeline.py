"""shared.timeline: the simulated step respects its dependencies, overlap never makes a step
slower or faster than its streams allow, and FSDP's exposed communication follows lesson 04's
threshold B/n >= (peak / link) (b/2) (n-1)/n (shared.network.fsdp_tokens)."""

import pytest

from shared import hardware, network, timeline
from shared.config import Error

H100 = hardware.CHIPS["H100"]
THRESHOLD = network.fsdp_tokens(H100.flops("bfloat16"), H100.link_bw, 2, 8)  # tokens per device
CASES = [(strategy, mode) for strategy in timeline.STRATEGIES for mode in ("off", "on")] + [("tp", "split")]


def stack(tokens_per_device: float, L: int = 4, E: int = 4096) -> timeline.Stack:
    return timeline.Stack.on("H100", tokens_per_device * 8, E, L, 8)  # B need not be whole here


def gather_seconds(s: timeline.Stack) -> float:
    """The ring all-gather of one [E, E] weight, from lesson 03's cost model directly."""
    return s.E ** 2 * s.itemsize * (s.n - 1) / s.n / s.link


@pytest.mark.parametrize("strategy, mode", CASES)
@pytest.mark.parametrize("tokens", [256, 4096])
def test_streams_never_overlap_themselves_and_dependencies_hold(strategy, mode, tokens):
    tasks = timeline.tasks(strategy, stack(tokens), mode)
    events = {e.label: e for e in timeline.step(strategy, stack(tokens), mode).events}
    assert len(events) == len(tasks)
    for s in (timeline.COMPUTE, timeline.COMM):
        run = sorted((e for e in events.values() if e.stream == s), key=lambda e: e.start)
        for a, b in zip(run, run[1:]):
            assert a.end <= b.start + 1e-15, f"{strategy} {mode}: {a.label} and {b.label} overlap on {s}"
    for t in tasks:
        for need in t.after:
            assert events[need].end <= events[t.label].start + 1e-15, \
                f"{strategy} {mode}: {t.label} starts before {need} ends"


@pytest.mark.parametrize("strategy, mode", CASES)
def test_what_a_matmul_needs_is_real(strategy, mode):
    """A matmul of FSDP waits for its gathered weight; TP's next matmul waits for the all-reduce."""
    tasks = {t.label: t for t in timeline.tasks(strategy, stack(1024), mode)}
    for label, t in tasks.items():
        if strategy == "fsdp" and t.stream == timeline.COMPUTE:
            weight = f"G{label[1:]}" + ("b" if label.startswith("B") else "")
            assert weight in t.after, f"fsdp {mode}: {label} does not wait for {weight}"
        if strategy == "fsdp" and label.startswith("R"):
            assert f"B{label[1:]}" in t.after, f"fsdp {mode}: {label} does not wait for its gradient"
    if strategy == "tp" and mode != "split":
        assert "AF1" in tasks["F2"].after, f"tp {mode}: layer 2 does not wait for the pair's all-reduce"


@pytest.mark.parametrize("strategy, mode", CASES)
@pytest.mark.parametrize("tokens", [64, 1024, THRESHOLD, 8192])
def test_overlap_is_bounded_by_its_streams(strategy, mode, tokens):
    s = stack(tokens)
    off, st = timeline.step(strategy, s, "off"), timeline.step(strategy, s, mode)
    assert off.time == pytest.approx(off.compute + off.comm, rel=1e-12)
    assert st.compute == pytest.approx(off.compute) and st.comm == pytest.approx(off.comm)
    assert max(st.compute, st.comm) <= st.time * (1 + 1e-12) <= off.time * (1 + 1e-12)


def test_tp_cannot_overlap_without_splitting():
    s = stack(4096)
    off, on, split = (timeline.step("tp", s, m) for m in ("off", "on", "split"))
    assert on.time == pytest.approx(off.time, rel=1e-12)
    assert split.time < 0.8 * off.time


@pytest.mark.parametrize("L", [2, 4, 6])
@pytest.mark.parametrize("above", [1.05, 2.0, 8.0])
def test_fsdp_above_the_threshold_exposes_only_the_first_gather_and_the_last_reduce(L, above):
    s = stack(THRESHOLD * above, L)
    tg = gather_seconds(s)  # a reduce-scatter of the gradient sends the same bytes
    st = timeline.step("fsdp", s, "on")
    assert st.compute == pytest.approx(3 * L * s.forward_seconds)
    assert st.exposed == pytest.approx(2 * tg, rel=1e-9)
    assert timeline.step("fsdp", s, "off").exposed == pytest.approx(3 * L * tg, rel=1e-9)


@pytest.mark.parametrize("below", [2.0, 4.0, 16.0])
def test_fsdp_below_the_threshold_exposes_the_shortfall(below):
    """Far enough below (a gather takes at least a backward matmul), the comm stream never
    rests: the step is all the communication, and what is exposed is comm - compute."""
    s = stack(THRESHOLD / below)
    st = timeline.step("fsdp", s, "on")
    assert st.time == pytest.approx(3 * s.L * gather_seconds(s), rel=1e-9)
    assert st.exposed == pytest.approx(st.comm - st.compute, rel=1e-9)


def test_threshold_is_where_compute_meets_communication():
    at = timeline.step("fsdp", stack(THRESHOLD), "off")
    assert at.compute == pytest.approx(at.comm, rel=1e-9)


@pytest.mark.parametrize("tokens", [100, THRESHOLD, 5000])
@pytest.mark.parametrize("L", [1, 3])
def test_fsdp_forward_closed_form(tokens, L):
    s = stack(tokens, L)
    tf, tg = s.forward_seconds, gather_seconds(s)
    st = timeline.step("fsdp", s, "on", backward=False)
    assert st.time == pytest.approx(tg + tf + (L - 1) * max(tf, tg), rel=1e-9)


def test_dp_exposes_only_the_last_all_reduce_when_compute_bound():
    s = stack(8192)
    ar = 2 * gather_seconds(s)  # ring all-reduce: twice a gather's bytes
    assert timeline.step("dp", s, "on").exposed == pytest.approx(ar, rel=1e-9)


def test_an_impossible_schedule_is_refused():
    t = timeline.Task
    with pytest.raises(Error, match="impossible"):  # the stream's first task needs its second
        timeline.schedule([t("comm", "a", 1.0, ("b",)), t("comm", "b", 1.0)])
    with pytest.raises(Error, match="unknown"):
        timeline.schedule([t("compute", "a", 1.0, ("nope",))])
    with pytest.raises(Error):
        timeline.step("fsdp", stack(64), "split")
