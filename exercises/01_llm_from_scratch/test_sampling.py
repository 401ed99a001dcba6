"""Checks for exercise 1.7: sample frequencies against softmax(logits / T), and the T -> 0 limit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

LOGITS = np.array([2.0, 1.0, 0.5, 0.0, -0.5, -1.0, -2.0, -3.0])


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sample_with_temperature(answers, temperature):
    n = 10_000  # draws per distribution
    # Even rows hold LOGITS, odd rows LOGITS reversed: rows must be sampled independently.
    logits = jnp.asarray(np.stack([LOGITS, LOGITS[::-1]] * n), jnp.float32)  # [2n, V]
    got = np.asarray(answers.sample_with_temperature(logits, jax.random.key(0), temperature))
    assert got.shape == (2 * n,), f"shape: expected ({2 * n},) one token per row, got {got.shape}"
    assert np.issubdtype(got.dtype, np.integer), f"dtype: expected int32 token ids, got {got.dtype}"
    for rows, z in ((got[0::2], LOGITS), (got[1::2], LOGITS[::-1])):
        p = _softmax(z / temperature)
        counts = np.bincount(rows, minlength=len(p))[: len(p)]
        # 5 binomial standard deviations, plus 3 counts of slack for rare tokens: a correct
        # sampler fails this with probability below 1e-5.
        tol = 5 * np.sqrt(n * p * (1 - p)) + 3
        worst = int(np.argmax(np.abs(counts - n * p) - tol))
        assert np.all(np.abs(counts - n * p) <= tol), (
            f"T={temperature}: token {worst} drawn {counts[worst]} times in {n}, expected "
            f"{n * p[worst]:.0f} +- {tol[worst]:.0f} (5 sigma + 3) from softmax(logits / T)")


def test_sample_with_temperature_greedy(answers):
    logits = jax.random.normal(jax.random.key(1), (64, 50))
    want = np.asarray(jnp.argmax(logits, axis=-1))
    for seed in (0, 1):
        got = np.asarray(answers.sample_with_temperature(logits, jax.random.key(seed), 0.0))
        wrong = int((got != want).sum())
        assert got.shape == want.shape and wrong == 0, (
            f"temperature 0 must be argmax for any key: {wrong} of 64 rows differ (shape {got.shape})")


def test_sample_with_temperature_cold(answers):
    # Logit gaps of at least 0.05 at T = 1e-3: any other token has probability < 50 * e^-50.
    rows = [np.random.default_rng(i).permutation(np.linspace(0.0, 2.45, 50)) for i in range(64)]
    logits = jnp.asarray(np.stack(rows), jnp.float32)  # [64, 50]
    want = np.asarray(jnp.argmax(logits, axis=-1))
    got = np.asarray(answers.sample_with_temperature(logits, jax.random.key(2), 1e-3))
    wrong = int((got != want).sum())
    assert wrong == 0, (f"T = 1e-3 must behave as argmax (other tokens have probability < 1e-20): "
                        f"{wrong} of 64 rows differ")
