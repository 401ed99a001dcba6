"""Checks for exercise 5.4 against XLA's own memory analysis of a program that stores the scores."""

import jax
import jax.numpy as jnp
import pytest


@pytest.mark.parametrize("B, H, S, dtype", [(1, 1, 128, "float32"), (2, 12, 1024, "bfloat16"),
                                            (8, 16, 4096, "float32")])
def test_scores_bytes(answers, B, H, S, dtype):
    # Oracle: the compiled program's output size (nothing runs, so S = 4096 costs nothing).
    q = jax.ShapeDtypeStruct((B, S, H, 64), dtype)
    scores = lambda q, k: jnp.einsum("BSHD,BTHD->BHST", q, k)
    want = jax.jit(scores).lower(q, q).compile().memory_analysis().output_size_in_bytes
    got = answers.scores_bytes(B, H, S, dtype)
    assert got == want, (f"B={B} H={H} S={S} {dtype}: expected {want:,} bytes "
                         f"({want / 2**30:.2f} GiB), got {got!r}")
