"""Checks for exercises 6.10-6.11 (bug_hunt.py): your debugging tools, run on bugs planted here.

The oracle is where this file planted each bug. A small two-layer network with named scopes
(embed/tokens, embed/positions, layer0/attention, layer0/mlp, ..., head, loss; each layer's
MLP a jitted function of its own) gets one bug at a chosen place: a NaN that a jnp.where
discards so that the loss stays finite, a NaN that only the gradient makes (the square root of
a zero distance), or a token or position id past its table that the gather clamps. Each bug is
planted at two places in turn, and first_nan must name the place each time. For recompiles,
a fresh jitted function is called with arguments that change one thing at a time. Before
asking your tool, the checks confirm, with jax.monitoring, that the planted calls compile
where the plan says.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong answers (tests/wrong/bug_hunt_*.py); the test_* functions at the
bottom are thin wrappers over them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import monitoring

from shared.course import imports

B, S, E, V = 2, 6, 8, 16  # batch, positions, width, vocabulary: programs that compile in a blink

ALLOWED = ("jax", "jaxlib", "numpy", "stdlib")
NOT_ALLOWED = {"shared.debugging": "it holds the course's checkify and compile-counting tools, "
                                   "which this exercise writes"}


def check_imports(m):
    """Fails on the first module the answer's file imports (or reaches) that it may not; returns m."""
    return imports.check(m, ALLOWED, NOT_ALLOWED)


# ---- the network the bugs are planted in ------------------------------------------------------

def _hidden_nan(h):
    """log of a negative number (tanh < 1): NaN everywhere; the jnp.where discards every one."""
    bad = jnp.log(h - 2.0)
    return jnp.where(jnp.isnan(bad), 0.0, bad)


def _distances(x):
    """[B, S, S] distances between positions: 0 on the diagonal, where sqrt's slope is 1/0."""
    return jnp.sqrt(jnp.sum((x[:, :, None] - x[:, None]) ** 2, axis=-1))


@functools.partial(jax.jit, static_argnames="plant")
def _mlp(x, w, plant: str):
    with jax.named_scope("mlp"):
        h = jnp.tanh(x @ w)
        if plant == "nan":
            h = h + _hidden_nan(h)
        elif plant == "grad":
            h = h + 0.01 * _distances(x) @ x
        return x + h


def _loss(params, tokens, positions, targets, nan="", grad="", visible=""):
    """Mean cross-entropy of the network; nan / grad / visible: the scope that gets that bug."""
    with jax.named_scope("embed"):
        with jax.named_scope("tokens"):
            x = params["embed"][tokens]  # [B, S, E]; an id past the table is clamped
        with jax.named_scope("positions"):
            x = x + params["pos"][positions]
    for l in range(2):
        with jax.named_scope(f"layer{l}"):
            with jax.named_scope("attention"):
                scores = jnp.einsum("bse,bte->bst", x, x) / np.sqrt(E)
                if grad == f"layer{l}/attention":
                    scores = scores - _distances(x)
                y = jax.nn.softmax(scores, axis=-1) @ x
                if nan == f"layer{l}/attention":
                    y = y + _hidden_nan(y)
                x = x + y
            mine = {nan: "nan", grad: "grad"}.get(f"layer{l}/mlp", "")
            x = _mlp(x, params["w"][l], plant=mine)
    with jax.named_scope("head"):
        logits = x @ params["embed"].T  # [B, S, V]
        if visible == "head":
            logits = logits + jnp.sqrt(-1.0 - logits * logits)  # NaN, and it reaches the loss
    with jax.named_scope("loss"):
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.sum(jax.nn.one_hot(targets, V) * logp, axis=-1))


@functools.cache
def _inputs():
    keys = jax.random.split(jax.random.key(0), 4)
    params = {"embed": jax.random.normal(keys[0], (V, E)), "pos": jax.random.normal(keys[1], (S, E)),
              "w": jax.random.normal(keys[2], (2, E, E)) / np.sqrt(E)}
    tokens = jax.random.randint(keys[3], (B, S), 0, V)
    positions = jnp.broadcast_to(jnp.arange(S), (B, S))
    return params, tokens, positions, jnp.roll(tokens, -1, axis=1)


