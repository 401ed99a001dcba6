"""Checks for exercises 7.4-7.6: FLOPs from XLA's cost analysis, bytes from its memory analysis."""

import jax
import pytest

from shared import hardware

H100 = hardware.CHIPS["H100"]


def test_min_chips_for_prefill(answers):
    # Oracle: XLA counts the FLOPs of one [T, E] @ [E, F] layer (E * F parameters).
    T, E, F = 4096, 512, 1024
    x, w = jax.ShapeDtypeStruct((T, E), "bfloat16"), jax.ShapeDtypeStruct((E, F), "bfloat16")
    flops = jax.jit(lambda x, w: x @ w).lower(x, w).compile().cost_analysis()["flops"]
    want = flops / (0.5 * 1e12)
    got = answers.min_chips_for_prefill(E * F, T, 0.5, 1e12)
    # XLA also counts a few elementwise FLOPs per output (T * F, 0.2% here): 1% tolerance.
    assert got == pytest.approx(want, rel=1e-2), f"expected {want:.4f} chips, got {got!r}"


def test_min_chips_for_prefill_70b(answers):
    # 70e9 params, a 32k-token prompt in 2 s on H100s (bf16 dense peak from shared.hardware).
    peak = H100.flops("bfloat16")
    want = 2 * 70e9 * 32768 / (2.0 * peak)
    got = answers.min_chips_for_prefill(70e9, 32768, 2.0, peak)
    assert got == pytest.approx(want), f"expected {want:.2f} H100s, got {got!r}"


def test_min_chips_to_fit(answers):
    # Oracle: the compiled size of the weights themselves.
    n = 3 * 2**20
    for dtype, b in (("float32", 4), ("bfloat16", 2), ("int8", 1)):
        size = jax.jit(lambda: jax.numpy.zeros((n,), dtype)).lower().compile().memory_analysis()
        want = size.output_size_in_bytes / 2**20
        got = answers.min_chips_to_fit(n, b, 2**20)
        assert got == pytest.approx(want), f"{n} {dtype} params on 1 MiB chips: expected {want}, got {got!r}"


def test_min_chips_for_decode_rate(answers):
    bw = H100.memory_bw
    want = 8e9 * 2 * 100 / bw  # 8B bf16 params, 100 steps/s: 1.6 TB/s of weight reads
    got = answers.min_chips_for_decode_rate(8e9, 2, 100, bw)
    assert got == pytest.approx(want), f"expected {want:.3f} H100s, got {got!r}"
    got2 = answers.min_chips_for_decode_rate(8e9, 1, 200, bw)
    assert got2 == pytest.approx(want), f"int8 at twice the rate needs the same bandwidth: {want:.3f}, got {got2!r}"
