"""Checks for the build exercise 4.6-4.8 (build_fsdp.py): FSDP, and a matmul whose
reduce-scatter is a ring of ppermutes, with the collectives written by hand.

Runs on 8 simulated CPU devices (conftest.py). The oracle is the unsharded computation in
jax.numpy and its gradients by jax.vjp. The compiled programs show the collectives (counted
with shared.collectives.compiled_collectives and priced with its ring model): FSDP's forward
pass must gather each weight and its backward pass reduce-scatter the weight's gradient,
never all-reduce it; the ring must be n - 1 collective-permutes that send what a
reduce-scatter would. What jax.vjp keeps between the two passes shows whether a device held
on to a gathered weight; the per-device gradient must be the device's shard.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong builds (tests/wrong/build_fsdp_*.py) and proves each is rejected by
the check about its mistake; the test_* functions at the bottom are thin wrappers over them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import collectives, sharding
from shared.course import imports
from shared.course.jaxprs import primitives, sub_jaxprs

CPUS = jax.devices("cpu")
DEVICES = 8
AXIS = sharding.DATA
ROWS = P(AXIS, None)
# fsdp_matmul: x [B, E] @ W [E, F]; on 8 devices B/n = 2 rows of x and E/n = 4 rows of W each.
B, E, F = 16, 32, 24
# fsdp_forward: the benchmark's stack at a tiny size, L layers of [E, E].
STACK_B, STACK_E, STACK_L = 16, 64, 3
# float32 sums of at most 64 terms of size ~1 in another order: ~1e-6 of the largest entry.
F32_TOL = 1e-5


# ---- the answer is not one import away ----

ALLOWED = ("jax", "jaxlib", "numpy", "stdlib", "shared.config")
NOT_ALLOWED = {
    "shared.collectives": "it holds the course's collectives and collective matmul, which this "
                          "exercise writes by hand",
    "shared.sharding": "it holds the course's FSDP stack (stack_forward), which this exercise writes",
}


def check_imports(m):
    """Fails on the first module the answer's file imports that it may not; returns m."""
    return imports.check(m, ALLOWED, NOT_ALLOWED)


# ---- running the answer ----

def _run(task: str, what: str, f, *args, want: str = ""):
    """f(*args); an error other than the stub's becomes one line naming the task (and, if
    given, what the contract wants)."""
    try:
        return f(*args)
    except NotImplementedError:
        raise
    except Exception as e:  # noqa: BLE001: one line, not a traceback through jax
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise AssertionError(f"{task}: {what} failed{': ' + want if want else ''} "
                             f"({type(e).__name__}: {first})") from None


def _err(got, want) -> tuple[float, float]:
    """max |got - want|, and the float32 tolerance for it."""
    want = np.asarray(want, np.float64)
    return float(np.abs(np.asarray(got, np.float64) - want).max()), F32_TOL * max(1.0, float(np.abs(want).max()))


@functools.cache
def _mesh(n: int):
    return sharding.make_mesh({AXIS: n}, CPUS[:n])


def _place(a, mesh):
    return jax.device_put(jnp.asarray(a), NamedSharding(mesh, ROWS))


def _inputs(n: int, seed: int = 0, dtype=jnp.float32):
    """x [B, E], W [E, F], dy [B, F] on the host, and x, W placed split by rows on n devices."""
    rng = np.random.default_rng(seed)
    x, w, dy = (rng.normal(size=s).astype(np.float32) for s in ((B, E), (E, F), (B, F)))
    mesh = _mesh(n)
    return x, w, dy, _place(x.astype(dtype), mesh), _place(w.astype(dtype), mesh)


@functools.cache
def _matmul(fn, n: int):
    """(the shard_map of fn over n devices, jitted; jitted (x, w, dy) -> (dx, dw) by jax.vjp)."""
    f = jax.jit(jax.shard_map(lambda x, w: fn(x, w, AXIS), mesh=_mesh(n), in_specs=(ROWS, ROWS),
                              out_specs=ROWS))
    return f, jax.jit(lambda x, w, dy: jax.vjp(f, x, w)[1](dy))


