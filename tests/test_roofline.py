"""shared.roofline: closed forms vs compiled cost analysis, the classifier, the plot."""

import jax
import jax.numpy as jnp
import pytest

from shared import roofline
from shared.hardware import CHIPS, Chip
from shared.timing import Timing

spec = jax.ShapeDtypeStruct  # costs come from compilation alone: nothing is allocated


@pytest.mark.parametrize("m,k,n", [(128, 128, 128), (256, 512, 128), (1000, 64, 300)])
def test_matmul_cost_matches_closed_form(m, k, n):
    c = roofline.cost(jnp.matmul, spec((m, k), jnp.float32), spec((k, n), jnp.float32))
    # Exact: a matmul does 2 FLOPs per multiply-add and reads/writes each operand once.
    assert c.flops == 2 * m * k * n, f"[{m},{k}]@[{k},{n}] flops: expected {2 * m * k * n}, got {c.flops}"
    expected = (m * k + k * n + m * n) * 4
    assert c.bytes == expected, f"[{m},{k}]@[{k},{n}] float32 bytes: expected {expected}, got {c.bytes}"


def test_bf16_matmul_with_float32_accumulation_cost():
    m = k = n = 256
    f = lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32)
    c = roofline.cost(f, spec((m, k), jnp.bfloat16), spec((k, n), jnp.bfloat16))
    expected = (m * k + k * n) * 2 + m * n * 4  # bf16 inputs, float32 output
    assert c.bytes == expected, f"bf16 x bf16 -> f32 bytes: expected {expected}, got {c.bytes}"


def test_elementwise_add_cost():
    n = 1 << 16
    c = roofline.cost(jnp.add, spec((n,), jnp.float32), spec((n,), jnp.float32))
    assert (c.flops, c.bytes) == (n, 3 * n * 4), f"add of {n}: expected ({n}, {12 * n}), got {c}"


def test_classifier_on_this_cpu():
    """A 2048^3 matmul (intensity 341 FLOP/B) is compute-bound and an add (1/12) memory-bound
    on any CPU whose ridge lies between them, which the calibrated one does (a few FLOP/B)."""
    mm = roofline.analyze(jnp.matmul, spec((2048, 2048), jnp.float32), spec((2048, 2048), jnp.float32),
                          measure=False)
    add = roofline.analyze(jnp.add, spec((1 << 22,), jnp.float32), spec((1 << 22,), jnp.float32),
                           measure=False)
    assert mm.chip.measured, f"expected the calibrated CPU entry, got {mm.chip.name}"
    assert add.intensity < mm.ridge < mm.intensity, \
        f"CPU ridge {mm.ridge:.3g} FLOP/B not between add ({add.intensity:.3g}) and matmul ({mm.intensity:.3g})"
    assert (mm.bound, add.bound) == ("compute", "memory"), f"got matmul {mm.bound}, add {add.bound}"


def bf16_matmul(a, b):
    """bf16 inputs, float32 accumulation and output: 2n^3 FLOPs, (2 * 2 + 4) n^2 bytes when square."""
    return jnp.matmul(a, b, preferred_element_type=jnp.float32)


@pytest.mark.parametrize("n,expected", [(512, "memory"), (2048, "compute")])
def test_classifier_on_a_named_chip(n, expected):
    # Intensity 2n^3 / 8n^2 = n / 4; the H100's ridge is 9.89e14 / 3.35e12 = 295 FLOP/B.
    a = roofline.analyze(bf16_matmul, spec((n, n), jnp.bfloat16), spec((n, n), jnp.bfloat16), chip="H100")
    assert a.timing is None, "a named chip's analysis must not time anything on this machine"
    assert a.bound == expected, f"{n}^3 bf16 on H100 (intensity {n / 4:.0f} vs ridge 295): expected {expected}, got {a.bound}"


def test_bound_and_fraction():
    n = 8192
    a = roofline.analyze(bf16_matmul, spec((n, n), jnp.bfloat16), spec((n, n), jnp.bfloat16), chip="H100")
    compute_s = 2 * n**3 / 9.89e14  # H100 dense bf16 datasheet peak
    assert a.bound_s == pytest.approx(compute_s, rel=1e-9), f"bound {a.bound_s} s, expected {compute_s} s"
    timed = roofline.Analysis(a.name, a.cost, a.chip, a.dtype, Timing(3 * compute_s, 2 * compute_s, 4 * compute_s, 3))
    assert timed.fraction == pytest.approx(0.5), f"best run at 2x the bound must give 0.5, got {timed.fraction}"
    assert timed.achieved_flops == pytest.approx(9.89e14 / 2), f"achieved {timed.achieved_flops:.3g} FLOP/s"


def test_measures_on_this_machine():
    x = jnp.ones((256, 256))
    a = roofline.analyze(jnp.matmul, x, x, runs=2)
    assert a.timing is not None and a.timing.runs == 2, f"expected 2 timed runs, got {a.timing}"
    assert a.fraction > 0, f"fraction of bound {a.fraction}"


def test_donated_analysis_costs_the_same_and_is_timed():
    x, y = jnp.ones((1 << 16,)), jnp.ones((1 << 16,))
    fresh = roofline.analyze(jnp.add, x, y, measure=False)
    donated = roofline.analyze(jnp.add, x, y, runs=3, donate=True)
    assert donated.cost == fresh.cost, f"donation changed the cost: {donated.cost} vs {fresh.cost}"
    assert donated.timing.runs == 3, f"expected 3 timed runs, got {donated.timing}"
    assert not x.is_deleted(), "analyze(donate=True) must not consume the caller's array"


def test_read_bandwidth():
    cpu = roofline.chip_named(None)
    assert cpu.read_only_bw and cpu.read_bw == cpu.read_only_bw, f"CPU read-only calibration missing: {cpu}"
    h100 = CHIPS["H100"]
    assert h100.read_bw == h100.memory_bw, "a datasheet chip reads at its one quoted bandwidth"


def test_bad_chip_and_dtype_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown chip 'H900'; known chips: TPU v4"):
        roofline.chip_named("H900")
    with pytest.raises(ValueError, match="no float32 peak"):
        roofline.peak_flops(CHIPS["H100"], "float32")


def test_plot_writes_a_png(tmp_path):
    chip = Chip("test chip", {"float32": 1e11}, 1e10)  # ridge at 10 FLOP/B
    x = spec((512, 512), jnp.float32)
    points = [roofline.Analysis("matmul", roofline.cost(jnp.matmul, x, x), chip, "float32",
                                Timing(0.01, 0.01, 0.01, 1)),
              roofline.Analysis("add", roofline.cost(jnp.add, x, x), chip, "float32",
                                Timing(0.001, 0.001, 0.001, 1))]
    path = roofline.plot_roofline(points, tmp_path / "sub" / "roofline.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, \
        f"{path} is not a PNG with a plot in it ({len(data)} bytes)"
