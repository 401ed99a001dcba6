"""Checks for exercises 5.1-5.3 against shared.attention's reference, its mask, and a probe."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import attention as attn_lib


def _qkv(S, T, D, seed=0):
    kq, kk, kv = jax.random.split(jax.random.key(seed), 3)
    return (jax.random.normal(kq, (S, D)), jax.random.normal(kk, (T, D)),
            jax.random.normal(kv, (T, D)))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("i", [0, 3, 7])
def test_attend_one_query(answers, causal, i):
    S, T, D = 8, 12, 16
    q, k, v = _qkv(S, T, D, seed=i)
    # The oracle: shared.attention.reference on all queries, one head, batch 1.
    want = attn_lib.reference(q[None, :, None], k[None, :, None], v[None, :, None], causal=causal)
    want = want[0, i, 0]
    got = answers.attend_one_query(q, k, v, i, causal=causal)
    assert got.shape == (D,), f"shape: expected ({D},) [D], got {got.shape}"
    err = float(jnp.abs(got - want).max())
    assert err < 1e-5, (f"query {i} (position {T - S + i}), causal={causal}: max |error| {err:.2e} "
                        "vs the reference > 1e-5 (float32 sums of 12 terms); check the 1/sqrt(D) "
                        "scale and which keys a causal query may see")


def test_packed_causal_mask(answers):
    seg = jnp.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    want = np.asarray(attn_lib.mask(9, 9, causal=True, segment_ids=seg[None])[0])
    got = np.asarray(answers.packed_causal_mask(seg))
    assert got.shape == want.shape and got.dtype == bool, \
        f"expected bool {want.shape}, got {got.dtype} {got.shape}"
    wrong = np.argwhere(got != want)
    assert wrong.size == 0, (f"{len(wrong)} entries differ from shared.attention.mask, first "
                             f"[s, t] = {wrong[0].tolist()}: expected {want[tuple(wrong[0])]}")


@pytest.mark.parametrize("H, K", [(8, 8), (8, 2), (8, 1), (6, 3)])
def test_kv_head_for(answers, H, K):
    # Probe the reference: key/value head j holds values all equal to j and every score
    # is equal, so query head h outputs exactly the index of the head it reads.
    B, S, D = 1, 1, 4
    v = jnp.broadcast_to(jnp.arange(K, dtype=jnp.float32)[None, None, :, None], (B, S, K, D))
    out = attn_lib.reference(jnp.zeros((B, S, H, D)), jnp.zeros((B, S, K, D)), v, causal=False)
    want = [int(out[0, 0, h, 0]) for h in range(H)]
    got = [answers.kv_head_for(h, H, K) for h in range(H)]
    assert got == want, f"H={H}, K={K}: key/value head per query head expected {want}, got {got}"