def _unsharded_vjp(x, w, dy):
    return jax.vjp(jnp.matmul, jnp.asarray(x), jnp.asarray(w))[1](jnp.asarray(dy))


def _summary(found) -> str:
    return collectives.summarize(found)


# ---- 4.6: fsdp_matmul ----

def check_fsdp_matmul_values(m):
    for n in (2, DEVICES):
        x, w, _, xs, ws = _inputs(n)
        out = _run("fsdp_matmul", f"the forward pass on {n} devices", _matmul(m.fsdp_matmul, n)[0], xs, ws)
        assert out.shape == (B, F), (f"fsdp_matmul: on {n} devices the rows put together have shape "
                                     f"{out.shape}, want [B, F] = {(B, F)}: each device returns [B/n, F]")
        err, tol = _err(out, x @ w)
        assert err <= tol, (f"fsdp_matmul: on {n} devices x @ W differs from the unsharded product by "
                            f"{err:.2e}: the devices' rows of W, gathered in device order, make W")


def _local_only(x, w, dy, n):
    """The mistake's gradient: each device's rows of x.T @ dy over its own B/n batch rows only."""
    r, e = B // n, E // n
    return np.concatenate([(x[i * r:(i + 1) * r].T @ dy[i * r:(i + 1) * r])[i * e:(i + 1) * e]
                           for i in range(n)])


def check_fsdp_matmul_gradients(m):
    x, w, dy, xs, ws = _inputs(DEVICES, 1)
    dx, dw = _run("fsdp_matmul", f"the backward pass (jax.vjp) on {DEVICES} devices",
                  _matmul(m.fsdp_matmul, DEVICES)[1], xs, ws, _place(dy, _mesh(DEVICES)),
                  want=f"on each device it returns dx [B/n, E] and w_shard's gradient [E/n, F] = "
                       f"[{E // DEVICES}, {F}] in w_shard's dtype")
    want_dx, want_dw = _unsharded_vjp(x, w, dy)
    err, tol = _err(dx, want_dx)
    assert err <= tol, f"fsdp_matmul: dx differs from the unsharded gradient by {err:.2e}"
    err, tol = _err(dw, want_dw)
    if err <= tol:
        return
    if _err(dw, want_dw / DEVICES)[0] <= tol:
        hint = (f"it is 1/n = 1/{DEVICES} of it: the loss adds over all B rows, so the devices' "
                "contributions add up, they are not averaged")
    elif _err(dw, _local_only(x, w, dy, DEVICES))[0] <= tol:
        hint = ("each device's shard holds only its own B/n batch rows' contribution: the gradient "
                "of W sums over all B rows, held by all the devices")
    else:
        hint = "a device's shard of the gradient is its rows of the gradient of the whole W"
    raise AssertionError(f"fsdp_matmul: the gradient of W differs from the unsharded one by {err:.2e}: {hint}")


def check_fsdp_matmul_bfloat16(m):
    x, w, dy, xs, ws = _inputs(DEVICES, 2, jnp.bfloat16)
    f, vjp = _matmul(m.fsdp_matmul, DEVICES)
    out = _run("fsdp_matmul", "the forward pass in bfloat16", f, xs, ws)
    dx, dw = _run("fsdp_matmul", "the backward pass in bfloat16", vjp, xs, ws,
                  _place(dy.astype(jnp.bfloat16), _mesh(DEVICES)))
    for name, got in (("the output", out), ("dx", dx), ("the gradient of W", dw)):
        assert got.dtype == jnp.bfloat16, \
            f"fsdp_matmul: {name} is {got.dtype} for bfloat16 inputs; return the inputs' dtype"
    # bfloat16 keeps 8 bits of mantissa: inputs and results round by 2^-9 of their size.
    want = np.asarray(jnp.asarray(x, jnp.bfloat16), np.float32) @ np.asarray(jnp.asarray(w, jnp.bfloat16), np.float32)
    err = float(np.abs(np.asarray(out, np.float32) - want).max())
    assert err <= 3e-2 * np.abs(want).max(), \
        f"fsdp_matmul: in bfloat16 x @ W differs from the unsharded product by {err:.2e}"
