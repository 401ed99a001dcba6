"""Checks for exercises 6.4-6.5: permutation equivariance on the model, the model's own
attention as the oracle, and a sharded step.

The oracle for 6.4: in a one-layer model the last query's causal mask allows every key, and
RoPE at position 0 is the identity, so shared.model.forward with every position 0 gives, at its
last position, the logits of that token with no positional information at all. Moving each token
to the end in turn gives the whole row. The weights are scaled up so that attention is far from
uniform: a softmax over the wrong axis or a missing 1/sqrt(D) moves the logits by ~0.1, float32
rounding by ~1e-7.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong answers (tests/wrong/model_parts_*.py) and proves each is rejected by
the check about its mistake; the test_* functions at the bottom are thin wrappers over them.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import config as cfg
from shared import model, sharding, train

MC = cfg.ModelConfig(seq_len=16, d_model=64, n_layers=2, n_heads=4, d_ff=128)
ONE_LAYER = dataclasses.replace(MC, n_layers=1)
# float32 logits of size ~1 through one layer: the same sums in another order differ by ~1e-7.
ORACLE_TOL = 1e-5


def check_forward_without_positions(answers):
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


def check_forward_without_positions_one_token(answers):
    # One token: RoPE at position 0 is the identity and the mask is empty, so the model agrees.
    params = model.init(MC, jax.random.key(2))
    tokens = np.array([[5], [200]])
    np.testing.assert_allclose(answers.forward_without_positions(params, tokens, MC),
                               model.forward(params, tokens, MC), rtol=1e-5, atol=1e-5,
                               err_msg="for one token it must equal shared.model.forward")


def _attention_params(key) -> dict:
    """A one-layer model's weights with queries and keys 5x and values and outputs 3x the init's:
    scores q.k/sqrt(D) of a few units, attention neither uniform nor one-hot."""
    params = model.init(ONE_LAYER, key)
    blocks = dict(params["blocks"], wq=5 * params["blocks"]["wq"], wk=5 * params["blocks"]["wk"],
                  wv=3 * params["blocks"]["wv"], wo=3 * params["blocks"]["wo"])
    return dict(params, blocks=blocks)


def check_forward_without_positions_attention(answers):
    params = _attention_params(jax.random.key(3))
    tokens = jax.random.randint(jax.random.key(4), (2, 12), 0, 256)
    (B, S), V = tokens.shape, ONE_LAYER.vocab_size
    last = np.stack([np.r_[np.delete(np.arange(S), i), i] for i in range(S)])  # row i: token i last
    moved = tokens[:, last].reshape(B * S, S)  # all S orders at once, [B * S, S]
    want = np.asarray(model.forward(params, moved, ONE_LAYER, positions=jnp.zeros_like(moved))[:, -1])
    want = want.reshape(B, S, V)
    got = np.asarray(answers.forward_without_positions(params, tokens, ONE_LAYER))
    assert got.shape == want.shape, f"forward_without_positions: expected logits {want.shape}, got {got.shape}"
    err = float(np.abs(got - want).max())
    assert err < ORACLE_TOL, (
        f"forward_without_positions (one layer): max |error| {err:.2e} > {ORACLE_TOL} against the model's "
        "own attention with no positions (shared.model.forward, the token last, every position 0): "
        "only RoPE and the mask may change, not the attention itself")


def check_fsdp_spec(answers):
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


# ---- the tests: thin wrappers over the checks ----

def test_forward_without_positions(answers):
    check_forward_without_positions(answers)


def test_forward_without_positions_one_token(answers):
    check_forward_without_positions_one_token(answers)


def test_forward_without_positions_attention(answers):
    check_forward_without_positions_attention(answers)


def test_fsdp_spec(answers):
    check_fsdp_spec(answers)
