"""Checks for exercise 1.3 against a float64 numpy loop and the causality property."""

import jax.numpy as jnp
import numpy as np


def _inputs(B=2, S=7, E=16, D=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, S, E)).astype(np.float32)
    wq, wk, wv = (rng.normal(scale=E ** -0.5, size=(E, D)).astype(np.float32) for _ in range(3))
    return x, wq, wk, wv


def _numpy_head(x, wq, wk, wv):
    """One query at a time, in float64: the definition, with no masking trick."""
    x, wq, wk, wv = (a.astype(np.float64) for a in (x, wq, wk, wv))
    q, k, v = x @ wq, x @ wk, x @ wv  # [B, S, D]
    B, S, D = q.shape
    out = np.zeros((B, S, D))
    for b in range(B):
        for s in range(S):
            scores = k[b, : s + 1] @ q[b, s] / np.sqrt(D)  # keys 0..s only
            w = np.exp(scores - scores.max())
            out[b, s] = (w / w.sum()) @ v[b, : s + 1]
    return out


def test_attention_head(answers):
    x, wq, wk, wv = _inputs()
    want = _numpy_head(x, wq, wk, wv)
    got = np.asarray(answers.attention_head(*map(jnp.asarray, (x, wq, wk, wv))))
    assert got.shape == want.shape, f"shape: expected {want.shape} [B, S, D], got {got.shape}"
    err = np.abs(got - want).max()
    first = np.abs(got[:, 0] - want[:, 0]).max()
    assert err < 1e-5, (f"max |error| {err:.2e} vs a float64 loop > 1e-5 (float32 sums of 16 terms); "
                        f"at position 0 (which sees only itself) {first:.2e}: check the 1/sqrt(D) "
                        "scale, the mask direction and the softmax axis")


def test_attention_head_causal(answers):
    x, wq, wk, wv = _inputs(seed=1)
    t = 4
    x2 = x.copy()
    x2[:, t] += 3.0  # change the token at position t only
    a = np.asarray(answers.attention_head(*map(jnp.asarray, (x, wq, wk, wv))))
    b = np.asarray(answers.attention_head(*map(jnp.asarray, (x2, wq, wk, wv))))
    before = np.abs(a[:, :t] - b[:, :t]).max()
    after = np.abs(a[:, t:] - b[:, t:]).max()
    assert before < 1e-6, (f"changing position {t} changed outputs before it by {before:.2e} "
                           "(> 1e-6, float32 noise): position s must not see t > s")
    assert after > 1e-3, (f"changing position {t} changed outputs at {t}.. by only {after:.2e}: "
                          "they must read it (> 1e-3 for a change of 3.0)")
