"""Wrong answer (lesson 06, exercise 6.8): slots fill token by token, each token's second
choice before the next token's first, so a late token loses its first choice to an early
token's second."""

from pathlib import Path

import jax
import jax.numpy as jnp

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("test_keep_within_capacity_order", "before any second choice")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/06_optimised_training/experts.py")
balance_loss = _m.balance_loss


def keep_within_capacity(choice: jax.Array, capacity: int) -> jax.Array:
    B, S, k, X = choice.shape
    slot = jnp.cumsum(choice.reshape(B, S * k, X), axis=1).reshape(B, S, k, X) - 1
    return choice * (slot < capacity)
