"""The training step: sharded strategies, mixed precision, remat, gradient accumulation, NaN check."""

import dataclasses
import functools
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import config as cfg
from shared import backward, model, sharding, train
from shared.train import loop

# 8 heads, width 64 and vocabulary 256 divide the 8 simulated devices for every strategy.
MICRO = cfg.ModelConfig(seq_len=16, d_model=64, n_layers=2, n_heads=8, d_ff=128)
TC = cfg.TrainConfig(batch_size=8, steps=30, lr=3e-3, warmup_steps=0)  # step 0 must move the weights
# Adam's first update is about lr * g / |g| per weight: where |g| is near Adam's eps (1e-8),
# float32 rounding of g (sums in another order) moves that weight by up to ~5e-5. A tenth of
# a step still catches a wrong sign; the gradients' squared norms (compared at 1e-4) catch
# a wrong scale, which Adam's normalisation would hide.
ADAM_ATOL = 0.1 * 3e-3


def random_batch(B=8, S=16, seed=0):
    tokens = np.random.default_rng(seed).integers(0, 256, (B, S + 1), dtype=np.int32)
    return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}


@functools.cache
def initial_state(mc, tc):
    """Built (and compiled) once per config; callers get a copy, since steps donate it."""
    return train.init_state(mc, tc)


def fresh_state(mc, tc, placement=train.Placement()):
    """A copy of the initial state, placed as `placement` says (same values on any mesh)."""
    state = jax.tree.map(jnp.copy, initial_state(mc, tc))
    if placement.mesh is None:
        return state
    return jax.device_put(state, placement.state(jax.eval_shape(lambda: state), tc))


def one_step(mc, tc, batch, placement=train.Placement()):
    state = fresh_state(mc, tc, placement)
    if placement.mesh is not None:
        batch = jax.device_put(batch, placement.batch())
    state, metrics = train.make_step(mc, tc, placement)(state, batch)
    return jax.device_get(state["params"]), float(metrics["loss"]), np.asarray(metrics["grad_sq"])


@functools.cache
def reference_step():
    """The single-device step on random_batch(), the oracle of the sharded and accumulated steps."""
    return one_step(MICRO, TC, random_batch())


@pytest.mark.parametrize("strategy", list(sharding.STRATEGIES))
def test_sharded_step_equals_single_device(strategy):
    assert len(jax.devices()) == 8, "tests/conftest.py simulates 8 CPU devices"
    want, want_loss, want_sq = reference_step()
    mesh = sharding.strategy_mesh(strategy, jax.devices())
    got, got_loss, got_sq = one_step(MICRO, TC, random_batch(), train.Placement(mesh, strategy))
    # Sharded sums add partial results in another order: float32 rounding, ~1e-7 relative.
    assert abs(got_loss - want_loss) < 1e-5, f"{strategy}: loss {got_loss} vs one device {want_loss}"
    np.testing.assert_allclose(got_sq, want_sq, rtol=1e-4, err_msg=f"{strategy}: gradient norms differ")
    for name, a, b in zip(train.param_names(want), jax.tree.leaves(want), jax.tree.leaves(got)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=ADAM_ATOL,
                                   err_msg=f"{strategy}: parameter {name} after one step differs")


def test_sharded_state_is_placed_by_the_rules():
    mesh = sharding.strategy_mesh("fsdp", jax.devices())
    state = train.init_state(MICRO, TC, train.Placement(mesh, "fsdp"))
    w_up = state["params"]["blocks"]["w_up"]  # [L, E, F], E split 8 ways
    assert w_up.sharding.shard_shape(w_up.shape) == (2, 8, 128)
    mu = state["opt_state"][1][0].mu["blocks"]["w_up"]  # Adam's first moment, like its parameter
    assert mu.sharding.shard_shape(mu.shape) == (2, 8, 128), "optimizer state must be split like params"
    np.testing.assert_array_equal(w_up, initial_state(MICRO, TC)["params"]["blocks"]["w_up"],
                                  "initialising on a mesh must give the single-device values")


def test_gradient_accumulation_equals_one_big_batch():
    want, want_loss, want_sq = reference_step()
    got, got_loss, got_sq = one_step(MICRO, dataclasses.replace(TC, grad_accum=4), random_batch())
    assert abs(got_loss - want_loss) < 1e-5, f"accumulated loss {got_loss} vs big batch {want_loss}"
    np.testing.assert_allclose(got_sq, want_sq, rtol=1e-4, err_msg="accumulated gradient norms differ")
    for name, a, b in zip(train.param_names(want), jax.tree.leaves(want), jax.tree.leaves(got)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=ADAM_ATOL, err_msg=f"{name}: 4 micro-batches "
                                   "must give the big batch's update (up to float32 summation order)")