def check_fsdp_matmul_custom_vjp(m):
    _, _, _, xs, ws = _inputs(DEVICES)
    jaxpr = _run("fsdp_matmul", "tracing", jax.make_jaxpr(_matmul(m.fsdp_matmul, DEVICES)[0]), xs, ws).jaxpr
    assert any(p.startswith("custom_vjp_call") for p in primitives(jaxpr)), (
        "fsdp_matmul: no jax.custom_vjp: write the backward pass by hand, so that it decides "
        "what is kept between the passes and which collective makes the gradient")


def check_fsdp_matmul_forward_collectives(m):
    _, _, _, xs, ws = _inputs(DEVICES)
    f = _matmul(m.fsdp_matmul, DEVICES)[0]
    found = _run("fsdp_matmul", "compiling the forward pass", collectives.compiled_collectives, f, xs, ws)
    gathers = [c for c in found if c.kind == "all-gather"]
    assert gathers, (f"fsdp_matmul: the compiled forward pass has no all-gather ({_summary(found)}): "
                     "gather W from the devices' shards just before the matmul")
    others = [c for c in found if c.kind != "all-gather"]
    assert not others, (f"fsdp_matmul: the compiled forward pass has {_summary(found)}: the forward "
                        "pass needs one all-gather of W and nothing else")
    want = collectives.bytes_sent_per_device("all-gather", E * F * 4, DEVICES)
    sent = sum(c.bytes_sent for c in gathers)
    assert len(gathers) == 1 and sent == want, (
        f"fsdp_matmul: the compiled forward pass has {_summary(found)}, each device sending {sent:.0f} "
        f"bytes; one all-gather of the [E, F] = [{E}, {F}] float32 weight over {DEVICES} devices sends "
        f"{want:.0f} (the ring model)")


def check_fsdp_matmul_backward_collectives(m):
    _, _, dy, xs, ws = _inputs(DEVICES)
    vjp = _matmul(m.fsdp_matmul, DEVICES)[1]
    found = _run("fsdp_matmul", "compiling the backward pass", collectives.compiled_collectives,
                 vjp, xs, ws, _place(dy, _mesh(DEVICES)))
    reduces = [c for c in found if c.kind == "all-reduce"]
    assert not reduces, (f"fsdp_matmul: the compiled backward pass has {_summary(found)}: an all-reduce "
                         "of the whole gradient sends twice the bytes and leaves every device all of "
                         "it; each device needs only its rows of the sum")
    scatters = [c for c in found if c.kind == "reduce-scatter"]
    want = collectives.bytes_sent_per_device("reduce-scatter", E * F * 4, DEVICES)
    sent = sum(c.bytes_sent for c in scatters)
    assert len(scatters) == 1 and sent == want, (
        f"fsdp_matmul: the compiled backward pass has {_summary(found)}: want one reduce-scatter of the "
        f"[E, F] = [{E}, {F}] float32 gradient over {DEVICES} devices, each sending {want:.0f} bytes "
        "(the ring model)")
    others = [c for c in found if c.kind not in ("all-gather", "reduce-scatter")]
    assert not others, (f"fsdp_matmul: the compiled backward pass has {_summary(found)}: FSDP needs "
                        "all-gathers of W and one reduce-scatter of its gradient, nothing else")


def _residual_sizes(f, *args) -> list[tuple[tuple[int, ...], int]]:
    """What jax.vjp keeps between the passes: (per-device shape, per-device elements) of each array."""
    _, pullback = f(*args)
    sizes = []
    for leaf in jax.tree.leaves(pullback):
        if not hasattr(leaf, "shape"):
            continue
        shard = tuple(leaf.sharding.shard_shape(leaf.shape)) if hasattr(leaf, "sharding") else tuple(leaf.shape)
        sizes.append((shard, int(np.prod(shard))))
    return sizes


