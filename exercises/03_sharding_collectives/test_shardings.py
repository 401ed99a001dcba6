"""Checks for shardings.py on 8 simulated CPU devices (exercises/03_sharding_collectives/conftest.py).

Oracles: jax's NamedSharding.shard_shape on a real mesh; the collectives XLA inserts
when it compiles the sharded matmul here (read from the compiled HLO); the ring model
in shared.collectives.
"""

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import collectives
from shared.sharding import make_mesh

CPUS = jax.devices("cpu")


@pytest.mark.parametrize("shape, mesh_shape, spec", [
    ((8, 6), {"data": 4, "model": 2}, ("data", None)),
    ((8, 6), {"data": 4, "model": 2}, ("data", "model")),
    ((16, 4, 6), {"data": 4, "model": 2}, (None, "data", "model")),
    ((16, 6), {"data": 4, "model": 2}, (("data", "model"), None)),
    ((32, 8, 2), {"x": 8}, (None, "x")),
    ((24,), {"a": 2, "b": 2, "c": 2}, (("a", "c"),)),
    ((5, 7), {"x": 8}, ()),
])
def test_shard_shape(answers, shape, mesh_shape, spec):
    mesh = make_mesh(mesh_shape, CPUS)
    want = NamedSharding(mesh, P(*spec)).shard_shape(shape)
    got = answers.shard_shape(shape, mesh_shape, spec)
    assert tuple(got) == tuple(want), f"{shape} split {spec} on {mesh_shape}: each device holds {want}, got {got}"


CASES = [  # (x spec, w spec, out spec) for x [B, E] @ w [E, F]
    ((None, "x"), ("x", None), (None, None)),
    (("x", None), (None, None), ("x", None)),
    (("x", None), (None, None), (None, None)),
    ((None, None), (None, "x"), (None, None)),
    ((None, None), (None, "x"), (None, "x")),
    (("x", None), ("x", None), ("x", None)),
    ((None, "x"), (None, "x"), (None, "x")),
    ((None, "x"), (None, None), ("x", None)),
    ((None, None), ("x", None), (None, "x")),
    ((None, None), (None, None), ("x", None)),
    (("x", None), (None, "x"), (None, None)),
    (("x", None), ("x", None), (None, None)),
]


@pytest.mark.parametrize("x_spec, w_spec, out_spec", CASES)
def test_matmul_collective(answers, x_spec, w_spec, out_spec):
    mesh = make_mesh({"x": 8}, CPUS)
    x = jax.device_put(jnp.ones((64, 64)), NamedSharding(mesh, P(*x_spec)))
    w = jax.device_put(jnp.ones((64, 64)), NamedSharding(mesh, P(*w_spec)))
    f = jax.jit(jnp.matmul, out_shardings=NamedSharding(mesh, P(*out_spec)))
    kinds = {c.kind for c in collectives.compiled_collectives(f, x, w)}
    assert len(kinds) <= 1, f"oracle: XLA inserted several kinds {kinds}; this case cannot be checked"
    want = kinds.pop() if kinds else "none"
    got = answers.matmul_collective(x_spec, w_spec, out_spec)
    assert got == want, f"x {x_spec} @ w {w_spec} -> out {out_spec}: XLA inserts {want!r}, you said {got!r}"


@pytest.mark.parametrize("kind", ["all-gather", "reduce-scatter", "all-reduce"])
@pytest.mark.parametrize("nbytes, n", [(8e6, 8), (1024, 2), (3e9, 256), (4096, 1)])
def test_ring_bytes_sent(answers, kind, nbytes, n):
    want = collectives.bytes_sent_per_device(kind, nbytes, n)
    got = answers.ring_bytes_sent(kind, nbytes, n)
    # Relative 1e-9: the same arithmetic in a different order differs by a few float64 ulp.
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9), \
        f"{kind} of {nbytes:g} bytes on a ring of {n}: each device sends {want:g} bytes, got {got}"
