"""Exercise 1.7: drawing the next token."""

from __future__ import annotations

import jax


def sample_with_temperature(logits: jax.Array, key: jax.Array, temperature: float) -> jax.Array:
    """Exercise 1.7: one token per row, drawn from softmax(logits / temperature).

    logits: [B, V] float; key: a jax.random key; temperature >= 0. Row b's token is
    drawn with probability softmax(logits[b] / temperature) (jax.random.categorical
    does the drawing). temperature == 0 means greedy: the argmax of each row, with no
    randomness (dividing by 0 is not an option). Returns int32 [B].
    """
    raise NotImplementedError("Exercise 1.7: sample the next token at a temperature")