def _assert_keeps_shards(task: str, sizes, whole: int, what: str):
    kept = [shape for shape, size in sizes if size >= whole]
    assert not kept, (f"{task}: between the forward and the backward pass a device keeps an array of "
                      f"shape {list(kept[0])}, as large as a whole {what} weight: keep only the "
                      "device's shard, and gather the weight again in the backward pass")


def check_fsdp_matmul_keeps_shard(m):
    _, _, _, xs, ws = _inputs(DEVICES)
    f = _matmul(m.fsdp_matmul, DEVICES)[0]
    sizes = _run("fsdp_matmul", "jax.vjp", _residual_sizes, functools.partial(jax.vjp, f), xs, ws)
    _assert_keeps_shards("fsdp_matmul", sizes, E * F, f"[E, F] = [{E}, {F}]")


# ---- 4.7: fsdp_forward, the benchmark's FSDP stack ----

@functools.cache
def _stack():
    """The benchmark's FSDP mesh ({data: 8, model: 1}) and x, ws placed as the strategy says."""
    mesh = sharding.stack_mesh("fsdp", CPUS[:DEVICES])
    x, ws = sharding.stack_init(jax.random.key(3), STACK_B, STACK_E, STACK_L, "fsdp", mesh)
    dy = jax.random.normal(jax.random.key(4), (STACK_B, STACK_E))
    return mesh, x, ws, dy


def _unsharded_stack(x, ws):
    for w in ws:
        x = jax.nn.relu(x @ w)
    return x


@functools.cache
def _forward(fn):
    mesh = _stack()[0]
    f = jax.jit(lambda x, ws: fn(x, ws, mesh))
    return f, jax.jit(lambda x, ws, dy: jax.vjp(f, x, ws)[1](dy))


def _host(a):
    return jnp.asarray(np.asarray(a))


def check_fsdp_forward_values(m):
    mesh, x, ws, _ = _stack()
    out = _run("fsdp_forward", "the forward pass", _forward(m.fsdp_forward)[0], x, ws)
    assert out.shape == x.shape, f"fsdp_forward: returned shape {out.shape}, want [B, E] = {x.shape}"
    err, tol = _err(out, _unsharded_stack(_host(x), [_host(w) for w in ws]))
    assert err <= tol, f"fsdp_forward: the output differs from the unsharded stack's by {err:.2e}"
    assert out.sharding.is_equivalent_to(NamedSharding(mesh, ROWS), out.ndim), (
        f"fsdp_forward: the output is placed as {out.sharding}, want split by rows over "
        f"{AXIS!r} like x (PartitionSpec({AXIS!r}, None))")


def check_fsdp_forward_gradients(m):
    mesh, x, ws, dy = _stack()
    dx, dws = _run("fsdp_forward", "the backward pass (jax.vjp)", _forward(m.fsdp_forward)[1], x, ws, dy)
    want_dx, want_dws = jax.vjp(_unsharded_stack, _host(x), [_host(w) for w in ws])[1](dy)
    err, tol = _err(dx, want_dx)
    assert err <= tol, f"fsdp_forward: dx differs from the unsharded stack's by {err:.2e}"
    for l, (got, want) in enumerate(zip(dws, want_dws)):
        err, tol = _err(got, want)
        assert err <= tol, f"fsdp_forward: the gradient of W_{l} differs from the unsharded stack's by {err:.2e}"
        assert got.sharding.is_equivalent_to(NamedSharding(mesh, ROWS), got.ndim), (
            f"fsdp_forward: the gradient of W_{l} is placed as {got.sharding}, want split by rows "
            "like the weight")


def _each_run(found) -> list[tuple[str, int, int]]:
    """(kind, V in bytes, devices) of every collective each time it runs, sorted."""
    return sorted((c.kind, c.nbytes, c.group) for c in found for _ in range(c.count))


