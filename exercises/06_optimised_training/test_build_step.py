"""Checks for the build exercise 6.6-6.7 (build_step.py): the optimised training step, written by you.

The oracle is the course core: shared.train.step.make_step (the step `python -m shared.train`
runs) on the same state and batch, and shared.backward.remat (the layer wrapper the model's scan
calls) on the same layer. Properties say which mistake a difference is: an accumulated step
against one big step on rows whose weights differ, the old state's buffers after a call, the
dtypes of the new state and of every matmul's inputs, the residuals a layer keeps for the
backward pass, and the compiled step's temporaries with and without remat.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the same
checks on kept wrong builds (tests/wrong/build_step_*.py) and proves each is rejected by the
check about its mistake; the test_* functions at the bottom are thin wrappers over them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import types

import jax
import jax.numpy as jnp
import numpy as np

from shared import backward as core_backward
from shared import model as core
from shared.config import ModelConfig, TrainConfig
from shared.course import imports
from shared.course.jaxprs import sub_jaxprs
from shared.train import step as core_step
from shared.train.optim import optimizer

# The plain lesson-01 model (reference attention, autodiff's MLP), small enough to compile fast.
MC = ModelConfig(vocab_size=64, seq_len=32, d_model=32, n_layers=2, n_heads=4, d_ff=128)
BF16 = dataclasses.replace(MC, dtype="bfloat16")
FULL = dataclasses.replace(MC, remat="full")
# warmup_steps=0: the first step already moves the parameters.
TC = TrainConfig(batch_size=8, steps=10, lr=1e-2, warmup_steps=0)
ACCUM = dataclasses.replace(TC, grad_accum=2)
B, S = TC.batch_size, MC.seq_len
# Each row's weighted tokens (the rest is padding, weight 0): the micro-batches of rows
# {0, 2, 4, 6} and {1, 3, 5, 7} hold 72 and 16 of them, those of rows {0..3} and {4..7}
# 68 and 20, so a mean of micro-batch means is not the batch's mean whichever way rows split.
ROW_TOKENS = (32, 2, 30, 4, 4, 2, 6, 8)
# float32: the same sums in another order (micro-batches, fused kernels) differ by ~1e-6.
F32_TOL = 1e-5
# The new parameters, in learning rates: the accumulated step's differ from one big step's by
# ~1e-3 of one (the ~0 gradients, see _compare); a wrong gradient flips whole entries, 2 of them.
PARAM_TOL = 0.05
TASK_STEP, TASK_REMAT = "make_step", "remat"


# ---- the answer is not one import away ----

ALLOWED = ("jax", "jaxlib", "numpy", "optax", "stdlib", "shared.config", "shared.model",
           "shared.train.optim")
NOT_ALLOWED = {
    "shared.train.step": "it holds the course's step, which this exercise writes",
    "shared.train.loop": "it runs the course's step, which this exercise writes",
    "shared.backward": "it holds the course's remat wrapper, which this exercise writes",
}


def check_imports(m):
    """Fails on the first module the answer's file imports (or reaches) that it may not; returns m."""
    return imports.check(m, ALLOWED, NOT_ALLOWED)


# ---- the state, the batch, and a model that computes in its weights' dtype ----

@functools.cache
def _state0() -> dict:
    """A training state whose logits are O(1), so that tokens' losses differ (at GPT-2's init
    every loss is near log V and a wrong average would barely show)."""
    p = core.init(MC, jax.random.key(0))
    p["embed"] = p["embed"] / jnp.std(p["embed"])
    p["unembed"] = p["unembed"] * (2 * MC.d_model ** -0.5 / jnp.std(p["unembed"]))
    return {"params": p, "opt_state": optimizer(TC).init(p), "step": jnp.zeros((), jnp.int32)}


def _state() -> dict:
    """A fresh copy of the state: the steps donate (delete) the one they are given."""
    return jax.tree.map(jnp.array, _state0())


