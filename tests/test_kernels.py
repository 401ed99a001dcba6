"""shared.kernels in interpret mode on the CPU, against numpy and shared.model oracles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import kernels
from shared.model import rms_norm

# float32 sums of <= 96 unit-scale products: blocking reorders additions only, a few ulps of ~10.
F32_ATOL = 1e-4


def _normal(shape, seed, dtype=jnp.float32):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32).astype(dtype)


def _f64(x):
    return np.asarray(x.astype(jnp.float32), np.float64)


def test_add_matches_numpy():
    x, y = _normal((32, 48), 0), _normal((32, 48), 1)
    got = kernels.add(x, y, blocks=(16, 16))
    assert np.array_equal(np.asarray(got), np.asarray(x) + np.asarray(y)), \
        "add must equal x + y exactly (one float32 addition per element)"


@pytest.mark.parametrize("shape,blocks", [((64, 96, 80), None), ((32, 64, 48), (16, 16, 16)),
                                          ((16, 32, 64), (16, 64, 32))])
def test_matmul_float32(shape, blocks):
    M, K, N = shape
    x, y = _normal((M, K), 2), _normal((K, N), 3)
    got = kernels.matmul(x, y, blocks=blocks)
    assert got.shape == (M, N) and got.dtype == jnp.float32, f"expected float32 {(M, N)}, got {got.dtype} {got.shape}"
    err = np.abs(np.asarray(got) - _f64(x) @ _f64(y)).max()
    assert err < F32_ATOL, f"blocks {blocks}: max |error| {err:.2e} vs numpy float64 > {F32_ATOL}"


def test_matmul_bfloat16_accumulates_in_float32():
    M, K, N = 32, 256, 32
    x, y = _normal((M, K), 4, jnp.bfloat16), _normal((K, N), 5, jnp.bfloat16)
    got = kernels.matmul(x, y, blocks=(16, 16, 16), out_dtype=jnp.float32)
    err = np.abs(np.asarray(got) - _f64(x) @ _f64(y)).max()
    # bf16 products are exact in float32; only float32 summation error remains (values ~16).
    # Accumulating in bfloat16 instead would give errors near 16 * 2^-8 = 0.06.
    assert err < 1e-3, f"max |error| {err:.2e} > 1e-3: the sum over K must be carried in float32"


@pytest.mark.parametrize("activation", [jax.nn.relu, jax.nn.gelu], ids=["relu", "gelu"])
def test_matmul_fused_activation(activation):
    x, y = _normal((32, 64), 6), _normal((64, 48), 7)
    got = kernels.matmul(x, y, blocks=(16, 16, 32), activation=activation)
    want = np.asarray(activation(jnp.asarray(_f64(x) @ _f64(y), jnp.float32)))
    err = np.abs(np.asarray(got) - want).max()
    assert err < F32_ATOL, f"max |error| {err:.2e} vs activation(x @ y) > {F32_ATOL}"


def test_matmul_hbm_bytes_counts_strips():
    # One output block: x, y and out each move exactly once.
    assert kernels.matmul_hbm_bytes(64, 32, 128, 64, 32, 2) == (64 * 128 + 128 * 32 + 64 * 32) * 2
    # Halving bn doubles the number of times x's strips are read, and nothing else.
    a = kernels.matmul_hbm_bytes(64, 64, 128, 64, 64, 4)
    b = kernels.matmul_hbm_bytes(64, 64, 128, 64, 32, 4)
    assert b - a == 64 * 128 * 4, f"halving bn should add one read of x (32768 bytes), added {b - a}"


@pytest.mark.parametrize("dtype,atol", [(jnp.float32, 1e-6), (jnp.bfloat16, 1e-2)])
def test_rmsnorm_matches_model(dtype, atol):
    # Same float32 arithmetic as shared.model.rms_norm; bf16 output rounds at 2^-8 of values ~2.
    x, scale = _normal((48, 64), 8, dtype), _normal((64,), 9)
    got = kernels.rmsnorm(x, scale, block_rows=16)
    want = rms_norm(x, scale)
    assert got.dtype == dtype, f"expected output dtype {dtype}, got {got.dtype}"
    err = np.abs(_f64(got) - _f64(want)).max()
    assert err <= atol, f"{jnp.dtype(dtype).name}: max |error| {err:.2e} vs shared.model.rms_norm > {atol}"


@pytest.mark.parametrize("where,shape,target,want", [
    ("cpu", (96, 100), (64, 64), (48, 50)),
    ("gpu", (96, 4096), (128, 128), (32, 128)),
    ("tpu", (96, 4096), (64, 512), (48, 512)),
    ("tpu", (40, 96), (128, 128), (40, 96)),  # dimensions within the target: the whole dimension
])
def test_choose_blocks(where, shape, target, want):
    got = kernels.choose_blocks(shape, target, where=where)
    assert got == want, f"choose_blocks({shape}, {target}, where={where!r}): expected {want}, got {got}"
    assert all(n % b == 0 for n, b in zip(shape, got)), f"{got} does not divide {shape}"


@pytest.mark.parametrize("where,shape,target", [("gpu", (100, 64), (64, 64)), ("tpu", (8, 300), (8, 256)),
                                                 ("gpu", (64, 8), (64, 64))])
def test_choose_blocks_error_names_shape(where, shape, target):
    with pytest.raises(kernels.BlockError) as info:
        kernels.choose_blocks(shape, target, where=where)
    message = str(info.value)
    assert "\n" not in message and str(tuple(shape)) in message, \
        f"the error must be one line naming the shape {shape}, got {message!r}"


def test_explicit_blocks_must_divide():
    x, y = _normal((48, 32), 10), _normal((32, 32), 11)  # M = 48 is not a multiple of bm = 32
    with pytest.raises(kernels.BlockError, match=r"\(32, 16, 32\).*\(48, 32, 32\)"):
        kernels.matmul(x, y, blocks=(32, 16, 32))