def check_fsdp_forward_collectives(m):
    mesh, x, ws, _ = _stack()
    found = _run("fsdp_forward", "compiling the forward pass", collectives.compiled_collectives,
                 _forward(m.fsdp_forward)[0], x, ws)
    want = sharding.stack_prediction("fsdp", STACK_B, STACK_E, STACK_L, mesh)
    assert _each_run(found) == _each_run(want), (
        f"fsdp_forward: the compiled forward pass has {_summary(found)}; the stack of {STACK_L} layers "
        f"needs {_summary(want)}: one all-gather per layer, of that layer's weight")


def check_fsdp_forward_backward_collectives(m):
    mesh, x, ws, dy = _stack()
    found = _run("fsdp_forward", "compiling the backward pass", collectives.compiled_collectives,
                 _forward(m.fsdp_forward)[1], x, ws, dy)
    assert not [c for c in found if c.kind == "all-reduce"], (
        f"fsdp_forward: the compiled backward pass has {_summary(found)}: no all-reduce of a whole "
        "gradient; each device needs only its rows of the sum")
    one = collectives.bytes_sent_per_device("reduce-scatter", STACK_E * STACK_E * 4, DEVICES)
    scatters = [c for c in found if c.kind == "reduce-scatter"]
    count = sum(c.count for c in scatters)
    assert count == STACK_L and sum(c.bytes_sent for c in scatters) == STACK_L * one, (
        f"fsdp_forward: the compiled backward pass has {_summary(found)}: want one reduce-scatter "
        f"per layer, {STACK_L} in all, each of a [{STACK_E}, {STACK_E}] float32 gradient")


def check_fsdp_forward_keeps_shards(m):
    _, x, ws, _ = _stack()
    f = _forward(m.fsdp_forward)[0]
    sizes = _run("fsdp_forward", "jax.vjp", _residual_sizes, functools.partial(jax.vjp, f), x, ws)
    _assert_keeps_shards("fsdp_forward", sizes, STACK_E * STACK_E, f"[E, E] = [{STACK_E}, {STACK_E}]")


# ---- 4.8: matmul_reduce_scatter, the ring for a row-split weight ----

# x [B, E] @ w [E, F], both split along E; F != E so that the two cannot be mixed up.
RS_B, RS_E, RS_F = 8, 32, 48
RS_AXIS = sharding.MODEL


@functools.cache
def _rs_mesh(n: int):
    """The benchmark's collective-matmul mesh ({data: 1, model: 8}) on 8 devices, else {model: n}."""
    if n == DEVICES:
        return sharding.stack_mesh("tp_gather", CPUS[:n])
    return sharding.make_mesh({RS_AXIS: n}, CPUS[:n])


def _rs_inputs(n: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=(RS_B, RS_E)).astype(np.float32), rng.normal(size=(RS_E, RS_F)).astype(np.float32)
    mesh = _rs_mesh(n)
    xs = jax.device_put(x, NamedSharding(mesh, P(None, RS_AXIS)))  # x[B, E_model]
    ws = jax.device_put(w, NamedSharding(mesh, P(RS_AXIS, None)))  # w[E_model, F]
    return x, w, xs, ws


@functools.cache
def _rs(fn, n: int):
    mesh = _rs_mesh(n)
    return jax.jit(lambda x, w: fn(x, w, mesh, RS_AXIS))


