"""Checks for exercises 1.1-1.2 against numpy and shared.model.rope."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import model


@pytest.mark.parametrize("B,S,V,E,P", [(3, 5, 11, 4, 8), (1, 8, 256, 16, 8)])
def test_embed(answers, B, S, V, E, P):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, V, size=(B, S))
    token_table = rng.normal(size=(V, E)).astype(np.float32)
    position_table = rng.normal(size=(P, E)).astype(np.float32)
    want = np.eye(V)[tokens] @ token_table + position_table[:S]  # one-hot matmul: [B, S, E]
    got = np.asarray(answers.embed(jnp.asarray(tokens), jnp.asarray(token_table),
                                   jnp.asarray(position_table)))
    assert got.shape == want.shape, f"shape: expected {want.shape} [B, S, E], got {got.shape}"
    err = np.abs(got - want).max()
    assert err < 1e-6, (f"max |error| {err:.2e} vs one-hot @ table + positions[:S] > 1e-6 "
                        "(one float32 addition of unit-size values)")


@pytest.mark.parametrize("base", [10000.0, 100.0])
def test_rotate(answers, base):
    kx, kp = jax.random.split(jax.random.key(1))
    x = jax.random.normal(kx, (2, 6, 3, 8), jnp.float32)
    positions = jax.random.randint(kp, (2, 6), 0, 64)  # any positions, not only 0..S-1
    want = np.asarray(model.rope(x, positions, base))
    got = np.asarray(answers.rotate(x, positions, base))
    assert got.shape == want.shape, f"shape: expected {want.shape}, got {got.shape}"
    err = np.abs(got - want).max()
    assert err < 1e-4, (f"base {base}: max |error| {err:.2e} vs shared.model.rope > 1e-4 (float32 "
                        "angles up to 64 rad differ by ~1e-5 with the order of operations); "
                        "check the pairing (x[i], x[i + D/2]) and the sign of sin")


def test_rotate_relative(answers):
    kq, kk = jax.random.split(jax.random.key(2))
    D = 16
    q = jax.random.normal(kq, (1, 1, 1, D), jnp.float32)
    k = jax.random.normal(kk, (1, 1, 1, D), jnp.float32)
    at = lambda v, p: answers.rotate(v, jnp.full((1, 1), p), 10000.0)
    norm_in, norm_out = float(jnp.linalg.norm(q)), float(jnp.linalg.norm(at(q, 7)))
    assert abs(norm_out - norm_in) < 1e-4 * norm_in, (
        f"rotation must keep the length: |q| {norm_in:.6f}, |rotate(q)| {norm_out:.6f} "
        "(tolerance 1e-4 relative, float32)")
    for distance in (0, 3, 10):
        dots = [float(jnp.sum(at(q, p + distance) * at(k, p))) for p in (0, 5, 40)]
        spread = max(dots) - min(dots)
        assert spread < 1e-4 * D, (
            f"q.k at distance {distance} should not depend on the absolute position: got "
            f"{[round(d, 5) for d in dots]} at positions 0, 5, 40 (tolerance {1e-4 * D:.0e}, float32)")
