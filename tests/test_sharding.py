"""Meshes, strategies and placement on 8 simulated CPU devices (set in tests/conftest.py)."""

from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import collectives, model, sharding
from shared.config import ModelConfig
from shared.sharding import DATA, MODEL, ShardingError

CPUS = jax.devices("cpu")
# Every sharded dimension divides 8: heads 8, E 64, F 128, V 256, batch 8.
CONFIG = ModelConfig(vocab_size=256, seq_len=16, d_model=64, n_layers=2, n_heads=8, d_ff=128)


@pytest.fixture(scope="module")
def params():
    return model.init(CONFIG, jax.random.key(0))


@pytest.fixture(scope="module")
def tokens():
    return jax.random.randint(jax.random.key(1), (8, CONFIG.seq_len), 0, CONFIG.vocab_size)


def test_eight_devices_and_single_device_code_on_device_0():
    assert len(CPUS) == 8, f"conftest should give 8 CPU devices, got {len(CPUS)}"
    x = jnp.ones((4, 4))
    y = jax.jit(lambda a: a @ a)(x)
    assert y.devices() == {jax.devices()[0]}, \
        f"unsharded code should run on device 0 only, ran on {y.devices()}"


@pytest.mark.parametrize("strategy", list(sharding.STRATEGIES))
def test_forward_matches_single_device(strategy, params, tokens):
    expected = jax.jit(model.forward, static_argnums=2)(params, tokens, CONFIG)
    mesh = sharding.strategy_mesh(strategy, CPUS)
    placed = sharding.shard_params(params, strategy, mesh)
    batch = sharding.shard_batch(tokens, strategy, mesh)
    got = jax.jit(model.forward, static_argnums=2)(placed, batch, CONFIG)
    # float32 logits of size ~1; sharded sums add partial sums in another order,
    # which moves results by a few ulp per addition, far below 1e-5.
    err = float(jnp.max(jnp.abs(got - expected)))
    assert err < 1e-5, f"{strategy}: sharded logits differ from one device by {err:.2e} (tol 1e-5)"
    assert len(got.sharding.device_set) == 8, f"{strategy}: result lives on {got.sharding.device_set}"


# What each strategy's rules say, in PartitionSpec terms, for a few parameters.
EXPECTED_SPECS = {
    "dp": {"embed": P(None, None), "wq": P(None, None, None, None), "w_down": P(None, None, None)},
    "fsdp": {"embed": P(None, DATA), "wq": P(None, DATA, None, None), "w_down": P(None, None, DATA),
             "attn_norm": P(None, None)},
    "tp": {"embed": P(MODEL, None), "wq": P(None, None, MODEL, None), "wo": P(None, MODEL, None, None),
           "w_up": P(None, None, MODEL), "unembed": P(None, MODEL), "final_norm": P(None)},
    "fsdp_tp": {"wq": P(None, DATA, MODEL, None), "w_down": P(None, MODEL, DATA),
                "unembed": P(DATA, MODEL)},
}


def _find(tree, name):
    return tree[name] if name in tree else tree["blocks"][name]


