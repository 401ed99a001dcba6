"""shared.aot: compiled-program figures against closed forms; the persistent cache across processes."""

import jax
import jax.numpy as jnp

from shared import aot


def test_analyse_matmul_before_running():
    M, K, N = 64, 96, 32
    specs = (jax.ShapeDtypeStruct((M, K), jnp.float32), jax.ShapeDtypeStruct((K, N), jnp.float32))
    figures = aot.analyse(jax.jit(jnp.matmul).lower(*specs).compile())  # shapes only, no data
    assert figures["flops"] == 2 * M * N * K, f"flops: expected 2MNK = {2 * M * N * K}, got {figures['flops']}"
    assert figures["argument bytes"] == (M * K + K * N) * 4, \
        f"argument bytes: expected (MK + KN) * 4 = {(M * K + K * N) * 4}, got {figures['argument bytes']}"
    assert figures["output bytes"] == M * N * 4, \
        f"output bytes: expected MN * 4 = {M * N * 4}, got {figures['output bytes']}"


def test_persistent_cache_is_hit_by_a_second_process(tmp_path):
    first = aot.timed_start(tmp_path, batch=1)
    written = aot.cache_entries(tmp_path)
    assert written > 0, "the first process with the cache on wrote no cache entries"
    second = aot.timed_start(tmp_path, batch=1)
    assert aot.cache_entries(tmp_path) == written, \
        "the second process wrote new entries: its programs missed the cache"
    assert set(first) == set(second) >= {"import", "compile", "first step", "process"}, \
        f"timed_start returned {sorted(first)}"
