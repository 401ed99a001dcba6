"""Checks for exercises 10.1-10.4 against numpy / jax.nn oracles, in interpret mode on the CPU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# float32 inputs of unit scale, sums of up to 48 products: blocking only reorders the
# additions, so results agree to a few float32 ulps of values of size ~10.
ATOL = 1e-4


def _inputs(M, K, N, seed=0):
    kx, ky = jax.random.split(jax.random.key(seed))
    return jax.random.normal(kx, (M, K), jnp.float32), jax.random.normal(ky, (K, N), jnp.float32)


def _uses_pallas(fn, *args) -> bool:
    return "pallas_call" in str(jax.make_jaxpr(fn)(*args))


@pytest.mark.parametrize("blocks", [(16, 16, 16), (32, 16, 8), (8, 32, 48)])
def test_matmul_kgrid(answers, blocks):
    x, y = _inputs(32, 48, 32)
    bm, bn, bk = blocks
    got = np.asarray(answers.matmul_kgrid(x, y, bm, bn, bk))
    want = np.asarray(x, np.float64) @ np.asarray(y, np.float64)
    assert got.shape == want.shape, f"shape: expected {want.shape}, got {got.shape}"
    assert got.dtype == np.float32, f"dtype: expected float32 accumulation, got {got.dtype}"
    err = np.abs(got - want).max()
    assert err < ATOL, (f"blocks {blocks}: max |error| {err:.2e} vs numpy > {ATOL} (float32 rounding "
                        "only); check the k == 0 zeroing and the index maps")
    assert _uses_pallas(lambda a, b: answers.matmul_kgrid(a, b, bm, bn, bk), x, y), \
        "matmul_kgrid must be a pl.pallas_call (no pallas_call in its jaxpr)"


@pytest.mark.parametrize("activation", [jax.nn.relu, jnp.tanh], ids=["relu", "tanh"])
def test_matmul_activation(answers, activation):
    x, y = _inputs(32, 48, 16, seed=1)
    got = np.asarray(answers.matmul_activation(x, y, 16, 16, 16, activation))
    want = np.asarray(activation(jnp.asarray(np.asarray(x, np.float64) @ np.asarray(y, np.float64),
                                             jnp.float32)))
    err = np.abs(got - want).max()
    assert got.shape == want.shape, f"shape: expected {want.shape}, got {got.shape}"
    assert err < ATOL, (f"max |error| {err:.2e} vs activation(x @ y) > {ATOL}: the activation must be "
                        "applied once, to the finished sum (last k step), not to each partial sum")
    assert _uses_pallas(lambda a, b: answers.matmul_activation(a, b, 16, 16, 16, activation), x, y), \
        "matmul_activation must be a pl.pallas_call with the activation inside the kernel"


@pytest.mark.parametrize("scale", [1.0, 100.0], ids=["unit", "large"])
def test_row_softmax(answers, scale):
    x = scale * jax.random.normal(jax.random.key(2), (24, 40), jnp.float32)
    got = np.asarray(answers.row_softmax(x, 8))
    want = np.asarray(jax.nn.softmax(x, axis=-1))
    assert got.shape == want.shape, f"shape: expected {want.shape}, got {got.shape}"
    assert np.isfinite(got).all(), \
        f"non-finite output at input scale {scale}: subtract each row's maximum before exp"
    err = np.abs(got - want).max()
    assert err < 1e-6, f"max |error| {err:.2e} vs jax.nn.softmax > 1e-6 (float32 probabilities <= 1)"
    assert _uses_pallas(lambda a: answers.row_softmax(a, 8), x), \
        "row_softmax must be a pl.pallas_call (no pallas_call in its jaxpr)"


def _brute_force(n, target, multiple):
    fits = [b for b in range(1, target + 1) if n % b == 0 and b % multiple == 0]
    return max(fits) if fits else None


@pytest.mark.parametrize("n,target,multiple", [(96, 64, 1), (96, 64, 16), (100, 64, 1), (4096, 512, 128),
                                               (384, 256, 128), (30, 100, 1), (7, 4, 1), (48, 40, 16)])
def test_choose_block(answers, n, target, multiple):
    want = _brute_force(n, target, multiple)
    got = answers.choose_block(n, target, multiple)
    assert got == want, (f"choose_block({n}, {target}, {multiple}): expected {want} (largest divisor "
                         f"<= target that is a multiple), got {got}")


@pytest.mark.parametrize("n,target,multiple", [(100, 64, 16), (96, 100, 128), (7, 6, 2)])
def test_choose_block_error(answers, n, target, multiple):
    assert _brute_force(n, target, multiple) is None  # the case really has no answer
    with pytest.raises(ValueError) as info:
        answers.choose_block(n, target, multiple)
    message = str(info.value)
    assert "\n" not in message.strip(), f"the error must be one line, got {message!r}"
    for value in (n, target, multiple):
        assert str(value) in message, f"the error must name n, target and multiple; {value} missing in {message!r}"