@pytest.mark.parametrize("strategy", list(EXPECTED_SPECS))
def test_parameter_shardings_follow_the_rules(strategy, params):
    mesh = sharding.strategy_mesh(strategy, CPUS)
    placed = sharding.shard_params(params, strategy, mesh)
    for name, spec in EXPECTED_SPECS[strategy].items():
        x = _find(placed, name)
        assert x.sharding.spec == spec, f"{strategy} {name}: spec {x.sharding.spec}, want {spec}"
        want_shape = tuple(n // (mesh.shape[a] if a else 1) for n, a in zip(x.shape, spec))
        got_shape = x.addressable_shards[0].data.shape
        assert got_shape == want_shape, f"{strategy} {name}: device 0 holds {got_shape}, want {want_shape}"


def test_fsdp_tp_mesh_is_two_dimensional():
    mesh = sharding.strategy_mesh("fsdp_tp", CPUS, model=4)
    assert dict(mesh.shape) == {DATA: 2, MODEL: 4}, f"got mesh {dict(mesh.shape)}"


def test_spec_that_does_not_divide_raises_one_line(params):
    four_heads = model.init(ModelConfig(vocab_size=256, seq_len=16, d_model=64, n_layers=2,
                                        n_heads=4, d_ff=128), jax.random.key(0))
    mesh = sharding.strategy_mesh("tp", CPUS)
    with pytest.raises(ShardingError) as e:
        sharding.shard_params(four_heads, "tp", mesh)
    msg = str(e.value)
    assert "\n" not in msg, f"error should be one line: {msg!r}"
    for part in ("['blocks']['w", "dimension 2", "size 4", "model", "size 8"):
        assert part in msg, f"error should name {part!r}: {msg}"


def test_batch_that_does_not_divide_raises():
    mesh = sharding.strategy_mesh("dp", CPUS)
    with pytest.raises(ShardingError, match="size 6, not divisible by mesh axis data of size 8"):
        sharding.shard_batch(jnp.zeros((6, 16), jnp.int32), "dp", mesh)


def test_bad_mesh_and_strategy_names():
    with pytest.raises(ShardingError, match="needs 6 devices, got 8"):
        sharding.make_mesh({DATA: 3, MODEL: 2}, CPUS)
    with pytest.raises(ShardingError, match="unknown strategy 'pp'"):
        sharding.get_strategy("pp")
    with pytest.raises(ShardingError, match="names mesh axis 'x'"):
        sharding.check_divisible("w", (8, 8), P("x"), sharding.make_mesh({DATA: 8}, CPUS))


def test_mesh_axes_are_auto_so_constraints_work():
    mesh = sharding.strategy_mesh("fsdp_tp", CPUS)

    @jax.jit
    def f(x):
        return sharding.constrain(x * 2, ("batch", "sequence", "heads", "head_dim"), "fsdp_tp", mesh)

    y = f(jnp.ones((8, 4, 8, 2)))
    want = NamedSharding(mesh, P(DATA, None, MODEL, None))
    assert y.sharding.is_equivalent_to(want, y.ndim), f"constrained spec is {y.sharding.spec}"


def test_activation_specs():
    assert sharding.activation_spec(("batch", "sequence", "embed"), "fsdp") == P(DATA, None, None)
    assert sharding.activation_spec(("batch", "sequence", "vocab"), "tp") == P(None, None, MODEL)
    with pytest.raises(ShardingError, match="two dimensions to one mesh axis"):
        sharding.logical_to_spec(("embed", "batch"), {"embed": DATA, "batch": DATA})


@pytest.mark.parametrize("strategy", list(sharding.STACK))
def test_matmul_stack_collectives_match_prediction(strategy):
    B, E, L = 64, 32, 4
    mesh = sharding.stack_mesh(strategy, CPUS)
    x, ws = sharding.stack_init(jax.random.key(0), B, E, L, strategy, mesh)
    f = jax.jit(lambda x, ws: sharding.stack_forward(x, ws, strategy, mesh))
    expected = np.asarray(x)
    for w in ws:
        expected = np.maximum(expected @ np.asarray(w), 0)
    # float32 matmuls of width 32 with values ~1: summation order changes ~1e-6.
    np.testing.assert_allclose(f(x, ws), expected, rtol=1e-4, atol=1e-5,
                               err_msg=f"{strategy}: sharded stack differs from numpy")
    found = collectives.compiled_collectives(f, x, ws)
    predicted = sharding.stack_prediction(strategy, B, E, L, mesh)
    count = lambda cs: Counter({(c.kind, c.nbytes, c.group): 0 for c in cs}) + \
        Counter([(c.kind, c.nbytes, c.group) for c in cs for _ in range(c.count)])
    assert count(found) == count(predicted), \
        f"{strategy}: compiler inserted {collectives.summarize(found)}, model says {collectives.summarize(predicted)}"
