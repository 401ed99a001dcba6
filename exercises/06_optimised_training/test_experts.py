"""Checks for exercises 6.8-6.9 against the course's mixture of experts (shared.moe) and
properties of routing: order decides who is dropped, first choices before second ones."""

import jax
import jax.numpy as jnp
import numpy as np

from shared import moe
from shared.config import ModelConfig

B, S, X, E = 2, 16, 4, 8


def _route(k: int, seed: int = 0):
    """The core's routing of random tokens: (probs, choice, kept by the core) for capacity C."""
    config = ModelConfig(d_model=E, n_heads=2, d_ff=16, n_experts=X, top_k=k, capacity_factor=1.0)
    x = jax.random.normal(jax.random.key(seed), (B, S, E))
    w = jax.random.normal(jax.random.key(seed + 1), (E, X)) * 3  # uneven: some experts overflow
    probs = jax.nn.softmax(x @ w, axis=-1)
    choice = jax.nn.one_hot(jax.lax.top_k(probs, k)[1], X)  # [B, S, k, X]
    dispatch, _, aux = moe.route(x, w, config)  # dispatch [B, S, X, C]: the kept choices' slots
    return config, probs, choice, dispatch.sum(-1), aux


def test_keep_within_capacity_matches_the_core(answers):
    for k in (1, 2):
        config, _, choice, kept_by_core, _ = _route(k, seed=k)
        C = moe.capacity(config, S)
        got = answers.keep_within_capacity(choice, C)
        assert got is not None and got.shape == choice.shape, \
            f"keep_within_capacity: returned shape {getattr(got, 'shape', got)}, want {choice.shape}"
        np.testing.assert_array_equal(
            np.asarray(got).sum(2), np.asarray(kept_by_core),
            err_msg=f"keep_within_capacity (k={k}, capacity {C}): the kept choices differ from "
                    f"the course's router's")


def test_keep_within_capacity_order(answers):
    # Every token of one sequence picks expert 0 first and expert 1 second; capacity 3.
    choice = jnp.zeros((1, 5, 2, 3)).at[:, :, 0, 0].set(1).at[:, :, 1, 1].set(1)
    got = np.asarray(answers.keep_within_capacity(choice, 3))
    assert got[0, :3, 0, 0].tolist() == [1, 1, 1] and got[0, 3:, 0, 0].tolist() == [0, 0], \
        "keep_within_capacity: with 3 slots, the first 3 tokens in sequence order keep their " \
        f"first choice and the rest are dropped; kept {got[0, :, 0, 0].tolist()}"
    # Expert 1 gets only second choices: the first 3 tokens keep them too.
    assert got[0, :, 1, 1].tolist() == [1, 1, 1, 0, 0], \
        f"keep_within_capacity: second choices fill their expert in sequence order; kept {got[0, :, 1, 1].tolist()}"
    # First choices are served before second ones: token 4's first choice beats token 0's second.
    mixed = jnp.zeros((1, 2, 2, 2)).at[0, 0, 0, 0].set(1).at[0, 0, 1, 1].set(1)
    mixed = mixed.at[0, 1, 0, 1].set(1).at[0, 1, 1, 0].set(1)
    got = np.asarray(answers.keep_within_capacity(mixed, 1))
    assert got[0, 1, 0, 1] == 1 and got[0, 0, 1, 1] == 0, \
        "keep_within_capacity: every token's first choice takes a slot before any second choice"
    assert np.asarray(answers.keep_within_capacity(choice, 10)).sum() == choice.sum(), \
        "keep_within_capacity: with room for every choice, none may be dropped"


def test_keep_within_capacity_jit(answers):
    _, _, choice, _, _ = _route(2)
    jax.jit(answers.keep_within_capacity, static_argnums=1)(choice, 4)


def test_balance_loss_matches_the_core(answers):
    for k in (1, 2):
        _, probs, choice, _, aux = _route(k, seed=5 + k)
        got = answers.balance_loss(probs, choice)
        np.testing.assert_allclose(float(got), float(aux), rtol=1e-6,
                                   err_msg=f"balance_loss (k={k}): differs from the course's router's")


def test_balance_loss_bounds(answers):
    uniform = jnp.full((1, 8, X), 1 / X)
    even = jax.nn.one_hot(jnp.arange(8) % X, X)[None, :, None]  # [1, 8, 1, X]
    assert abs(float(answers.balance_loss(uniform, even)) - 1) < 1e-6, \
        "balance_loss: an even split with uniform probabilities must give 1"
    one = jax.nn.one_hot(jnp.zeros(8, int), X)
    got = float(answers.balance_loss(one[None], one[None, :, None]))
    assert abs(got - X) < 1e-6, f"balance_loss: one expert taking every token must give X = {X}, got {got}"