def check_matmul_reduce_scatter_values(m):
    for n in (2, 4, DEVICES):
        x, w, xs, ws = _rs_inputs(n)
        out = _run("matmul_reduce_scatter", f"on {n} devices", _rs(m.matmul_reduce_scatter, n), xs, ws)
        assert out.shape == (RS_B, RS_F) and out.dtype == xs.dtype, (
            f"matmul_reduce_scatter: on {n} devices returned {out.dtype}{list(out.shape)}, want x's "
            f"dtype and [B, F] = {[RS_B, RS_F]}")
        want = x @ w
        err, tol = _err(out, want)
        if err > tol:
            width = RS_F // n
            got_blocks = np.split(np.asarray(out), n, axis=1)  # device i's columns
            want_blocks = np.split(want, n, axis=1)
            moved = all(any(_err(g, wb)[0] <= tol for wb in want_blocks) for g in got_blocks)
            hint = ("every device holds a whole column block of the sum, but not its own: the sums "
                    "end on the wrong devices" if moved else
                    "the devices' columns are not the sums over all devices of x's columns times w's rows")
            raise AssertionError(f"matmul_reduce_scatter: on {n} devices x @ w differs from the unsharded "
                                 f"product by {err:.2e}: {hint} (device i must end with column block i "
                                 f"of the sum, columns i F/n to (i + 1) F/n - 1, F/n = {width})")
        assert out.sharding.is_equivalent_to(NamedSharding(_rs_mesh(n), P(None, RS_AXIS)), 2), (
            f"matmul_reduce_scatter: the output is placed as {out.sharding}, want split by columns "
            f"over {RS_AXIS!r} (PartitionSpec(None, {RS_AXIS!r}))")


def check_matmul_reduce_scatter_collectives(m):
    n = DEVICES
    _, _, xs, ws = _rs_inputs(n)
    found = _run("matmul_reduce_scatter", "compiling", collectives.compiled_collectives,
                 _rs(m.matmul_reduce_scatter, n), xs, ws)
    kinds = sorted(c.kind for c in found for _ in range(c.count))
    assert kinds == ["collective-permute"] * (n - 1), (
        f"matmul_reduce_scatter: the compiled program has {_summary(found) if found else 'no collectives'}: "
        f"want {n - 1} collective-permutes (a ring of n - 1 ppermutes) and no other collective")
    sent = sum(c.bytes_sent for c in found)
    want = collectives.bytes_sent_per_device("reduce-scatter", RS_B * RS_F * 4, n)
    assert sent == want, (
        f"matmul_reduce_scatter: each device sends {sent:.0f} bytes ({_summary(found)}); a reduce-scatter "
        f"of the [B, F] = [{RS_B}, {RS_F}] float32 partial sums sends {want:.0f} (the ring model): "
        "what travels is one [B, F/n] block of partial sums per step")


# ---- the tests: your answers (or the solution's, with --solutions) through every check ----

def test_fsdp_matmul_values(answers):
    check_fsdp_matmul_values(check_imports(answers))


def test_fsdp_matmul_gradients(answers):
    check_fsdp_matmul_gradients(check_imports(answers))


def test_fsdp_matmul_bfloat16(answers):
    check_fsdp_matmul_bfloat16(check_imports(answers))


def test_fsdp_matmul_custom_vjp(answers):
    check_fsdp_matmul_custom_vjp(check_imports(answers))


def test_fsdp_matmul_forward_collectives(answers):
    check_fsdp_matmul_forward_collectives(check_imports(answers))


def test_fsdp_matmul_backward_collectives(answers):
    check_fsdp_matmul_backward_collectives(check_imports(answers))


def test_fsdp_matmul_keeps_shard(answers):
    check_fsdp_matmul_keeps_shard(check_imports(answers))


def test_fsdp_forward_values(answers):
    check_fsdp_forward_values(check_imports(answers))


def test_fsdp_forward_gradients(answers):
    check_fsdp_forward_gradients(check_imports(answers))


def test_fsdp_forward_collectives(answers):
    check_fsdp_forward_collectives(check_imports(answers))


def test_fsdp_forward_backward_collectives(answers):
    check_fsdp_forward_backward_collectives(check_imports(answers))


def test_fsdp_forward_keeps_shards(answers):
    check_fsdp_forward_keeps_shards(check_imports(answers))


def test_matmul_reduce_scatter_values(answers):
    check_matmul_reduce_scatter_values(check_imports(answers))


def test_matmul_reduce_scatter_collectives(answers):
    check_matmul_reduce_scatter_collectives(check_imports(answers))