@functools.cache
def _batch() -> dict:
    """[B, S] packed rows: two documents per row, then padding of weight 0."""
    rng = np.random.default_rng(0)
    positions, segments, weights = np.zeros((B, S), np.int32), np.zeros((B, S), np.int32), np.zeros((B, S))
    for r, n in enumerate(ROW_TOKENS):
        first = n // 2 + 1
        positions[r] = np.concatenate([np.arange(first), np.arange(S - first)])
        segments[r, first:] = 1
        weights[r, :n] = 1.0
    tokens = rng.integers(0, MC.vocab_size, (B, S + 1))
    return {"inputs": jnp.asarray(tokens[:, :-1], jnp.int32),
            "targets": jnp.asarray(tokens[:, 1:], jnp.int32), "positions": jnp.asarray(positions),
            "segment_ids": jnp.asarray(segments), "weights": jnp.asarray(weights, jnp.float32)}


def _neutral_loss_sums(params, batch, config):
    """shared.model's loss, computed in the dtype of the weights it is given, not config.dtype:
    the cast to the compute dtype is then the step's alone."""
    dtype = str(jax.tree.leaves(params)[0].dtype)
    return core.loss_sums(params, batch, dataclasses.replace(config, dtype=dtype))


NEUTRAL = types.ModuleType("neutral_model")
NEUTRAL.init, NEUTRAL.loss_sums = core.init, _neutral_loss_sums


# ---- running a step: the core's, and yours, compiled as the loop compiles them ----

@functools.cache
def _compiled(make_step, mc: ModelConfig, tc: TrainConfig, net=core):
    """make_step(...) lowered and compiled for the state and batch, as shared.train.loop.compile_step does."""
    step = make_step(mc, tc) if net is core else make_step(mc, tc, net)
    assert hasattr(step, "lower"), (f"{TASK_STEP}: returned {type(step).__name__}, not a jitted function: "
                                    "the loop compiles it ahead of time with .lower(state, batch).compile()")
    return step.lower(_state0(), _batch()).compile()


@functools.cache
def _core_run(mc: ModelConfig, tc: TrainConfig):
    return _compiled(core_step.make_step, mc, tc)(_state(), _batch())


def _run(m, mc: ModelConfig, tc: TrainConfig, net=core):
    """Your step on a fresh state: (new state, metrics), checked for their structure."""
    out = _compiled(m.make_step, mc, tc, net)(_state(), _batch())
    assert isinstance(out, tuple) and len(out) == 2, \
        f"{TASK_STEP}: the step returned {type(out).__name__}, want (state, metrics)"
    state, metrics = out
    assert isinstance(state, dict) and set(state) == {"params", "opt_state", "step"}, \
        f"{TASK_STEP}: the new state has keys {sorted(state) if isinstance(state, dict) else state}, " \
        "want params, opt_state, step"
    assert isinstance(metrics, dict) and {"loss", "grad_norm", "grad_sq"} <= set(metrics), \
        f"{TASK_STEP}: the metrics have keys {sorted(metrics) if isinstance(metrics, dict) else metrics}, " \
        "want loss, grad_norm, grad_sq"
    n = len(jax.tree.leaves(_state0()["params"]))
    assert np.shape(metrics["grad_sq"]) == (n,), \
        f"{TASK_STEP}: grad_sq has shape {np.shape(metrics['grad_sq'])}, want ({n},): one per parameter array"
    return state, metrics


