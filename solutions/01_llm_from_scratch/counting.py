"""Exercise 1.5, answered."""

from __future__ import annotations

from shared.config import ModelConfig


def param_count(config: ModelConfig) -> int:
    """Exercise 1.5: parameters of shared.model.init(config, key), in closed form."""
    V, E, L, F = config.vocab_size, config.d_model, config.n_layers, config.d_ff
    H, K, D = config.n_heads, config.kv_heads, config.head_dim
    attention = E * H * D + 2 * E * K * D + H * D * E  # wq, wk and wv, wo
    mlp = 2 * E * F  # w_up, w_down
    norms = 2 * E  # attn_norm, mlp_norm
    return V * E + L * (attention + mlp + norms) + E + E * V  # embed, blocks, final_norm, unembed
