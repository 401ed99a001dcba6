"""Exercises 6.8-6.9: a mixture of experts' router (section 12): which choices keep a slot,
and the loss that keeps the experts evenly loaded.

Letters: B batch, S tokens per sequence, X experts, k experts each token picks, C slots per
expert per sequence (the capacity).
"""

from __future__ import annotations

import jax


def keep_within_capacity(choice: jax.Array, capacity: int) -> jax.Array:
    """Exercise 6.8: the routing choices that get a slot, the rest dropped.

    choice: float [B, S, k, X], one-hot: choice[b, s, j] marks the j-th expert token s of
    sequence b picked (j = 0 its first choice). Each expert has `capacity` slots per sequence.
    Slots fill with every token's first choice in sequence order (token 0 first), then every
    token's second choice in sequence order, and so on; a choice that finds its expert full is
    dropped. Returns float [B, S, k, X]: choice with the dropped ones zeroed. Runs under jit.
    """
    raise NotImplementedError("Exercise 6.8: which routing choices fit in their expert's slots")


def balance_loss(probs: jax.Array, choice: jax.Array) -> jax.Array:
    """Exercise 6.9: Switch Transformer's load-balancing loss (Fedus et al. 2021).

    probs: float [B, S, X], each token's router probabilities; choice: float [B, S, k, X], the
    one-hot choices before any is dropped. With f_i the fraction of all choices (over every
    token and every j < k) that picked expert i, and P_i the mean router probability of expert
    i over every token, the loss is X times the sum over i of f_i * P_i: 1 when both are
    uniform, up to X when one expert takes everything. Returns a float scalar.
    """
    raise NotImplementedError("Exercise 6.9: the router's load-balancing loss")
