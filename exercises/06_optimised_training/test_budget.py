"""Checks for exercises 6.1-6.3 against compiled memory analysis, the traced program and shared.model."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from shared import config as cfg
from shared import model, train


@pytest.mark.parametrize("n, dtype", [(1000, "float32"), (4096, "bfloat16"), (123_457, "float32")])
def test_adamw_state_bytes(answers, n, dtype):
    # Oracle: the compiled size of optax.adamw's init outputs, plus the parameters themselves.
    params = jax.ShapeDtypeStruct((n,), dtype)
    moments = jax.jit(optax.adamw(1e-3).init).lower(params).compile().memory_analysis()
    want = moments.output_size_in_bytes + n * jnp.dtype(dtype).itemsize
    got = answers.adamw_state_bytes(n, dtype)
    # optax also keeps a step count and empty states: a few dozen bytes the answer leaves out.
    assert got is not None and 0 <= want - got < 64, \
        f"{n} {dtype} parameters: expected {want:,} bytes less a few counters, got {got!r}"


def test_adamw_state_bytes_of_the_course_step(answers):
    # Oracle: the arguments of the compiled training step are the state plus the batch.
    mc = cfg.ModelConfig(seq_len=16, d_model=64, n_layers=2, n_heads=4, d_ff=128, dtype="bfloat16")
    tc = cfg.TrainConfig(batch_size=2)
    state = jax.eval_shape(lambda: train.init_state(mc, tc))
    batch = {k: jax.ShapeDtypeStruct((2, 16), jnp.int32) for k in ("inputs", "targets")}
    args = train.make_step(mc, tc).lower(state, batch).compile().memory_analysis().argument_size_in_bytes
    n = model.param_count(state["params"])
    got = answers.adamw_state_bytes(n, "float32")  # mixed precision keeps float32 masters
    # The counters (step, Adam's count) and the 2 x 2 x 16 int32 batch: a few hundred bytes.
    assert abs(args - got) < 1024, f"{n:,} parameters: the compiled step holds {args:,} bytes, got {got!r}"


def dot_flops(jaxpr) -> int:
    """Matmul FLOPs in a traced program, sub-programs (remat, scan bodies) included."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs, out = eqn.invars[0].aval, eqn.outvars[0].aval
            total += 2 * int(np.prod(out.shape)) * int(np.prod([lhs.shape[i] for i in contract]))
        for p in eqn.params.values():
            for sub in p if isinstance(p, (list, tuple)) else [p]:
                if hasattr(sub, "jaxpr") and hasattr(sub, "consts"):
                    total += dot_flops(sub.jaxpr)
                elif hasattr(sub, "eqns"):
                    total += dot_flops(sub)
    return total


@pytest.mark.parametrize("remat", [False, True])
def test_step_flops(answers, remat):
    # Oracle: count the matmuls JAX traces for the gradient of a stack of 4 layers
    # (gradients with respect to the weights and the input, so every layer has both).
    T, E, L = 32, 48, 4
    layer = lambda x, w: jnp.tanh(x @ w)
    if remat:
        layer = jax.checkpoint(layer)

    def loss(ws, x):
        for w in ws:
            x = layer(x, w)
        return x.sum()

    ws, x = [jnp.ones((E, E))] * L, jnp.ones((T, E))
    want = dot_flops(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(ws, x).jaxpr)
    got = answers.step_flops(L * E * E, T, remat)
    assert got == want, f"{L} layers of {E}x{E}, {T} tokens, remat={remat}: traced {want:,} FLOPs, got {got!r}"


@pytest.mark.parametrize("preset", ["tiny", "small", "125m"])
def test_mfu(answers, preset):
    mc = cfg.preset(preset).model
    tokens, seconds, peak = 16 * mc.seq_len, 0.25, 1e12
    want = model.train_flops_per_token(mc) * tokens / seconds / peak  # oracle: shared.model
    got = answers.mfu(model.matmul_param_count(mc), mc.n_layers, mc.seq_len, mc.d_model, tokens,
                      seconds, peak)
    assert got == pytest.approx(want, rel=1e-9), f"{preset}: expected MFU {want:.4f}, got {got!r}"