def test_remat_gives_the_same_gradients_and_saves_memory():
    mc = dataclasses.replace(MICRO, seq_len=64, n_layers=4)
    params = model.init(mc, jax.random.key(0))
    batch = random_batch(B=8, S=64)
    grads, temp = {}, {}
    for remat in ("none", "full", "matmuls"):
        c = dataclasses.replace(mc, remat=remat)
        grad = jax.jit(jax.grad(lambda p: model.loss_fn(p, batch["inputs"], batch["targets"], c)))
        compiled = grad.lower(params).compile()
        grads[remat], temp[remat] = compiled(params), compiled.memory_analysis().temp_size_in_bytes
    for remat in ("full", "matmuls"):
        for a, b in zip(jax.tree.leaves(grads["none"]), jax.tree.leaves(grads[remat])):
            # Recomputation repeats the same float32 operations; XLA may fuse them differently.
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7, err_msg=f"remat {remat} changed a gradient")
    assert temp["full"] < 0.8 * temp["none"], f"full remat should keep far fewer activations: {temp}"
    assert temp["full"] <= temp["matmuls"], f"saving matmul outputs cannot need less than saving none: {temp}"


def test_gelu_and_slope_match_jax():
    x = jnp.linspace(-6, 6, 101)
    h, slope = backward.gelu_and_slope(x)
    np.testing.assert_allclose(h, jax.nn.gelu(x), rtol=1e-6, atol=1e-7, err_msg="GELU values")
    np.testing.assert_allclose(slope, jax.vmap(jax.grad(jax.nn.gelu))(x), rtol=1e-5, atol=1e-6,
                               err_msg="hand-written GELU derivative")


def test_mlp_backward_matches_autodiff():
    kx, ku, kd, kg = jax.random.split(jax.random.key(3), 4)
    x, dy = jax.random.normal(kx, (2, 5, 8)), jax.random.normal(kg, (2, 5, 8))
    w_up, w_down = jax.random.normal(ku, (8, 12)) * 0.3, jax.random.normal(kd, (12, 8)) * 0.3

    def plain(x, w_up, w_down):  # the formula, differentiated by JAX
        return jnp.einsum("BSF,FE->BSE", jax.nn.gelu(jnp.einsum("BSE,EF->BSF", x, w_up)), w_down)

    np.testing.assert_allclose(backward.mlp(x, w_up, w_down), plain(x, w_up, w_down), rtol=1e-5,
                               atol=1e-6, err_msg="MLP forward")
    got = jax.vjp(backward.mlp, x, w_up, w_down)[1](dy)
    want = jax.vjp(plain, x, w_up, w_down)[1](dy)
    for name, g, w in zip(("dx", "d_up", "d_down"), got, want):
        assert g.shape == w.shape, f"{name}: shape {g.shape}, autodiff gives {w.shape}"
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=f"hand-written MLP backward: {name}")


def test_mixed_precision_trains():
    mc = dataclasses.replace(MICRO, dtype="bfloat16")
    state = fresh_state(MICRO, TC)  # the same float32 state: only the compute dtype differs
    step = train.make_step(mc, TC)
    tokens = np.tile(np.arange(17, dtype=np.int32) * 7 % 256, (8, 1))  # one repeated pattern
    batch = {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}
    losses = []
    for _ in range(15):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert state["params"]["blocks"]["w_up"].dtype == jnp.float32, "master weights stay float32"
    assert losses[-1] < 0.5 * losses[0], f"bf16 compute should learn a fixed pattern: {losses[0]:.2f} -> {losses[-1]:.2f}"


def test_bfloat16_step_keeps_its_saved_activations_bfloat16_on_the_cpu():
    """With XLA:CPU's defaults, the forward loop would write each layer's saved bfloat16
    activations by converting the whole stack to float32 and back (float normalization), and
    the backward loop would convert every layer's to float32 at once (loop-invariant code
    motion). make_step's program does neither, and computes the same loss."""
    mc = dataclasses.replace(MICRO, dtype="bfloat16", n_layers=4)
    state, batch = fresh_state(MICRO, TC), random_batch()
    plain = jax.jit(train.step._step_fn(mc, TC, train.Placement(), model), donate_argnums=0)
    programs = {name: f.lower(state, batch).compile()
                for name, f in [("make_step", train.make_step(mc, TC)), ("plain jit", plain)]}
    temp = {name: p.memory_analysis().temp_size_in_bytes for name, p in programs.items()}
    assert temp["make_step"] < temp["plain jit"], \
        f"make_step on a CPU in bfloat16: compile without loop-invariant code motion; temporaries {temp}"
    upcast = {name: p.as_text().count("convert(%dynamic_update_slice") for name, p in programs.items()}
    assert upcast["plain jit"] > 0 and upcast["make_step"] == 0, \
        f"make_step on a CPU in bfloat16: compile without float normalization, so that each " \
        f"layer's activations are written into their stack in place; whole-stack writes {upcast}"
    got = train.make_step(mc, TC)(fresh_state(MICRO, TC), batch)[1]["loss"]
    want = plain(fresh_state(MICRO, TC), batch)[1]["loss"]
    np.testing.assert_allclose(float(got), float(want), rtol=1e-3,
                               err_msg="the compiler options changed the step's loss")


