"""Checks for exercises 10.5-10.6 against the jitted function and closed-form counts."""

import jax
import jax.numpy as jnp
import numpy as np


def _mlp(x, w1, w2):
    return jnp.tanh(x @ w1) @ w2


def _mlp_args():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    return (jax.random.normal(k1, (8, 16)), jax.random.normal(k2, (16, 32)),
            jax.random.normal(k3, (32, 4)))


def test_export_roundtrip_values(answers):
    args = _mlp_args()
    blob, out = answers.export_roundtrip(_mlp, *args)
    want = np.asarray(jax.jit(_mlp)(*args))
    assert np.shape(out) == want.shape, f"shape: expected {want.shape}, got {np.shape(out)}"
    err = np.abs(np.asarray(out) - want).max()
    # The exported program is the same XLA program the jit compiles: identical on one machine.
    assert err == 0, f"max |error| {err:.2e} vs jax.jit(fn): the loaded program should compute the same values"


def test_export_roundtrip_bytes_load(answers):
    args = _mlp_args()
    blob, _ = answers.export_roundtrip(_mlp, *args)
    assert isinstance(blob, (bytes, bytearray)), f"expected serialised bytes, got {type(blob).__name__}"
    loaded = jax.export.deserialize(bytearray(blob))
    shapes = [tuple(a.shape) for a in loaded.in_avals]
    assert shapes == [a.shape for a in args], f"exported for shapes {shapes}, expected {[a.shape for a in args]}"
    err = np.abs(np.asarray(loaded.call(*args)) - np.asarray(jax.jit(_mlp)(*args))).max()
    assert err == 0, f"the bytes you returned, loaded again, give max |error| {err:.2e} vs jax.jit(fn)"


def test_compiled_cost_matmul(answers):
    M, K, N = 64, 128, 32
    specs = (jax.ShapeDtypeStruct((M, K), jnp.float32), jax.ShapeDtypeStruct((K, N), jnp.float32))
    cost = answers.compiled_cost(lambda a, b: a @ b, *specs)  # specs hold no data: it cannot run
    assert cost["flops"] == 2 * M * N * K, \
        f"flops: expected 2*M*N*K = {2 * M * N * K} (one multiply and one add per term), got {cost['flops']}"
    want = (M * K + K * N) * 4
    assert cost["argument bytes"] == want, \
        f"argument bytes: expected (M*K + K*N) * 4 = {want} for two float32 inputs, got {cost['argument bytes']}"


def test_compiled_cost_bf16_arguments(answers):
    specs = (jax.ShapeDtypeStruct((256,), jnp.bfloat16), jax.ShapeDtypeStruct((256,), jnp.float32))
    cost = answers.compiled_cost(lambda a, b: a.astype(jnp.float32) * b, *specs)
    assert cost["argument bytes"] == 256 * 2 + 256 * 4, \
        f"argument bytes: expected 256*2 (bfloat16) + 256*4 (float32) = 1536, got {cost['argument bytes']}"
