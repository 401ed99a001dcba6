"""Checks for exercises 8.1-8.6 against shared.roofline, explicit per-token counts and closed forms."""

import math

from shared import roofline
from shared.hardware import Chip

CHIP = Chip("test chip", {"bfloat16": 2e14}, 1e12)  # 200 TFLOP/s, 1 TB/s: ridge at 200 FLOP/B


def test_mfu(answers):
    for flops, seconds in ((3e13, 0.5), (1e9, 1e-3), (2e14, 1.0)):
        want = roofline.mfu(flops, seconds, CHIP, "bfloat16")
        got = answers.mfu(flops, seconds, 2e14)
        assert math.isclose(got, want, rel_tol=1e-12), \
            f"mfu({flops}, {seconds}, 2e14): expected {want} (FLOP/s over peak), got {got}"


def test_mbu(answers):
    for nbytes, seconds in ((5e11, 1.0), (1e6, 1e-6)):
        want = roofline.mbu(nbytes, seconds, CHIP)
        got = answers.mbu(nbytes, seconds, 1e12)
        assert math.isclose(got, want, rel_tol=1e-12), \
            f"mbu({nbytes}, {seconds}, 1e12): expected {want} (bytes/s over bandwidth), got {got}"


def test_decode_step_lower_bound(answers):
    # A 7B-parameter bf16 model (14 GB) with a 2 GB cache on a 3.35 TB/s H100: 16 GB / 3.35 TB/s.
    got = answers.decode_step_lower_bound(14e9, 2e9, 3.35e12)
    assert math.isclose(got, 16e9 / 3.35e12, rel_tol=1e-9), \
        f"expected {16e9 / 3.35e12 * 1e3:.3f} ms (all weights and cache read once), got {got * 1e3:.3f} ms"


def _per_token(n_params, n_layers, d_model, j):
    return 2 * n_params + 4 * n_layers * d_model * (j + 1)


def test_generation_flops(answers):
    N, L, E = 1_000_000, 4, 128
    for P, n in ((1, 1), (7, 5), (32, 64)):
        naive = sum(_per_token(N, L, E, j) for i in range(n) for j in range(P + i))
        cached = sum(_per_token(N, L, E, j) for j in range(P)) + \
            sum(_per_token(N, L, E, P + i - 1) for i in range(1, n))
        got_naive = answers.generation_flops(N, L, E, P, n, cached=False)
        got_cached = answers.generation_flops(N, L, E, P, n, cached=True)
        assert math.isclose(got_naive, naive, rel_tol=1e-12), \
            f"naive, prompt {P}, {n} tokens: expected {naive:.4g} (every step reruns the context), got {got_naive:.4g}"
        assert math.isclose(got_cached, cached, rel_tol=1e-12), \
            f"cached, prompt {P}, {n} tokens: expected {cached:.4g} (prompt once, then one token per step), got {got_cached:.4g}"


def test_decode_intensity(answers):
    for batch, bpp in ((1, 2), (8, 2), (64, 1), (3, 4)):
        got = answers.decode_intensity(batch, bpp)
        assert math.isclose(got, 2 * batch / bpp), \
            f"batch {batch}, {bpp} B/param: expected {2 * batch / bpp} FLOP/B (2 FLOPs per row per weight read once), got {got}"


def test_which_bound(answers):
    # The ridge point is 200 FLOP/B: intensity 2 (decode at batch 1) and 100 are memory-bound,
    # 200 sits on the ridge (compute by the rule given), 1000 is compute-bound.
    workloads = [(2e9, 1e9), (1e11, 1e9), (2e11, 1e9), (1e12, 1e9)]
    want = ["memory", "memory", "compute", "compute"]
    got = answers.which_bound(workloads, 2e14, 1e12)
    assert got == want, f"ridge 200 FLOP/B, intensities 2, 100, 200, 1000: expected {want}, got {got}"
