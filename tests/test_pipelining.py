"""shared.kernels.matmul_k_grid in interpret mode, and pipeline_model against hand calculations.

The kernel runs on the CPU in interpret mode (small shapes: every grid step is a separate
program); the model is arithmetic on the figures of shared.hardware.CHIPS.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import kernels
from shared.config import Error
from shared.hardware import CHIPS

# float32 sums of <= 96 unit-scale products in another order: a few ulps of the largest value.
REL_TOL = 1e-5


def _normal(shape, seed, dtype=jnp.float32):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32).astype(dtype)


def _rel_error(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return np.abs(got - want).max() / np.abs(want).max()


@pytest.mark.parametrize("blocks", [(32, 16, 32), (64, 48, 96)], ids=["grid 2x3x3", "one step"])
def test_matmul_k_grid_float32_equals_dot(blocks):
    # grid (2, 3, 3): the scratch accumulator is reused by 6 output blocks, so a missing
    # zero at k == 0 or a store before the last k gives a wrong answer here.
    x, y = _normal((64, 96), 0), _normal((96, 48), 1)
    got = kernels.matmul_k_grid(x, y, blocks=blocks)
    want = jnp.dot(x, y, precision=jax.lax.Precision.HIGHEST)
    assert got.shape == (64, 48) and got.dtype == jnp.float32
    assert _rel_error(got, want) < REL_TOL, f"blocks {blocks}: relative error {_rel_error(got, want):.1e}"


def test_matmul_k_grid_bfloat16_accumulates_in_float32():
    x, y = _normal((32, 64), 2, jnp.bfloat16), _normal((64, 32), 3, jnp.bfloat16)
    got = kernels.matmul_k_grid(x, y, blocks=(16, 16, 16), out_dtype=jnp.float32)
    want = jnp.dot(x, y, preferred_element_type=jnp.float32)  # bf16 products are exact in float32
    assert got.dtype == jnp.float32
    assert _rel_error(got, want) < REL_TOL
    # the default out_dtype is x's: one rounding to bfloat16 of the float32 sum
    low = kernels.matmul_k_grid(x, y, blocks=(16, 16, 16))
    assert low.dtype == jnp.bfloat16
    assert np.array_equal(np.asarray(low, np.float32), np.asarray(want.astype(jnp.bfloat16), np.float32))


def test_matmul_k_grid_rejects_blocks_that_do_not_divide():
    x, y = _normal((48, 32), 4), _normal((32, 32), 5)
    with pytest.raises(kernels.BlockError, match=r"\(32, 16, 32\).*\(48, 32, 32\)"):
        kernels.matmul_k_grid(x, y, blocks=(32, 16, 32))
    with pytest.raises(Error, match="inner dimensions"):
        kernels.matmul_k_grid(x, _normal((16, 32), 6))


def test_matmul_k_grid_refuses_a_gpu_unless_interpreted(monkeypatch):
    monkeypatch.setattr(kernels, "platform", lambda: "gpu")
    x, y = _normal((16, 16), 7), _normal((16, 16), 8)
    with pytest.raises(Error, match="kernels.matmul"):
        kernels.matmul_k_grid(x, y, blocks=(16, 16, 16))


# --- the pipeline model, by hand ------------------------------------------------------------------

V5E_P, V5E_W = 1.97e14, 8.2e11  # shared.hardware: TPU v5e bf16 peak, HBM bytes/s
H100_P, H100_W = 9.89e14, 3.35e12


def test_table_figures_are_the_ones_used_here():
    assert (CHIPS["TPU v5e"].flops("bfloat16"), CHIPS["TPU v5e"].memory_bw) == (V5E_P, V5E_W)
    assert (CHIPS["H100"].flops("bfloat16"), CHIPS["H100"].memory_bw) == (H100_P, H100_W)


def test_v5e_512_blocks_hide_their_copies():
    p = kernels.pipeline_model(4096, 4096, 4096, (512, 512, 512), "TPU v5e")
    assert p.grid == (8, 8, 8) and p.steps == 512
    assert p.flops_per_step == 2 * 512**3 == 268_435_456
    assert p.bytes_per_step == (512 * 512 + 512 * 512) * 2 == 1_048_576
    assert p.out_bytes_per_block == 512 * 512 * 2
    # 2 x (x block + y block + out block) + float32 accumulator = 2 x 1.5 MiB + 1 MiB
    assert p.vmem_bytes == 2 * (1_048_576 + 524_288) + 512 * 512 * 4 == 4 * 2**20
    assert p.fits is True  # 4 MiB of 128 MiB
    assert p.compute_s == pytest.approx(268_435_456 / V5E_P)  # 1.36 us
    assert p.copy_s == pytest.approx(1_048_576 / V5E_W)  # 1.28 us
    assert p.hidden
    assert p.intensity == 256.0 and p.ridge == pytest.approx(V5E_P / V5E_W)  # 256 >= 240.2
    assert p.min_square_block == pytest.approx(2 * V5E_P / V5E_W)  # 480.5
    want = 1_048_576 / V5E_W + 512 * 268_435_456 / V5E_P + 524_288 / V5E_W
    assert p.time_s == pytest.approx(want)


def test_v5e_128_blocks_wait_for_their_copies():
    p = kernels.pipeline_model(4096, 4096, 4096, (128, 128, 128), "TPU v5e")
    assert p.intensity == 64.0 and not p.hidden
    assert p.copy_s / p.compute_s == pytest.approx(V5E_P / V5E_W / 64)  # 3.75: copies set the pace
    assert p.time_s == pytest.approx(p.copy_s * (1 + p.steps) + 128 * 128 * 2 / V5E_W)
    assert p.vmem_bytes == 2 * (2 * 128 * 128 * 2 + 128 * 128 * 2) + 128 * 128 * 4 == 256 * 2**10


def test_h100_needs_blocks_over_590():
    p = kernels.pipeline_model(4096, 4096, 4096, (512, 512, 512), "H100")
    assert p.min_square_block == pytest.approx(2 * H100_P / H100_W)  # 590.4
    assert not p.hidden  # intensity 256 < 295.2
    assert p.fits is False  # 4 MiB > 228 KiB of shared memory per SM
    small = kernels.pipeline_model(4096, 4096, 4096, (128, 128, 64), "H100")
    assert small.vmem_bytes == 2 * (2 * 128 * 64 * 2 + 128 * 128 * 2) + 128 * 128 * 4 == 192 * 2**10
    assert small.fits is True


@pytest.mark.parametrize("bk", [64, 256, 4096])
def test_bk_changes_vmem_not_the_condition(bk):
    p = kernels.pipeline_model(4096, 4096, 4096, (256, 1024, bk), "TPU v5e")
    assert p.intensity == pytest.approx(2 * 256 * 1024 / ((256 + 1024) * 2))  # 204.8, whatever bk
    assert not p.hidden
    assert p.vmem_bytes == 2 * ((256 * bk + bk * 1024) * 2 + 256 * 1024 * 2) + 256 * 1024 * 4


@pytest.mark.parametrize("blocks", [(128, 128, 128), (512, 256, 64), (256, 512, 4096)])
def test_total_bytes_are_matmul_hbm_bytes(blocks):
    # K on the grid moves exactly what the in-kernel K loop moves: x N/bn times, y M/bm times.
    p = kernels.pipeline_model(4096, 4096, 4096, blocks, "TPU v5e", out_dtype="float32")
    assert p.hbm_bytes == kernels.matmul_hbm_bytes(4096, 4096, 4096, blocks[0], blocks[1], 2, 4)


def test_pipeline_model_errors():
    with pytest.raises(Error, match="no chip"):
        kernels.pipeline_model(512, 512, 512, (128, 128, 128), "TPU v99")
    with pytest.raises(Error, match="float32"):  # the table quotes no float32 peak for a TPU
        kernels.pipeline_model(512, 512, 512, (128, 128, 128), "TPU v5e", dtype="float32")
    with pytest.raises(kernels.BlockError):
        kernels.pipeline_model(512, 512, 512, (100, 128, 128), "TPU v5e")
    by_chip = kernels.pipeline_model(512, 512, 512, (128, 128, 128), CHIPS["H100"])  # a Chip works too
    assert by_chip.on_chip_bytes == 228 * 2**10 and by_chip.fits is False  # 256 KiB > 228 KiB
