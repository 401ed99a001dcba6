"""Checks for hierarchy.py (exercises 4.10-4.11) on 8 simulated CPU devices (conftest.py).

Oracles: shared.network's placement rows for the tokens per chip each level asks (from
shared.hardware's sourced bandwidths), and for the bytes per level the collectives XLA
compiled into shared.network's hybrid training step on a mesh of simulated slices, each read
with the mesh axes its replica groups span (shared.network.placed_collectives). XLA on the CPU
reduces a gradient that stays split with an all-reduce; GPU and TPU compilers use a
reduce-scatter, whose bytes come from shared.network.hybrid_step_prediction.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong answers (tests/wrong/hierarchy_*.py); the test_* functions at the
bottom are thin wrappers over them.
"""

from __future__ import annotations

import functools

import jax
import pytest

from shared import hardware, network
from shared.course import imports

ALLOWED = ("stdlib", "shared.config", "shared.collectives", "shared.hardware")
NOT_ALLOWED = {"shared.network": "it holds the placement rows and the per-level byte counts this exercise writes"}
# (chip, chips per slice, slices): the fast level binds for the first two, the network for the rest
PLANS = [("H100", 8, 2), ("TPU v5p", 256, 2), ("A100", 8, 64), ("TPU v5e", 4, 2), ("B200", 8, 32)]
B = 64  # tokens in the compiled steps' batch (any multiple of 8 gives the same bytes)


def check_imports(m):
    """Fails on the first module the answer's file imports that it may not; returns m."""
    return imports.check(m, ALLOWED, NOT_ALLOWED)


def check_hybrid_tokens_per_chip(m):
    for chip, n_within, n_across in PLANS:
        rows = network.placement_rows(chip, n_within, n_across)
        fsdp, dp, whole = rows[0][3], rows[1][3], rows[3][3]  # FSDP within; DP across after it; without
        want = max(fsdp, dp)
        fast, slow = network.level_bandwidth(chip, "fast"), network.level_bandwidth(chip, "network")
        peak = hardware.CHIPS[chip].flops("bfloat16")
        got = m.hybrid_tokens_per_chip(peak, fast, slow, n_within, n_across, 2)
        if got == pytest.approx(want, rel=1e-9):
            continue
        where = f"hybrid_tokens_per_chip ({n_across} x {n_within} {chip}, bf16)"
        if got == pytest.approx(max(fsdp, whole), rel=1e-9):
            raise AssertionError(f"{where}: got {got:,.0f}, as if each chip all-reduced whole gradients across "
                                 f"slices: after FSDP within, a chip holds and sends only its 1/{n_within}; "
                                 f"want {want:,.0f}")
        if got == pytest.approx(dp, rel=1e-9) or got == pytest.approx(fsdp, rel=1e-9):
            raise AssertionError(f"{where}: got {got:,.0f}, what one level asks: both levels must hide, "
                                 f"FSDP within asks {fsdp:,.0f} and DP across {dp:,.0f} tokens per chip")
        raise AssertionError(f"{where}: got {got:,.0f} tokens per chip, want {want:,.0f} (FSDP within "
                             f"asks {fsdp:,.0f}, DP across {dp:,.0f})")


@functools.cache
def _compiled(n_across: int, n_within: int, E: int, L: int) -> dict[str, float]:
    """Bytes per level of shared.network's hybrid step, compiled on n_across x n_within devices."""
    mesh = network.slice_mesh(n_across, n_within, jax.devices("cpu")[:n_across * n_within])
    ws, x = network.hybrid_init(jax.random.key(0), B, E, L, mesh)
    text = network.hybrid_step(mesh).lower(ws, x).compile().as_text()
    return network.bytes_by_level(network.placed_collectives(text, mesh))


def _diagnose(where: str, got: dict, want: dict, gather: float) -> str:
    fast, net = got.get("fast", 0.0), got.get("network", 0.0)
    if net == pytest.approx(want["network"] * want["n_within"], rel=1e-9) and want["network"]:
        return (f"{where}: network {net:,.0f} bytes is the whole gradient's all-reduce: across slices a chip "
                f"all-reduces only the rows it holds, want {want['network']:,.0f}")
    if fast != pytest.approx(want["fast"], rel=1e-9):
        return (f"{where}: fast level {fast:,.0f} bytes, want {want['fast']:,.0f} (one layer's gather sends "
                f"{gather:,.0f}; a reduce-scatter sends as much as a gather, an all-reduce twice that)")
    return f"{where}: network level {net:,.0f} bytes, want {want['network']:,.0f}"


def check_hybrid_bytes_per_level(m):
    for n_across, n_within, E, L in [(2, 4, 32, 2), (4, 2, 16, 3)]:
        want = _compiled(n_across, n_within, E, L)
        got = m.hybrid_bytes_per_level(E, L, n_across, n_within, 4, "all-reduce")
        where = (f"hybrid_bytes_per_level ({n_across} slices x {n_within}, E = {E}, L = {L}, float32, "
                 "all-reduce as XLA compiled it on the CPU)")
        if not (got.get("fast") == pytest.approx(want["fast"], rel=1e-9)
                and got.get("network") == pytest.approx(want["network"], rel=1e-9)):
            raise AssertionError(_diagnose(where, got, {**want, "n_within": n_within},
                                           E * E * 4 * (n_within - 1) / n_within))
    for n_across, n_within, E, L, b in [(2, 4, 32, 2, 4), (2, 256, 8192, 4, 2), (8, 8, 4096, 3, 2)]:
        want = network.hybrid_step_prediction(B, E, L, n_across, n_within, b, "reduce-scatter")
        got = m.hybrid_bytes_per_level(E, L, n_across, n_within, b, "reduce-scatter")
        where = (f"hybrid_bytes_per_level ({n_across} slices x {n_within}, E = {E}, L = {L}, {b}-byte "
                 "elements, reduce-scatter as on GPU and TPU)")
        if not (got.get("fast") == pytest.approx(want["fast"], rel=1e-9)
                and got.get("network") == pytest.approx(want["network"], rel=1e-9)):
            raise AssertionError(_diagnose(where, got, {**want, "n_within": n_within},
                                           E * E * b * (n_within - 1) / n_within))


def test_hybrid_tokens_per_chip(answers):
    check_hybrid_tokens_per_chip(check_imports(answers))


def test_hybrid_bytes_per_level(answers):
    check_hybrid_bytes_per_level(check_imports(answers))
