"""The mixture-of-experts MLP (shared.moe, lesson 06): the dense MLP as its one-expert case,
capacity and dropping, the load-balancing loss, training, and expert parallelism's all-to-alls."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from shared import collectives, model, moe, sharding, train
from shared import config as cfg
from shared import params as table

E, F = 32, 64


def moe_config(**kw):
    return cfg.ModelConfig(seq_len=8, d_model=E, n_layers=2, n_heads=2, d_ff=F, **kw).validate()


def dense_weights(seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(k1, (2, 8, E))
    return x, 0.2 * jax.random.normal(k2, (E, F)), 0.2 * jax.random.normal(k3, (F, E))


def test_default_config_keeps_the_dense_tree():
    assert table.rows(cfg.ModelConfig()) == table.rows()
    names = set(jax.eval_shape(lambda k: model.init(moe_config(n_experts=4), k),
                                  jax.random.key(0))["blocks"])
    assert names - set(table.BLOCK) == {"w_router"}


def test_one_expert_is_the_dense_mlp():
    mc = moe_config(n_experts=1, top_k=1, capacity_factor=1.0)  # C = S: nothing dropped
    x, w_up, w_down = dense_weights()
    p = {"w_router": jnp.ones((E, 1)), "w_up": w_up[None], "w_down": w_down[None]}
    y, aux = moe.moe(x, p, mc)
    np.testing.assert_allclose(y, model.mlp(x, w_up, w_down), atol=1e-6, rtol=0)
    assert float(aux) == 1.0  # one expert takes every token and all the probability


def test_tokens_over_capacity_are_dropped():
    mc = moe_config(n_experts=2, top_k=1, capacity_factor=0.5)  # C = ceil(0.5 * 8 / 2) = 2
    assert moe.capacity(mc, 8) == 2
    x, w_up, w_down = dense_weights()
    x = x.at[..., 0].set(1.0 + jnp.abs(x[..., 0]))  # every token's router prefers expert 0
    w_router = jnp.zeros((E, 2)).at[0].set(jnp.array([4.0, -4.0]))
    p = {"w_router": w_router, "w_up": jnp.stack([w_up, -w_up]),
         "w_down": jnp.stack([w_down, w_down])}
    y, _ = moe.moe(x, p, mc)
    gate = jax.nn.softmax(x @ w_router, axis=-1)[..., :1]  # Switch: the output scaled by p_0
    np.testing.assert_allclose(y[:, :2], gate[:, :2] * model.mlp(x[:, :2], w_up, w_down),
                               atol=1e-6, rtol=0)
    assert np.all(np.asarray(y[:, 2:]) == 0)  # slots full: these pass on the residual alone


def test_balance_loss_is_one_when_balanced():
    X, T = 4, 16
    favourite = jnp.arange(T) % X
    probs = jnp.where(jax.nn.one_hot(favourite, X) > 0, 0.7, 0.1)  # rows sum to 1
    choice = jax.nn.one_hot(favourite, X)[:, None]  # top 1
    assert abs(float(moe.balance_loss(probs, choice)) - 1.0) < 1e-6
    skewed = jnp.where(jax.nn.one_hot(jnp.zeros(T, int), X) > 0, 0.7, 0.1)
    assert float(moe.balance_loss(skewed, jax.nn.one_hot(jnp.zeros(T, int), X)[:, None])) > 2.5


def test_tiny_moe_trains():
    mc = moe_config(n_experts=4, top_k=2)
    tc = cfg.TrainConfig(batch_size=4, steps=20, lr=1e-2, warmup_steps=0)
    tokens = np.random.default_rng(0).integers(0, 16, (4, 9), dtype=np.int32)
    batch = {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}
    state, step = train.init_state(mc, tc), train.make_step(mc, tc)
    losses = []
    for _ in range(20):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.7 * losses[0], losses


# Expert parallelism: 8 experts on the 8 simulated devices' data axis (fsdp).
EP = cfg.ModelConfig(seq_len=16, d_model=64, n_layers=2, n_heads=8, d_ff=128, n_experts=8,
                     top_k=2)
EP_TC = cfg.TrainConfig(batch_size=8, steps=2, lr=3e-3, warmup_steps=0)


def predicted_all_to_all_bytes(mc, B, n, itemsize=4):
    """Bytes each device receives in one all-to-all of the dispatched tokens [X, B, C, E]:
    its X / n experts' slots for every sequence, C = ceil(capacity_factor * S * top_k / X).
    About B * S * top_k * capacity_factor * E * itemsize / n: the tokens' share, times k copies."""
    C = moe.capacity(mc, mc.seq_len)
    return mc.n_experts // n * B * C * mc.d_model * itemsize


def test_expert_parallel_step_equals_single_device_with_all_to_alls():
    assert len(jax.devices()) == 8, "tests/conftest.py simulates 8 CPU devices"
    tokens = np.random.default_rng(0).integers(0, 256, (8, 17), dtype=np.int32)
    batch = {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}
    start = train.init_state(EP, EP_TC)
    _, want = train.make_step(EP, EP_TC)(jax.tree.map(jnp.copy, start), batch)

    mesh = sharding.strategy_mesh("fsdp")
    placement = train.Placement(mesh, "fsdp")
    state = jax.device_put(jax.tree.map(jnp.copy, start),
                           placement.state(jax.eval_shape(lambda: start), EP_TC))
    placed = jax.device_put(batch, placement.batch())
    assert state["params"]["blocks"]["w_up"].sharding.spec[1] == "data"  # [L, X_data, E, F]
    compiled = train.make_step(EP, EP_TC, placement).lower(state, placed).compile()  # once
    found = [c for c in collectives.hlo_collectives(compiled.as_text()) if c.kind == "all-to-all"]
    _, got = compiled(state, placed)
    np.testing.assert_allclose(float(got["loss"]), float(want["loss"]), rtol=1e-5)

    nbytes = predicted_all_to_all_bytes(EP, B=8, n=8)
    assert nbytes == 10240
    tokens_moved = [c for c in found if c.result_bytes == nbytes]
    # dispatch and combine in the forward pass, their transposes in the backward, per layer
    assert sum(c.count for c in tokens_moved) == 4 * EP.n_layers, collectives.summarize(found)
    assert all(c.group == 8 for c in tokens_moved)
