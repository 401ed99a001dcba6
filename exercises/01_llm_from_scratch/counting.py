"""Exercise 1.5: how many parameters a configuration has, without building it."""

from __future__ import annotations

from shared.config import ModelConfig


def param_count(config: ModelConfig) -> int:
    """Exercise 1.5: the number of parameters shared.model.init(config, key) creates.

    A closed form in the config's fields (vocab_size V, d_model E, n_layers L, n_heads H,
    config.kv_heads K, config.head_dim D, d_ff F): count the embedding table, each
    layer's two norm scales and six weight matrices (queries have H heads, keys and
    values K heads: grouped-query attention when K < H), the final norm and the
    output projection (not tied to the embedding). See the parameter list in the
    docstring of shared/model.py. Returns a Python int; build no arrays.
    """
    raise NotImplementedError("Exercise 1.5: closed-form parameter count of a ModelConfig")
