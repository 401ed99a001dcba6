"""Checks for exercises 6.4-6.5: permutation equivariance on the model, and a sharded step."""

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import config as cfg
from shared import model, sharding, train

MC = cfg.ModelConfig(seq_len=16, d_model=64, n_layers=2, n_heads=4, d_ff=128)


def test_forward_without_positions(answers):
    params = model.init(MC, jax.random.key(0))
    tokens = jax.random.randint(jax.random.key(1), (2, 12), 0, 256)
    perm = np.random.default_rng(0).permutation(12)
    logits = answers.forward_without_positions(params, tokens, MC)
    assert logits.shape == (2, 12, 256), f"expected logits [2, 12, 256], got {logits.shape}"
    permuted = answers.forward_without_positions(params, tokens[:, perm], MC)
    # Property: with no positions, permuting the tokens permutes the outputs (float32 sums
    # in another order: 1e-5).
    np.testing.assert_allclose(permuted, logits[:, perm], rtol=1e-5, atol=1e-5,
                               err_msg="without positions the output must be permutation-equivariant")
    with_positions = model.forward(params, tokens[:, perm], MC)
    assert not np.allclose(with_positions, model.forward(params, tokens, MC)[:, perm], atol=1e-3), \
        "sanity: the real model (RoPE, causal) is not equivariant"


def test_forward_without_positions_one_token(answers):
    # One token: RoPE at position 0 is the identity and the mask is empty, so the model agrees.
    params = model.init(MC, jax.random.key(2))
    tokens = np.array([[5], [200]])
    np.testing.assert_allclose(answers.forward_without_positions(params, tokens, MC),
                               model.forward(params, tokens, MC), rtol=1e-5, atol=1e-5,
                               err_msg="for one token it must equal shared.model.forward")


def test_fsdp_spec(answers):
    mc = cfg.ModelConfig(seq_len=16, d_model=64, n_layers=2, n_heads=4, d_ff=96, vocab_size=256)
    tc = cfg.TrainConfig(batch_size=8, lr=1e-2, warmup_steps=0)
    mesh = sharding.make_mesh({"data": 8})
    state = train.init_state(mc, tc)
    names = train.param_names(state["params"])
    specs = [answers.fsdp_spec(n) for n in names]
    for name, spec, x in zip(names, specs, jax.tree.leaves(state["params"])):
        assert len(spec) == x.ndim, f"{name} {x.shape}: spec {spec} needs one entry per axis"
        e_axes = [i for i, s in enumerate(x.shape) if s == mc.d_model]  # E = 64 is unique here
        assert [i for i, s in enumerate(spec) if s == "data"] == e_axes, \
            f"{name} {x.shape}: 'data' must sit on the E axis {e_axes}, got {spec}"
    # Oracle: the unsharded gradient. The same gradient with the parameters split by these
    # specs (and the batch split over "data") must agree: FSDP changes where, not what.
    tokens = np.random.default_rng(0).integers(0, 256, (8, 17), dtype=np.int32)
    grad = jax.grad(lambda p, x, y: model.loss_fn(p, x, y, mc))
    want = jax.jit(grad)(state["params"], tokens[:, :-1], tokens[:, 1:])
    params_sh = jax.tree.unflatten(jax.tree.structure(state["params"]),
                                   [NamedSharding(mesh, P(*s)) for s in specs])
    rows = NamedSharding(mesh, P("data"))
    got = jax.jit(grad, in_shardings=(params_sh, rows, rows), out_shardings=params_sh)(
        jax.device_put(state["params"], params_sh), tokens[:, :-1], tokens[:, 1:])
    for name, a, b in zip(names, jax.tree.leaves(want), jax.tree.leaves(got)):
        assert b.sharding.shard_shape(b.shape) == tuple(
            n // 8 if s == "data" else n for n, s in zip(b.shape, answers.fsdp_spec(name))), name
        # Split sums add in another order: float32 rounding, relative to the largest entry.
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6 * float(np.abs(a).max()),
                                   err_msg=f"{name}: gradient under FSDP differs from one device")
