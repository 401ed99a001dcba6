"""Checks for exercise 1.4 against a float64 numpy log-sum-exp and two closed forms."""

import math

import jax.numpy as jnp
import numpy as np
import pytest


def _numpy_cross_entropy(logits, targets):
    z = logits.astype(np.float64)
    m = z.max(axis=-1, keepdims=True)
    lse = m[..., 0] + np.log(np.exp(z - m).sum(axis=-1))  # [B, S]
    picked = np.take_along_axis(z, targets[..., None], axis=-1)[..., 0]
    return float((lse - picked).mean())


@pytest.mark.parametrize("scale", [3.0, 1e4], ids=["normal", "huge"])
def test_cross_entropy(answers, scale):
    rng = np.random.default_rng(0)
    logits = (scale * rng.normal(size=(3, 5, 11))).astype(np.float32)
    targets = rng.integers(0, 11, size=(3, 5))
    want = _numpy_cross_entropy(logits, targets)
    got = answers.cross_entropy(jnp.asarray(logits), jnp.asarray(targets))
    assert np.shape(got) == (), f"shape: expected a scalar (), got {np.shape(got)}"
    got = float(got)
    assert math.isfinite(got), (f"logits of size {scale:g} gave {got}: subtract the row maximum "
                                "before exp (or use jax.nn.log_softmax)")
    tol = 1e-5 * max(1.0, abs(want))
    assert abs(got - want) < tol, (f"logits of size {scale:g}: expected {want:.6f} nats, got {got:.6f} "
                                   f"(tolerance {tol:.1e}: float32 relative precision of the result)")


def test_cross_entropy_uniform(answers):
    V = 256
    got = float(answers.cross_entropy(jnp.zeros((2, 3, V)), jnp.zeros((2, 3), jnp.int32)))
    assert abs(got - math.log(V)) < 1e-5, (f"equal logits over {V} tokens must cost ln {V} = "
                                           f"{math.log(V):.6f} nats, got {got:.6f} (tolerance 1e-5)")


def test_cross_entropy_targets(answers):
    logits = jnp.asarray([[[10.0, 0.0, 0.0]]])  # [1, 1, 3]: token 0 almost certain
    right = float(answers.cross_entropy(logits, jnp.asarray([[0]])))
    wrong = float(answers.cross_entropy(logits, jnp.asarray([[2]])))
    want_right, want_wrong = math.log(1 + 2 * math.exp(-10)), 10 + math.log(1 + 2 * math.exp(-10))
    assert abs(right - want_right) < 1e-5 and abs(wrong - want_wrong) < 1e-5, (
        f"logits [10, 0, 0]: expected {want_right:.6f} for target 0 and {want_wrong:.6f} for target 2, "
        f"got {right:.6f} and {wrong:.6f} (tolerance 1e-5): pick the target's log-probability")