def test_float32_step_runs_its_matmuls_on_xlas_emitter_on_the_cpu():
    """On a CPU a float32 step compiles its dots with XLA's own emitter, not as YNNPACK fusions
    (faster in float32, lesson 06 §11); a bfloat16 step keeps YNNPACK, which is faster there."""
    state, batch = fresh_state(MICRO, TC), random_batch()
    for dtype, want in [("float32", False), ("bfloat16", True)]:
        mc = dataclasses.replace(MICRO, dtype=dtype)
        hlo = train.make_step(mc, TC).lower(state, batch).compile().as_text()
        assert ("__ynn_fusion" in hlo) == want, \
            f"make_step on a CPU in {dtype}: {'keep' if want else 'turn off'} XLA's YNNPACK fusions " \
            f"(shared.compile_options)"


def test_the_loop_compiles_a_plugged_in_step_with_the_steps_options(monkeypatch):
    """A step from outside make_step (the learner's, build exercise 6.6) is jitted without the
    CPU bfloat16 option; the loop's compile_step adds it."""
    mc = dataclasses.replace(MICRO, dtype="bfloat16", n_layers=4)
    state = fresh_state(MICRO, TC)
    plain = jax.jit(train.step._step_fn(mc, TC, train.Placement(), model), donate_argnums=0)
    monkeypatch.setattr(loop, "make_step", lambda *args: plain)
    run = types.SimpleNamespace(mc=mc, tc=TC, placement=train.Placement(), net=model, state=state)
    got = loop.compile_step(run).memory_analysis().temp_size_in_bytes
    without = plain.lower(state, random_batch()).compile().memory_analysis().temp_size_in_bytes
    assert got < without, \
        f"compile_step: compile a plugged-in step with the step's compiler options; temporaries {got} >= {without}"


def test_nan_check_names_the_step_and_a_bad_gradient():
    state = fresh_state(MICRO, TC)
    state["params"]["blocks"]["w_up"] = state["params"]["blocks"]["w_up"].at[0, 0, 0].set(jnp.nan)
    batch = random_batch()
    params = jax.tree.map(jnp.copy, state["params"])  # the step donates the state
    _, metrics = train.make_step(MICRO, TC)(state, batch)
    names = train.param_names(params)
    with pytest.raises(train.NonFiniteError, match=r"step 7: loss nan.*first non-finite gradient: (\S+)") as e:
        train.check_finite(metrics, names, 7)
    named = str(e.value).rsplit(": ", 1)[1]
    grads = dict(zip(names, jax.tree.leaves(jax.grad(lambda p: model.loss_fn(
        p, batch["inputs"], batch["targets"], MICRO))(params))))
    assert not np.isfinite(grads[named]).all(), f"{named} was named but its gradient is finite"
    assert all(np.isfinite(grads[n]).all() for n in names[:names.index(named)]), "not the first bad one"


def test_sharded_run_resumes_bitwise(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(f"def f{i % 7}(x):\n    return x * {i % 5}\n" for i in range(300)))
    mesh = sharding.strategy_mesh("fsdp", jax.devices())
    tc = dataclasses.replace(TC, steps=6, eval_every=6, eval_batches=1, checkpoint_every=3)
    kw = dict(data_path=str(corpus), progress=False, placement=train.Placement(mesh, "fsdp"))
    whole = train.train(MICRO, tc, tmp_path / "whole", **kw)
    train.train(MICRO, tc, tmp_path / "split", stop_after=3, **kw)
    resumed = train.train(MICRO, tc, tmp_path / "split", resume=True, **kw)
    for a, b in zip(jax.tree.leaves(whole.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(a, b, "a sharded run stopped and resumed must end bitwise equal")
    assert set(whole.goodput) == {"step", "startup", "compile", "data", "checkpoint", "eval"}
    assert whole.memory["parameters"] > 0 and whole.memory["activations and temporaries"] > 0
