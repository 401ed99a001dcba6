"""Exercise 1.4: the training loss of a language model."""

from __future__ import annotations

import jax


def cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Exercise 1.4: mean cross-entropy, in nats, of the targets under the logits.

    logits: [B, S, V] float; targets: int [B, S] with values in [0, V). For each
    position, -log softmax(logits[b, s])[targets[b, s]]; return the mean over B and S
    as a float32 scalar []. It must stay finite for logits of any size: use
    log-sum-exp with the row maximum subtracted (or jax.nn.log_softmax), never
    log(softmax(...)).
    """
    raise NotImplementedError("Exercise 1.4: the cross-entropy loss of logits against targets")