def _planted(**bug):
    """(loss(params, tokens, positions, targets) with the bug, its inputs)."""
    return functools.partial(_loss, **bug), _inputs()


def _run(fn, args):
    """fn(*args) as one compiled program (op by op, each op would compile on its own)."""
    return jax.jit(fn)(*args)


def _ask(m, fn, args, task: str):
    got = m.first_nan(fn, *args)
    assert got is None or (isinstance(got, tuple) and len(got) == 2), \
        f"first_nan: returns (scope, message) or None, got {got!r} ({task})"
    return got


# ---- 6.10 first_nan ----------------------------------------------------------------------------

def check_first_nan_hidden(m):
    for place in ("layer0/attention", "layer1/mlp"):
        fn, args = _planted(nan=place)
        assert np.isfinite(float(_run(fn, args))), f"the test's planted NaN at {place} reached the loss"
        got = _ask(m, fn, args, f"a NaN made in {place}")
        assert got is not None, \
            f"first_nan: returned None, but a NaN was made in {place} and discarded by jnp.where; " \
            f"the loss is finite, so look at every op, not the output"
        assert got[0] == place and "nan" in got[1], \
            f"first_nan: a NaN was made in {place} (then discarded by jnp.where), you named " \
            f"{got[0]!r}: {got[1]}"


def check_first_nan_first_of_two(m):
    fn, args = _planted(nan="layer0/mlp", visible="head")
    got = _ask(m, fn, args, "two NaNs")
    assert got is not None and got[0] == "layer0/mlp", \
        f"first_nan: the first NaN was made in layer0/mlp (discarded there); the one that reaches " \
        f"the loss is made later, in head; you named {got and got[0]!r}"


def check_first_nan_gradient(m):
    for place in ("layer1/attention", "layer0/mlp"):
        fn, args = _planted(grad=place)
        loss, grads = _run(jax.value_and_grad(fn), args)
        assert np.isfinite(float(loss)) and not all(np.isfinite(g).all() for g in jax.tree.leaves(grads)), \
            f"the test's gradient bug at {place} is not one"
        got = _ask(m, jax.grad(fn), args, f"a gradient bug at {place}")
        assert got is not None and got[0] == place, \
            f"first_nan: on jax.grad(loss), the gradient's first NaN or division by zero is made " \
            f"in {place} (sqrt's slope at a zero distance), you named {got and got[0]!r}"


def check_first_nan_out_of_bounds(m):
    params, tokens, positions, targets = _inputs()
    past = {"embed/tokens": (tokens.at[1, 2].set(V + 3), positions),
            "embed/positions": (tokens, positions.at[0, 4].set(S + 1))}
    for place, (t, p) in past.items():
        args = (params, t, p, targets)
        assert np.isfinite(float(_run(_loss, args))), f"the test's id past the table at {place} made a NaN"
        got = _ask(m, _loss, args, f"an id past the table in {place}")
        assert got is not None and got[0] == place and "out-of-bounds" in got[1], \
            f"first_nan: an id past its table is read in {place} (the gather clamps it, the loss " \
            f"stays finite: check indices, not only floats), you returned {got!r}"


def check_first_nan_clean(m):
    fn, args = _planted(grad="layer1/attention")  # its forward pass is clean: sqrt(0) = 0
    got = _ask(m, fn, args, "no bug")
    assert got is None, f"first_nan: this loss makes no NaN (only its gradient would), you returned {got!r}"
    fn, args = _planted()
    got = _ask(m, jax.grad(fn), args, "no bug")
    assert got is None, f"first_nan: the gradient of the network without a bug has no error, you returned {got!r}"


# ---- 6.11 recompiles ---------------------------------------------------------------------------

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # jax.monitoring: one per compilation