def _paths(tree) -> dict:
    return {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _worst(got: dict, want: dict) -> tuple[str, float]:
    """The array of `want` whose entries differ most from got's, relative to its largest entry."""
    got = _paths(got)
    errs = {name: float(np.abs(np.asarray(got[name]) - np.asarray(w)).max() / max(np.abs(w).max(), 1e-30))
            for name, w in _paths(want).items()}
    name = max(errs, key=errs.get)
    return name, errs[name]


def _compare(m, mc, tc, net, what: str, tol: float = F32_TOL):
    """Your step's metrics and new state against the core's one big step (grad_accum 1)."""
    state, metrics = _run(m, mc, tc, net)
    want_state, want = _core_run(dataclasses.replace(mc, remat="none"), dataclasses.replace(tc, grad_accum=1))
    assert set(_paths(state)) == set(_paths(want_state)), \
        f"{TASK_STEP}: {what}: the new state's tree differs from the state's (params, opt_state, step)"
    for key in ("loss", "grad_norm"):
        got, w = float(metrics[key]), float(want[key])
        assert abs(got - w) <= tol * abs(w), (f"{TASK_STEP}: {what}: {key} is {got:.6g}, the course step's "
                                              f"{w:.6g} (relative {abs(got - w) / abs(w):.1e} > {tol:.0e})")
    name, err = _worst(state["opt_state"], want_state["opt_state"])
    assert err <= tol, (f"{TASK_STEP}: {what}: the optimizer state {name} differs from the course step's "
                        f"(relative {err:.1e} > {tol:.0e})")
    # Adam's first update is about lr * g / |g| per entry: an entry whose gradient is ~0 moves by
    # up to lr on a rounding, so the new parameters are compared in units of the learning rate.
    got, want = _paths(state["params"]), _paths(want_state["params"])
    moved = {name: float(np.abs(np.asarray(got[name]) - np.asarray(w)).max()) / tc.lr
             for name, w in want.items()}
    name = max(moved, key=moved.get)
    assert moved[name] <= PARAM_TOL, (f"{TASK_STEP}: {what}: the new parameters {name} differ from the "
                                      f"course step's by {moved[name]:.2g} learning rates (> {PARAM_TOL:g})")
    assert int(state["step"]) == 1, \
        f"{TASK_STEP}: {what}: the new state's step is {int(state['step'])}, want 1"


# ---- make_step (exercise 6.6) ----

def check_make_step_matches_core(m):
    _compare(m, MC, TC, core, "float32, one batch")


def check_make_step_accumulates(m):
    _compare(m, MC, ACCUM, core, "with grad_accum=2 against one big step (micro-batches holding 72 and 16 "
                                 "weighted tokens: each must count by its tokens, as in one batch)", 1e-4)


def check_make_step_donates(m):
    state = _state()
    _compiled(m.make_step, MC, TC, core)(state, _batch())
    alive = [name for name, x in _paths(state).items() if not x.is_deleted()]
    assert not alive, (f"{TASK_STEP}: after a step the old state's {alive[0]} (and {len(alive) - 1} more "
                       "arrays) still holds its buffer: the old state is not donated, so both states "
                       "are alive at once")


def _dot_dtypes(jaxpr) -> set[str]:
    """dtypes of every matmul's inputs in a jaxpr and the jaxprs inside it (jit, scan, remat, ...)."""
    found = set()
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found |= {str(v.aval.dtype) for v in eqn.invars}
        for sub in sub_jaxprs(eqn):
            found |= _dot_dtypes(sub)
    return found

def check_make_step_mixed_precision(m):
    for net, which in ((core, "shared.model"), (NEUTRAL, "a model that computes in its weights' dtype")):
        step = m.make_step(BF16, TC) if net is core else m.make_step(BF16, TC, net)
        jaxpr, (new, metrics) = jax.make_jaxpr(step, return_shape=True)(_state0(), _batch())
        low = [name for name, x in _paths({"params": new["params"], "opt_state": new["opt_state"]}).items()
               if jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != jnp.float32]
        assert not low, (f"{TASK_STEP}: with dtype='bfloat16' the new state's {low[0]} is "
                         f"{_paths(new)[low[0]].dtype}: the float32 master weights (and the optimizer's "
                         "state) are lost; only the computation runs in bfloat16")
        assert metrics["grad_sq"].dtype == jnp.float32, (
            f"{TASK_STEP}: with dtype='bfloat16' the gradients come out {metrics['grad_sq'].dtype}: the "
            "gradients and the update are float32")
        assert "bfloat16" in _dot_dtypes(jaxpr.jaxpr), (
            f"{TASK_STEP}: with dtype='bfloat16' and {which}, no matmul takes bfloat16 inputs: the step "
            "computes in config.dtype, from the float32 master weights")


def check_make_step_remat(m):
    none = _compiled(m.make_step, MC, TC, core).memory_analysis().temp_size_in_bytes
    full = _compiled(m.make_step, FULL, TC, core).memory_analysis().temp_size_in_bytes
    assert full <= 0.5 * none, (f"{TASK_STEP}: with remat='full' the compiled step's temporaries are "
                                f"{full / 2**20:.2f} MiB against {none / 2**20:.2f} MiB with remat='none': "
                                "the backward pass still keeps every layer's activations at once "
                                "(config.remat, applied to each layer by the model)")
    _compare(m, FULL, TC, core, "remat='full'")


# ---- remat (exercise 6.7) ----

@functools.cache
def _layer_inputs():
    """One layer's input x [B, S, E] and weights (layer 0 of the state's blocks)."""
    x = jax.random.normal(jax.random.key(1), (B, S, MC.d_model))
    return x, jax.tree.map(lambda w: w[0], _state0()["params"]["blocks"])


def _layer(x, p):
    """One transformer layer of the model (shared.model.block), as the layer scan runs it."""
    return core.block(x, p, _batch()["positions"], _batch()["segment_ids"], MC)[0]


def _kept(layer) -> int:
    """Bytes a layer keeps for its backward pass: the residuals jax.vjp holds."""
    backward = jax.eval_shape(lambda *args: jax.vjp(layer, *args)[1], *_layer_inputs())  # shapes only
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(backward))


