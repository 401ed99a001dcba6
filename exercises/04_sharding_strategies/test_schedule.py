"""Checks for schedule.py (exercise 4.9) against shared.timeline's simulated forward pass, which
schedules each gather and matmul event by event from their dependencies, in both regimes:
matmuls slower than gathers (H100 above lesson 04's threshold) and gathers slower.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong answers (tests/wrong/schedule_*.py); the test_* functions at the
bottom are thin wrappers over them.
"""

from __future__ import annotations

import pytest

from shared import hardware, timeline
from shared.course import imports

TASK = "fsdp_forward_overlapped"
ALLOWED = ("stdlib", "shared.config", "shared.collectives", "shared.hardware")
NOT_ALLOWED = {"shared.timeline": "it simulates the schedule whose time this exercise writes in closed form"}
# (chip, tokens per device, E, L, n): gathers hidden, gathers exposed, one layer, the two equal
CASES = [("H100", 4096, 8192, 4, 8), ("H100", 256, 4096, 6, 8), ("TPU v5e", 1024, 2048, 3, 4),
         ("A100", 8192, 4096, 1, 8), ("H100", 1923.0555555555557, 8192, 5, 8), ("B200", 64, 1024, 2, 16)]


def _simulated(chip, tokens, E, L, n):
    stack = timeline.Stack.on(chip, tokens * n, E, L, n)
    spec = hardware.CHIPS[chip]
    return stack, timeline.step("fsdp", stack, "on", backward=False), (spec.flops("bfloat16"), spec.link_bw)


def check_imports(m):
    """Fails on the first module the answer's file imports that it may not; returns m."""
    return imports.check(m, ALLOWED, NOT_ALLOWED)


def check_fsdp_forward_overlapped(m):
    for chip, tokens, E, L, n in CASES:
        stack, sim, (peak, link) = _simulated(chip, tokens, E, L, n)
        got = m.fsdp_forward_overlapped(tokens * n, E, L, n, peak, link, 2)
        if got == pytest.approx(sim.time, rel=1e-6):
            continue
        matmul, gather = stack.forward_seconds, stack.collective_seconds("all-gather", E * E)
        where = f"{chip}, B/n = {tokens:.0f}, E = {E}, L = {L}, n = {n}, bf16"
        if got == pytest.approx(L * max(matmul, gather), rel=1e-6):
            raise AssertionError(f"{TASK} ({where}): {got * 1e3:.4f} ms is L x max(gather, matmul), but the "
                                 f"first gather has nothing to hide behind and the last matmul nothing to "
                                 f"hide: the simulated schedule takes {sim.time * 1e3:.4f} ms")
        if got == pytest.approx(L * (matmul + gather), rel=1e-6):
            raise AssertionError(f"{TASK} ({where}): {got * 1e3:.4f} ms is every gather then every matmul in "
                                 f"turn, with no overlap: the simulated schedule takes {sim.time * 1e3:.4f} ms")
        raise AssertionError(f"{TASK} ({where}): got {got * 1e3:.4f} ms, the simulated schedule takes "
                             f"{sim.time * 1e3:.4f} ms (one matmul {matmul * 1e3:.4f} ms, one gather "
                             f"{gather * 1e3:.4f} ms)")


def test_fsdp_forward_overlapped(answers):
    check_fsdp_forward_overlapped(check_imports(answers))
