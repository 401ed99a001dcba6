"""Checks for costs.py: closed forms against XLA's cost analysis of compiled programs.

Oracles: shared.roofline.cost (FLOPs and bytes of the program as compiled here) for
float32, where the compiled program is exactly the ideal one; exact rational closed
forms for the ridge-point questions; the chip table in shared.hardware.
"""

from fractions import Fraction

import jax
import jax.numpy as jnp
import pytest

from shared import roofline
from shared.hardware import CHIPS

spec = jax.ShapeDtypeStruct  # compile-only: nothing is allocated
f32 = jnp.float32
SHAPES = [(128, 128, 128), (256, 512, 64), (96, 40, 200)]


def matmul_oracle(m, k, n):
    return roofline.cost(jnp.matmul, spec((m, k), f32), spec((k, n), f32))


def relu_oracle(m, n):
    return roofline.cost(jax.nn.relu, spec((m, n), f32))


@pytest.mark.parametrize("shape", [(1024,), (64, 48), (8, 16, 32)])
def test_add_cost(answers, shape):
    c = roofline.cost(jnp.add, spec(shape, f32), spec(shape, f32))
    got = answers.add_cost(shape, 4)
    assert tuple(got) == (c.flops, c.bytes), f"add {shape} float32: expected (flops, bytes) = ({c.flops:.0f}, {c.bytes:.0f}) from XLA's cost analysis, got {got}"
    half = answers.add_cost(shape, 2)
    assert tuple(half) == (c.flops, c.bytes / 2), f"add {shape} with itemsize 2: bytes halve, FLOPs stay; expected ({c.flops:.0f}, {c.bytes / 2:.0f}), got {half}"


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_matmul_cost(answers, m, k, n):
    c = matmul_oracle(m, k, n)
    got = answers.matmul_cost(m, k, n, 4)
    assert tuple(got) == (c.flops, c.bytes), f"[{m},{k}]@[{k},{n}] float32: expected ({c.flops:.0f}, {c.bytes:.0f}) from XLA's cost analysis, got {got}"


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_relu_matmul_cost(answers, m, k, n):
    mm, relu = matmul_oracle(m, k, n), relu_oracle(m, n)
    # Op by op, XLA runs a matmul program then a relu program; fused, the relu adds FLOPs but no traffic.
    unfused = (mm + relu).flops, (mm + relu).bytes
    fused = mm.flops + relu.flops, mm.bytes
    got = answers.relu_matmul_cost(m, k, n, 4, fused=False)
    assert tuple(got) == unfused, f"relu([{m},{k}]@[{k},{n}]) unfused: expected {unfused} (matmul + relu programs' cost analysis), got {got}"
    got = answers.relu_matmul_cost(m, k, n, 4, fused=True)
    assert tuple(got) == fused, f"relu([{m},{k}]@[{k},{n}]) fused: expected {fused} (matmul's bytes only), got {got}"


@pytest.mark.parametrize("n", [256, 1024, 4096])
def test_fusion_speedup(answers, n):
    mm, relu = matmul_oracle(n, n, n), relu_oracle(n, n)
    expected = (mm + relu).bytes / mm.bytes  # the dtype cancels out of the ratio
    got = answers.fusion_speedup(n)
    assert got == pytest.approx(expected, rel=1e-9), f"n={n}: expected unfused/fused bytes = {expected:.4f}, got {got}"


@pytest.mark.parametrize("s,d", [(256, 64), (1024, 128), (512, 512)])
def test_attention_chain_intensity(answers, s, d):
    first = roofline.cost(jnp.matmul, spec((s, d), f32), spec((d, s), f32))  # A @ B -> [s, s]
    second = roofline.cost(jnp.matmul, spec((d, s), f32), spec((s, s), f32))  # C @ X -> [d, s]
    flops = first.flops + second.flops
    ideal = flops / (4 * s * d * 4)  # A, B, C in, [d, s] out
    materialised = flops / (first.bytes + second.bytes)  # two programs: [s, s] written, read back
    got = answers.attention_chain_intensity(s, d, 4)
    assert got[0] == pytest.approx(ideal, rel=1e-9), f"S={s}, D={d} float32: ideal intensity expected {ideal:.4g}, got {got[0]}"
    assert got[1] == pytest.approx(materialised, rel=1e-9), f"S={s}, D={d} float32: materialised intensity expected {materialised:.4g} (two separately compiled matmuls), got {got[1]}"


def test_regime(answers):
    h100 = CHIPS["H100"]
    ridge = h100.flops("bfloat16") / h100.memory_bw
    for intensity, expected in [(ridge * 1.01, "compute"), (ridge * 0.99, "memory"), (ridge, "compute"), (0.25, "memory")]:
        got = answers.regime(intensity, h100.flops("bfloat16"), h100.memory_bw)
        assert got == expected, f"H100 bf16 (ridge {ridge:.1f} FLOP/B), intensity {intensity:.4g}: expected {expected!r}, got {got!r}"
    # Attention at S=4096, D=128 in bf16: the chain is compute-bound only if the [S, S] scores stay on chip.
    ideal, materialised = answers.attention_chain_intensity(4096, 128, 2)
    assert answers.regime(ideal, h100.flops("bfloat16"), h100.memory_bw) == "compute", f"ideal intensity {ideal:.0f} > H100 ridge {ridge:.0f}: expected compute-bound"
    assert answers.regime(materialised, h100.flops("bfloat16"), h100.memory_bw) == "memory", f"materialised intensity {materialised:.0f} < H100 ridge {ridge:.0f}: expected memory-bound"


@pytest.mark.parametrize("n,seconds", [(1024, 2e-5), (8192, 1.4e-3), (64, 3e-6)])
def test_matmul_mfu_mbu(answers, n, seconds):
    h100 = CHIPS["H100"]
    c = matmul_oracle(n, n, n)  # float32 FLOPs and bytes; bf16 halves the bytes
    expected = (roofline.mfu(c.flops, seconds, h100), roofline.mbu(c.bytes / 2, seconds, h100))
    got = answers.matmul_mfu_mbu(n, seconds, h100.flops("bfloat16"), h100.memory_bw, 2)
    assert got[0] == pytest.approx(expected[0], rel=1e-9), f"{n}^3 bf16 in {seconds} s on H100: MFU expected {expected[0]:.4f}, got {got[0]}"
    assert got[1] == pytest.approx(expected[1], rel=1e-9), f"{n}^3 bf16 in {seconds} s on H100: MBU expected {expected[1]:.4f}, got {got[1]}"


@pytest.mark.parametrize("name", list(CHIPS))
@pytest.mark.parametrize("itemsize", [1, 2, 4])
def test_smallest_compute_bound_matmul(answers, name, itemsize):
    chip = CHIPS[name]
    peak, bw = Fraction(chip.flops("bfloat16")), Fraction(chip.memory_bw)

    def compute_bound(n):  # exact: 2n^3 / (3 n^2 itemsize) >= peak / bw
        return Fraction(2 * n, 3 * itemsize) >= peak / bw

    n = answers.smallest_compute_bound_matmul(chip.flops("bfloat16"), chip.memory_bw, itemsize)
    assert compute_bound(n), f"{name}, itemsize {itemsize}: n={n} has intensity {2 * n / (3 * itemsize):.1f} < ridge {float(peak / bw):.1f}"
    assert not compute_bound(n - 1), f"{name}, itemsize {itemsize}: n-1={n - 1} is already compute-bound, so {n} is not the smallest"