def _plan():
    """(a fresh jitted step, its calls, {call: (argument that caused the compile, why)} ,
    {call: why it does not compile}). Fresh: jit's cache is kept per function object."""
    def step(w, x, lr, reduce):
        y = w.sum() * x * lr
        return y.sum() if reduce == "sum" else y.mean()

    w, x4 = jnp.ones(4), jnp.ones(4)
    x8, x4_bf16, x4_numpy = jnp.ones(8), jnp.ones(4, jnp.bfloat16), np.ones(4, np.float32)
    lr32 = jnp.float32(0.2)
    calls = [dict(w=w, x=x4, lr=0.1, reduce="sum"),
             dict(w=w, x=x4, lr=0.2, reduce="sum"),
             dict(w=w, x=x4, lr=lr32, reduce="sum"),
             dict(w=w, x=x8, lr=lr32, reduce="sum"),
             dict(w=w, x=x4, lr=lr32, reduce="sum"),
             dict(w=w, x=x4_numpy, lr=lr32, reduce="sum"),
             dict(w=w, x=x4, lr=lr32, reduce="mean"),
             dict(w=w, x=x4_bf16, lr=lr32, reduce="mean")]
    compiles = {0: ("", "the first call"),
                2: ("lr", "lr became a float32 array, no longer weakly typed like a Python float"),
                3: ("x", "x's shape changed from [4] to [8]"),
                6: ("reduce", "reduce is static and its value changed"),
                7: ("x", "x's dtype changed to bfloat16")}
    quiet = {1: "only the value of lr, a traced Python float, changed",
             4: "x is back to the shape call 0 compiled for, which jit's cache still holds",
             5: "x is a NumPy float32 array of the same shape: the same abstract value"}
    return jax.jit(step, static_argnames="reduce"), calls, compiles, quiet


def _compiling_calls(fn, calls) -> list[int]:
    """The calls that compiled, counted by this test with jax.monitoring."""
    seen = [0]

    def listener(event, seconds, **kwargs):
        if event == COMPILE_EVENT:
            seen[0] += 1

    found = []
    monitoring.register_event_duration_secs_listener(listener)
    try:
        for i, call in enumerate(calls):
            before = seen[0]
            jax.block_until_ready(fn(**call))
            if seen[0] > before:
                found.append(i)
    finally:
        monitoring.unregister_event_duration_listener(listener)
    return found


def _recompiles(m):
    fn, calls, compiles, quiet = _plan()
    measured = _compiling_calls(_plan()[0], calls)  # another fresh function: its own cache
    assert measured == sorted(compiles), \
        f"the test's plan: calls {sorted(compiles)} should compile, jax.monitoring saw {measured}"
    got = m.recompiles(fn, calls)
    assert isinstance(got, list) and all(isinstance(g, tuple) and len(g) == 2 for g in got), \
        f"recompiles: returns a list of (call, argument) pairs, got {got!r}"
    return got, compiles, quiet


def check_recompiles_calls(m):
    got, compiles, quiet = _recompiles(m)
    said = [i for i, _ in got]
    for i in sorted(set(said) | set(compiles)):
        assert i not in quiet or i not in said, \
            f"recompiles: call {i} compiled nothing ({quiet[i]}), you reported it"
        assert i in said, f"recompiles: call {i} compiled ({compiles[i][1]}), you did not report it"
    assert said == sorted(compiles), f"recompiles: the compiling calls are {sorted(compiles)}, you said {said}"


def check_recompiles_cause(m):
    got, compiles, _ = _recompiles(m)
    for i, name in got:
        if i in compiles and name != compiles[i][0]:
            raise AssertionError(f"recompiles: call {i} compiled because {compiles[i][1]}; "
                                 f"you named {name!r}, not {compiles[i][0]!r}")


# ---- the tests ----

def test_first_nan_hidden(answers):
    check_first_nan_hidden(check_imports(answers))


def test_first_nan_first_of_two(answers):
    check_first_nan_first_of_two(check_imports(answers))


def test_first_nan_gradient(answers):
    check_first_nan_gradient(check_imports(answers))


def test_first_nan_out_of_bounds(answers):
    check_first_nan_out_of_bounds(check_imports(answers))


def test_first_nan_clean(answers):
    check_first_nan_clean(check_imports(answers))


def test_recompiles_calls(answers):
    check_recompiles_calls(check_imports(answers))


def test_recompiles_cause(answers):
    check_recompiles_cause(check_imports(answers))