def _remat_eqns(jaxpr) -> int:
    """How many jax.checkpoint (remat) equations a jaxpr holds, at any depth."""
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name.startswith(("remat", "checkpoint"))
        n += sum(_remat_eqns(sub) for sub in sub_jaxprs(eqn))
    return n


def _wrapped(m, policy: str):
    layer = m.remat(_layer, policy)
    assert callable(layer), \
        f"{TASK_REMAT}: remat(layer, {policy!r}) returned {type(layer).__name__}, not a function"
    return layer


WHAT_IS_KEPT = {"none": "every intermediate autodiff needs", "full": "only the layer's inputs",
                "matmuls": "the outputs of the weight matmuls (attention's batched matmuls are recomputed)"}


def check_remat_none(m):
    layer = _wrapped(m, "none")
    n = _remat_eqns(jax.make_jaxpr(layer)(*_layer_inputs()).jaxpr)
    kept, want = _kept(layer), _kept(_layer)
    assert n == 0 and kept == want, (f"{TASK_REMAT}: with policy 'none' the layer keeps {kept:,} bytes "
                                     f"for the backward pass, the layer itself {want:,}: policy 'none' "
                                     "leaves the layer as it is")


def check_remat_policies(m):
    for policy in ("full", "matmuls"):
        layer = _wrapped(m, policy)
        n = _remat_eqns(jax.make_jaxpr(layer)(*_layer_inputs()).jaxpr)
        assert n >= 1, f"{TASK_REMAT}: with policy {policy!r} the layer's program holds no jax.checkpoint"
        kept, want = _kept(layer), _kept(core_backward.remat(_layer, policy))
        assert kept == want, (f"{TASK_REMAT}: with policy {policy!r} the layer keeps {kept:,} bytes for "
                              f"the backward pass, the course's {want:,}: {policy!r} keeps "
                              f"{WHAT_IS_KEPT[policy]}")
    try:
        m.remat(_layer, "everything")
    except ValueError:
        return
    raise AssertionError(f"{TASK_REMAT}: remat(layer, 'everything') raised no ValueError: the policy is one "
                         "of shared.config.REMAT")


@contextlib.contextmanager
def _plugged(m):
    """m.remat where the model's layer scan looks for it (shared.backward.remat), while the block runs."""
    saved = core_backward.remat
    core_backward.remat = m.remat
    try:
        yield
    finally:
        core_backward.remat = saved


def check_remat_in_model(m):
    grad = jax.grad(lambda p, mc: core.loss_sums(p, _batch(), mc)[0])
    want = jax.jit(grad, static_argnums=1)(_state0()["params"], MC)
    with _plugged(m):  # a fresh jit: the model looks up the wrapper when it is traced
        got = jax.jit(grad, static_argnums=1)(_state0()["params"], dataclasses.replace(MC, remat="matmuls"))
    name, err = _worst(got, want)
    assert err <= F32_TOL, (f"{TASK_REMAT}: with policy 'matmuls' in the model's layer scan the gradient of "
                            f"{name} differs from the model's without remat (relative {err:.1e} > "
                            f"{F32_TOL:.0e}): recomputing must not change the result")


# ---- the tests: your answers (or the solution's, with --solutions) through every check ----

def test_make_step_matches_core(answers):
    check_make_step_matches_core(check_imports(answers))


def test_make_step_accumulates(answers):
    check_make_step_accumulates(check_imports(answers))


def test_make_step_donates(answers):
    check_make_step_donates(check_imports(answers))


def test_make_step_mixed_precision(answers):
    check_make_step_mixed_precision(check_imports(answers))


def test_make_step_remat(answers):
    check_make_step_remat(check_imports(answers))


def test_remat_none(answers):
    check_remat_none(check_imports(answers))


def test_remat_policies(answers):
    check_remat_policies(check_imports(answers))


def test_remat_in_model(answers):
    check_remat_in_model(check_imports(answers))
