"""Checks for exercises 5.5-5.6: a two-pass numpy softmax, and shared.attention's reference."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import attention as attn_lib


def _two_pass(x, v):
    """float64: the max first, then the normalised weights."""
    w = np.exp(x - x.max())
    return (w / w.sum()) @ v


@pytest.mark.parametrize("sizes, offset", [([5, 3, 8], 0.0), ([1, 1, 1, 1], 0.0), ([4, 12], 3000.0)])
def test_streaming_softmax_sum(answers, sizes, offset):
    rng = np.random.default_rng(len(sizes))
    x = rng.normal(scale=3, size=sum(sizes)) + offset
    x[-1] += 10  # the max arrives last, so earlier partial sums must be rescaled
    v = rng.normal(size=(sum(sizes), 4))
    cuts = np.cumsum([0] + sizes)
    chunks = ((jnp.asarray(x[a:b], jnp.float32), jnp.asarray(v[a:b], jnp.float32))
              for a, b in zip(cuts, cuts[1:]))  # a generator: it can be read once only
    got = np.asarray(answers.streaming_softmax_sum(chunks))
    want = _two_pass(x, v)
    assert got.shape == (4,), f"shape: expected (4,) [D], got {got.shape}"
    err = np.abs(got - want).max()
    assert err < 1e-5, (f"chunks {sizes}, scores around {offset}: max |error| {err:.2e} vs the "
                        "two-pass softmax > 1e-5 (float32); NaN or inf means exp overflowed")


def _largest_intermediate(jaxpr) -> int:
    sizes = [0]
    for eqn in jaxpr.eqns:
        sizes += [math.prod(getattr(o.aval, "shape", ())) for o in eqn.outvars]
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", param)
            if hasattr(inner, "eqns"):
                sizes.append(_largest_intermediate(inner))
    return max(sizes)


@pytest.mark.parametrize("S, T, block_k", [(64, 64, 16), (16, 64, 32), (32, 96, 32)])
@pytest.mark.parametrize("causal", [True, False])
def test_blockwise_attention(answers, S, T, block_k, causal):
    kq, kk, kv = jax.random.split(jax.random.key(S + T), 3)
    q, k, v = (jax.random.normal(key, (n, 16)) for key, n in ((kq, S), (kk, T), (kv, T)))
    got = answers.blockwise_attention(q, k, v, block_k=block_k, causal=causal)
    want = attn_lib.reference(q[None, :, None], k[None, :, None], v[None, :, None],
                              causal=causal)[0, :, 0]
    assert got.shape == (S, 16), f"shape: expected ({S}, 16) [S, D], got {got.shape}"
    err = float(jnp.abs(got - want).max())
    assert err < 2e-5, (f"S={S} T={T} block_k={block_k} causal={causal}: max |error| {err:.2e} "
                        "vs the reference > 2e-5 (float32); check the rescale of l and acc")
    jaxpr = jax.make_jaxpr(lambda q, k, v: answers.blockwise_attention(
        q, k, v, block_k=block_k, causal=causal))(q, k, v).jaxpr
    largest = _largest_intermediate(jaxpr)
    assert largest < S * T, (f"an intermediate has {largest} elements >= S*T = {S * T}: "
                             "the [S, T] scores were formed; work on [S, block_k] tiles")
