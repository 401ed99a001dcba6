"""Checks for exercise 1.6: the real model with attention switched off, and the permutation property."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from shared import model
from shared.config import ModelConfig

CONFIG = ModelConfig(vocab_size=256, seq_len=12, d_model=32, n_layers=2, n_heads=2, d_ff=64)


@functools.cache
def _params():
    # Block weight matrices at 10x the init scale, so that the MLPs move the residual stream visibly.
    params = jax.jit(model.init, static_argnums=0)(CONFIG, jax.random.key(0))
    blocks = {name: 10 * w if name.startswith("w") else w for name, w in params["blocks"].items()}
    return {**params, "blocks": blocks}


def _tokens(seed=1):
    return jax.random.randint(jax.random.key(seed), (2, CONFIG.seq_len), 0, CONFIG.vocab_size)


def test_no_attention_logits(answers):
    params, tokens = _params(), _tokens()
    # With every attention output projection zero, shared.model.forward adds nothing from
    # attention (and so nothing from positions): it is the model this exercise asks for.
    silent = {**params, "blocks": {**params["blocks"], "wo": jnp.zeros_like(params["blocks"]["wo"])}}
    want = np.asarray(jax.jit(model.forward, static_argnums=2)(silent, tokens, CONFIG))
    got = np.asarray(answers.no_attention_logits(params, tokens))
    assert got.shape == want.shape, f"shape: expected {want.shape} [B, S, V], got {got.shape}"
    err, size = np.abs(got - want).max(), np.abs(want).max()
    assert err < 1e-4 * size, (f"max |error| {err:.2e} vs shared.model.forward with wo = 0 > "
                               f"{1e-4 * size:.1e} (1e-4 of the largest logit, float32): embed, "
                               "x + mlp(rms_norm(x)) per layer, final norm, unembed")


def test_no_attention_logits_permutation(answers):
    params, tokens = _params(), _tokens(seed=2)
    perm = np.random.default_rng(3).permutation(CONFIG.seq_len)
    a = np.asarray(answers.no_attention_logits(params, tokens))
    b = np.asarray(answers.no_attention_logits(params, tokens[:, perm]))
    err, size = np.abs(b - a[:, perm]).max(), np.abs(a).max()
    assert err < 1e-4 * size, (f"permuting the input positions by {perm.tolist()} should permute the "
                               f"logits the same way; max |difference| {err:.2e} > {1e-4 * size:.1e} "
                               "(float32): no position or attention may enter")


def test_no_attention_logits_depends_on_token(answers):
    params = _params()
    tokens = jnp.arange(CONFIG.seq_len)[None]  # [1, S]: all different tokens
    logits = np.asarray(answers.no_attention_logits(params, tokens))[0]  # [S, V]
    gap = np.abs(logits[1:] - logits[:1]).max(axis=-1).min()
    assert gap > 1e-2, (f"different tokens gave logits that differ by only {gap:.2e} (want > 1e-2, "
                        "they differ by O(1) here): each position's logits must come from its token")
