"""Exercise 1.6: the "order" experiment. Without attention, word order is invisible."""

from __future__ import annotations

import jax


def no_attention_logits(params: dict, tokens: jax.Array) -> jax.Array:
    """Exercise 1.6: the course model with every attention sub-layer removed.

    params: the pytree of shared.model.init (see its docstring); tokens: int [B, S].
    Embed the tokens (no positions), then for each layer l apply only the MLP
    sub-layer, x = x + mlp(rms_norm(x, mlp_norm[l])) with the layer's w_up and w_down,
    then the final norm and the output projection. Use the model's own pieces, so
    that the numbers match it: shared.model.rms_norm (eps 1e-6) and
    shared.model.mlp (tanh-approximate GELU). Returns float32 logits [B, S, V].
    Each position sees only its own token, so permuting the input permutes the output.
    """
    raise NotImplementedError("Exercise 1.6: the course model with its attention sub-layers removed")
