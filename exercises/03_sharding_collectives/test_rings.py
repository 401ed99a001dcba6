"""Checks for rings.py on 8 simulated CPU devices: against jax.lax's own collectives, and
the compiled program must move data with collective-permutes only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import collectives
from shared.sharding import make_mesh


def run(body, x, n):
    """body(block) on each of n devices, the blocks being x split along dimension 0."""
    mesh = make_mesh({"x": n}, jax.devices("cpu")[:n])
    f = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=P("x"), out_specs=P("x")))
    placed = jax.device_put(x, NamedSharding(mesh, P("x")))
    return np.asarray(f(placed)), collectives.compiled_collectives(f, placed)


def check(answer, reference, x, n, name):
    got, found = run(answer, x, n)
    want, _ = run(reference, x, n)
    # Small integers in float32, summed over at most 8 devices: exact.
    np.testing.assert_array_equal(got, want, err_msg=f"{name} on {n} devices differs from jax.lax's")
    kinds = {c.kind for c in found}
    assert kinds <= {"collective-permute"}, f"{name} should move data with ppermute only, found {kinds}"


@pytest.mark.parametrize("n", [2, 4, 8])
def test_ring_all_gather(answers, n):
    x = jnp.arange(n * 3 * 2, dtype=jnp.float32).reshape(n * 3, 2)  # 3 rows per device
    check(lambda b: answers.ring_all_gather(b, "x", n),
          lambda b: jax.lax.all_gather(b, "x", tiled=True), x, n, "ring all-gather")


@pytest.mark.parametrize("n", [2, 4, 8])
def test_ring_reduce_scatter(answers, n):
    x = jnp.arange(n * n * 2 * 3, dtype=jnp.float32).reshape(n * n * 2, 3) % 17  # each device holds n blocks of 2 rows
    check(lambda b: answers.ring_reduce_scatter(b, "x", n),
          lambda b: jax.lax.psum_scatter(b, "x", tiled=True), x, n, "ring reduce-scatter")
