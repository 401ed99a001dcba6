"""Checks for overlap.py on simulated CPU devices: against the unsharded matmul, and the
compiled program must move x with n - 1 collective-permutes and no all-gather."""

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import collectives
from shared.sharding import make_mesh


@pytest.mark.parametrize("n, B, E, F", [(2, 8, 16, 8), (4, 16, 32, 16), (8, 16, 64, 32)])
def test_collective_matmul_block(answers, n, B, E, F):
    rng = np.random.default_rng(n)
    x, w = rng.normal(size=(B, E)).astype(np.float32), rng.normal(size=(E, F)).astype(np.float32)
    mesh = make_mesh({"x": n}, jax.devices("cpu")[:n])
    cols = NamedSharding(mesh, P(None, "x"))
    f = jax.jit(jax.shard_map(lambda a, b: answers.collective_matmul_block(a, b, "x", n), mesh=mesh,
                              in_specs=(P(None, "x"), P(None, "x")), out_specs=P(None, "x")))
    xs, ws = jax.device_put(x, cols), jax.device_put(w, cols)
    # float32 dot products of E <= 64 terms of size ~1: summation order moves them by < 1e-4.
    np.testing.assert_allclose(np.asarray(f(xs, ws)), x @ w, rtol=1e-4, atol=1e-4,
                               err_msg=f"collective matmul on {n} devices differs from x @ w")
    kinds = [c.kind for c in collectives.compiled_collectives(f, xs, ws)]
    assert kinds == ["collective-permute"] * (n - 1), \
        f"want {n - 1} collective-permutes and nothing else, the compiled program has {kinds}"
