"""Exercises 6.4-6.5: what positions do, and how FSDP splits the parameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from shared import attention, model
from shared.config import ModelConfig


def forward_without_positions(params: dict, tokens: jax.Array, config: ModelConfig) -> jax.Array:
    """Exercise 6.4: shared.model.forward without RoPE and without the causal mask."""
    x = params["embed"][tokens]  # [B, S, E]

    def layer(x, p):
        h = model.rms_norm(x, p["attn_norm"])
        q = jnp.einsum("BSE,EHD->BSHD", h, p["wq"])
        k = jnp.einsum("BSE,EKD->BSKD", h, p["wk"])
        v = jnp.einsum("BSE,EKD->BSKD", h, p["wv"])
        out = attention.attention(q, k, v, causal=False, segment_ids=None, impl="reference")
        x = x + jnp.einsum("BSHD,HDE->BSE", out, p["wo"])
        return x + model.mlp(model.rms_norm(x, p["mlp_norm"]), p["w_up"], p["w_down"]), None

    x, _ = jax.lax.scan(layer, x, params["blocks"])
    x = model.rms_norm(x, params["final_norm"])
    return jnp.einsum("BSE,EV->BSV", x, params["unembed"], preferred_element_type=jnp.float32)


# Where E sits in each parameter (shared/model.py's layout).
_E_AXIS = {"embed": 1, "attn_norm": 1, "wq": 1, "wk": 1, "wv": 1, "wo": 3, "mlp_norm": 1,
           "w_up": 1, "w_down": 2, "final_norm": 0, "unembed": 0}
_NDIM = {"embed": 2, "attn_norm": 2, "wq": 4, "wk": 4, "wv": 4, "wo": 4, "mlp_norm": 2,
         "w_up": 3, "w_down": 3, "final_norm": 1, "unembed": 2}


def fsdp_spec(name: str) -> tuple[str | None, ...]:
    """Exercise 6.5: "data" on the E axis, None elsewhere."""
    leaf = name.split("/")[-1]
    return tuple("data" if i == _E_AXIS[leaf] else None for i in range(_NDIM[leaf]))
