"""Checks for the build exercise 1.8-1.10 (build_model.py): the course's model, written by you.

The oracle is the course core, shared.model with ModelConfig's defaults (its reference
attention, autodiff's MLP), run on the same parameters. The properties (causality,
segments, relative positions, attention weights that sum to one, losses that add up) say
which mistake a difference is.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong builds (tests/wrong/) and proves each is rejected by the check
about its mistake; the test_* functions at the bottom are thin wrappers over them.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from shared import model as core
from shared import params as table
from shared.config import ModelConfig
from shared.course import imports

MHA = ModelConfig(vocab_size=64, seq_len=16, d_model=32, n_layers=2, n_heads=4, d_ff=64)
GQA = dataclasses.replace(MHA, n_kv_heads=2)  # G = 2 query heads per key/value head
BF16 = dataclasses.replace(GQA, dtype="bfloat16")
STATS = ModelConfig(vocab_size=256, seq_len=16, d_model=64, n_layers=2, n_heads=4, d_ff=128)
BATCH = 2
# float32: the same sums in another order differ by ~1e-6 of the largest logit; 1e-5 leaves room.
F32_TOL = 1e-5


# ---- the answer is not one import away ----

# The course's modules an answer may not import, and why; anything but ALLOWED is not
# allowed either.
NOT_ALLOWED = {
    "shared.model": "this exercise writes the model, so the core's model is not allowed here",
    "shared.attention": "this exercise writes attention, so the core's attention is not allowed here",
    "shared.params": "init writes the parameter tree, so the core's table of it is not allowed here",
    "shared.backward": "it holds the core's MLP and attention, which this exercise writes",
    "shared.sampling": "it runs the core's model, which this exercise writes",
    "shared.train": "it runs the core's model, which this exercise writes",
    "shared.inference": "it runs the core's model, which this exercise writes",
}
ALLOWED = ("jax", "jaxlib", "numpy", "stdlib", "shared.config")


def check_imports(m):
    """Fails on the first module the answer's file imports (or reaches) that it may not; returns m."""
    return imports.check(m, ALLOWED, NOT_ALLOWED)


# ---- inputs, and the core's answers on them ----

def _tokens(seed: int, config: ModelConfig = MHA) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.integers(0, config.vocab_size, (BATCH, config.seq_len)), jnp.int32)


def _packed(config: ModelConfig = MHA) -> tuple[jax.Array, jax.Array]:
    """positions and segment_ids [2, S] of documents packed into rows: 5 + 7 + 4 and 9 + 7 tokens."""
    rows = [(5, 7, config.seq_len - 12), (9, config.seq_len - 9)]
    positions = [np.concatenate([np.arange(n) for n in row]) for row in rows]
    segments = [np.concatenate([np.full(n, i) for i, n in enumerate(row)]) for row in rows]
    return jnp.asarray(np.stack(positions), jnp.int32), jnp.asarray(np.stack(segments), jnp.int32)


@functools.cache
def _params(config: ModelConfig) -> dict:
    """The core's init, rescaled so that every part of the model shows in the logits.

    At GPT-2's init (std 0.02) attention is nearly uniform and the blocks barely move the
    residual stream, so a missing scale or mask would change the logits by little. Here
    the embedding has unit entries, each block adds O(1) to the residual stream, scores
    q.k/sqrt(D) are a few units (attention neither uniform nor one-hot), and the norm
    scales are not all one.
    """
    p = core.init(config, jax.random.key(0))
    E, F = config.d_model, config.d_ff
    std = {"embed": 1.0, "wq": 1.3 * E ** -0.5, "wk": 1.3 * E ** -0.5, "wv": E ** -0.5,
           "wo": E ** -0.5, "w_up": E ** -0.5, "w_down": F ** -0.5, "unembed": E ** -0.5}
    keys = iter(jax.random.split(jax.random.key(1), 3))

    def rescale(name, w):
        if name in std:
            return w * (std[name] / jnp.std(w))
        return 1.0 + 0.2 * jax.random.normal(next(keys), w.shape)  # a norm's scale

    blocks = {name: rescale(name, w) for name, w in p["blocks"].items()}
    return {name: blocks if name == "blocks" else rescale(name, w) for name, w in p.items()}


_core_forward = jax.jit(core.forward, static_argnums=2)
_core_loss_sums = jax.jit(core.loss_sums, static_argnums=2)
_core_loss_and_grad = jax.jit(jax.value_and_grad(core.loss_sums, has_aux=True), static_argnums=2)


@functools.cache
def _core_logits(config: ModelConfig, seed: int, packed: bool = False) -> np.ndarray:
    positions, segment_ids = _packed(config) if packed else (None, None)
    return np.asarray(_core_forward(_params(config), _tokens(seed, config), config,
                                    positions=positions, segment_ids=segment_ids))


def _batch(config: ModelConfig, seed: int, weighted: bool) -> dict:
    """inputs, targets, and for `weighted` packed positions, segment_ids and weights in {0, 0.5, 1}."""
    rng = np.random.default_rng(seed + 100)
    batch = {"inputs": _tokens(seed, config), "targets": _tokens(seed + 1, config)}
    if weighted:
        batch["positions"], batch["segment_ids"] = _packed(config)
        batch["weights"] = jnp.asarray(rng.choice([0.0, 0.5, 1.0], batch["inputs"].shape), jnp.float32)
    return batch


@functools.cache
def _jitted(fn, grad: bool = False):
    return jax.jit(jax.value_and_grad(fn, has_aux=True) if grad else fn, static_argnums=2)


def _call(fn, *args, grad: bool = False, **kw):
    """fn(*args, **kw), or its value_and_grad, under jax.jit: compiled once per shape, then fast.

    When that fails, fn runs eagerly, so that an error reads as your code raised it (a
    failure under jit alone is test_forward_jit's and test_loss_sums_jit's to report).
    """
    try:
        return _jitted(fn, grad)(*args, **kw)
    except Exception:  # noqa: BLE001: run it again below, outside this block (no chained traceback)
        pass
    return (jax.value_and_grad(fn, has_aux=True) if grad else fn)(*args, **kw)


def _logits(m, params, tokens, config, **kw) -> np.ndarray:
    """m.forward's logits, checked for shape, dtype and finiteness."""
    out = _call(m.forward, params, tokens, config, **kw)
    want = (*tokens.shape, config.vocab_size)
    assert getattr(out, "shape", None) == want, \
        f"forward: returned shape {getattr(out, 'shape', type(out).__name__)}, want [B, S, V] = {want}"
    assert out.dtype == jnp.float32, f"forward: logits are {out.dtype}; return them in float32"
    out = np.asarray(out)
    assert np.isfinite(out).all(), f"forward: {np.sum(~np.isfinite(out))} logits are NaN or infinite"
    return out


def _by_position(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max |a - b| at each position: [B, S, V] -> [S]."""
    return np.abs(a - b).max(axis=(0, 2))


def _tol(want: np.ndarray, rel: float = F32_TOL) -> float:
    return rel * max(1.0, float(np.abs(want).max()))


# ---- init (exercise 1.8) ----

def _paths(tree) -> dict:
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {"/".join(str(getattr(k, "key", k)) for k in path): leaf for path, leaf in leaves}


def check_init_structure(m):
    for config in (MHA, GQA):
        got = m.init(config, jax.random.key(0))
        assert isinstance(got, dict), \
            f"init: returned a {type(got).__name__}, want a dict (the parameter tree)"
        shapes = jax.eval_shape(functools.partial(core.init, config), jax.random.key(0))
        got, want = _paths(got), _paths(shapes)
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        assert not missing and not extra, (
            f"init: the tree lacks {', '.join(missing) or 'nothing'} and has "
            f"{', '.join(extra) or 'nothing'} that the course's has not: names and nesting as the "
            "module docstring lays them out")
        letters = {"/".join(path): ("L" if stacked else "") + w.shape
                   for path, w, stacked in table.rows()}
        for name, leaf in got.items():
            shape = tuple(getattr(leaf, "shape", ()))
            assert shape == want[name].shape, (
                f"init: {name} has shape {shape} with n_heads={config.n_heads}, "
                f"n_kv_heads={config.kv_heads}; want [{', '.join(letters[name])}] = {want[name].shape}")
            assert getattr(leaf, "dtype", None) == jnp.float32, \
                f"init: {name} is {getattr(leaf, 'dtype', type(leaf).__name__)}; parameters are float32"


def check_init_statistics(m):
    c = STATS
    tree = _paths(m.init(c, jax.random.key(0)))
    normal = {}
    for path, w, stacked in table.rows():
        name = "/".join(path)
        assert name in tree, f"init: the tree has no {name} (test_init_structure says more)"
        a = np.asarray(tree[name], np.float64)
        if w.init == "ones":
            assert (a == 1).all(), \
                f"init: {name} (a norm's scale) should start at one; its mean is {a.mean():.3g}"
            continue
        want = w.std(c)
        rule = "0.02 / sqrt(2 L): it adds into the residual stream" if w.init == "residual" else "0.02"
        assert abs(a.std() / want - 1) < 0.1, (
            f"init: {name} has standard deviation {a.std():.4f}, want {want:.4f} ({rule}; L = {c.n_layers})")
        assert abs(a.mean()) < 6 * want / np.sqrt(a.size), f"init: {name} has mean {a.mean():.2e}, want 0"
        within = np.mean(np.abs(a) < want)  # 68.3% for a normal distribution, 57.7% for a uniform one
        assert abs(within - 0.683) < 0.03, (
            f"init: {name} is not normally distributed: {within:.1%} of it lies within one standard "
            "deviation of 0, want 68.3%")
        if stacked:
            corr = np.corrcoef(a[0].ravel(), a[1].ravel())[0, 1]
            assert abs(corr) < 0.1, (f"init: layers 0 and 1 of {name} are the same draw (correlation "
                                     f"{corr:.2f}): every layer needs its own random numbers")
        normal[name] = a.ravel()
    for i, (x, a) in enumerate(normal.items()):
        for y, b in list(normal.items())[i + 1:]:
            n = min(a.size, b.size)
            corr = np.corrcoef(a[:n], b[:n])[0, 1]
            assert abs(corr) < 0.1, (f"init: {x} and {y} are the same draw (correlation {corr:.2f}): "
                                     "split the key, one per weight")
    again = _paths(m.init(c, jax.random.key(0)))
    other = _paths(m.init(c, jax.random.key(1)))
    for name in tree:
        assert np.array_equal(tree[name], again[name]), \
            f"init: {name} differs between two calls with the same key"
    assert not np.array_equal(tree["blocks/wq"], other["blocks/wq"]), \
        "init: blocks/wq is the same for keys 0 and 1: draw from the key you are given"


# ---- forward (exercise 1.9) ----

def check_forward_matches_core(m):
    want = _core_logits(MHA, 1)
    got = _logits(m, _params(MHA), _tokens(1), MHA)
    err, tol = _by_position(got, want), _tol(want)
    if err.max() <= tol:
        return
    first = int(np.argmax(err > tol))
    if first == 0:
        where = ("already at position 0, where attention reads only the token itself: look at the "
                 "embedding, norms, projections, MLP, unembedding (and whether attention weights sum to 1)")
    else:
        where = (f"from position {first} on, while position 0 (which reads only itself) matches: look at "
                 "how attention mixes positions (RoPE, scale, mask, softmax)")
    raise AssertionError(f"forward: logits differ from the course model's by up to {err.max():.2e} "
                         f"(> {tol:.1e}, float32 rounding) {where}")


def _scaled_q(params: dict, factor: float) -> dict:
    return {**params, "blocks": {**params["blocks"], "wq": params["blocks"]["wq"] * factor}}


def check_forward_scale(m):
    params, tokens, want = _params(MHA), _tokens(1), _core_logits(MHA, 1)
    tol = _tol(want)
    err = _by_position(_logits(m, params, tokens, MHA), want).max()
    if err <= tol:
        return
    D = MHA.head_dim
    # Scaling wq scales every score by the same factor (RoPE and the projection are linear).
    root = f"sqrt(D) = {D ** 0.5:.2f}"
    for factor, what in ((D ** -0.5, f"{root} times too large: the 1/sqrt(D) scale is missing"),
                         (D ** 0.5, f"{root} times too small: divided by D (1/sqrt(D) twice)"),
                         (1 / D, f"D = {D} times too large: multiplied by sqrt(D), not by 1/sqrt(D)")):
        if _by_position(_logits(m, _scaled_q(params, factor), tokens, MHA), want).max() <= tol:
            raise AssertionError(f"forward: the attention scores are {what}")
    raise AssertionError(f"forward: logits differ from the course model's by {err:.2e}, and not by the "
                         "scale of the scores alone (test_forward_matches_core says where)")


def check_forward_gqa(m):
    want = _core_logits(GQA, 2)
    err, tol = _by_position(_logits(m, _params(GQA), _tokens(2, GQA), GQA), want).max(), _tol(want)
    if err <= tol:
        return
    mha = _core_logits(MHA, 2)
    mha_ok = _by_position(_logits(m, _params(MHA), _tokens(2), MHA), mha).max() <= _tol(mha)
    why = ("while they match with n_kv_heads = n_heads: check which key/value head each query head reads"
           if mha_ok else "(and without grouped-query attention too: test_forward_matches_core first)")
    raise AssertionError(f"forward: with n_kv_heads={GQA.kv_heads} < n_heads={GQA.n_heads} logits differ "
                         f"from the course model's by {err:.2e} (> {tol:.1e}) {why}")


def _dot_dtypes(jaxpr) -> set[str]:
    """dtypes of every matmul's inputs in a jaxpr and the jaxprs inside it (scan, jit, ...)."""
    found = set()
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found |= {str(v.aval.dtype) for v in eqn.invars}
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    found |= _dot_dtypes(sub)
    return found


def check_forward_bfloat16(m):
    params, tokens = _params(BF16), _tokens(3, BF16)
    want = _core_logits(BF16, 3)
    got = _logits(m, params, tokens, BF16)
    jaxpr = jax.make_jaxpr(m.forward, static_argnums=2)(params, tokens, BF16)
    assert "bfloat16" in _dot_dtypes(jaxpr.jaxpr), (
        "forward: with dtype='bfloat16' no matmul takes bfloat16 inputs: cast the weights (and so the "
        "activations) to config.dtype")
    # bfloat16 keeps 8 bits of mantissa (a relative step of 2^-8 = 0.4%), and every cast back to it
    # after a float32 sum rounds; two correct models that round at slightly different places (the
    # core keeps final_norm's scale in float32, and sums in another order) differ by a few of those
    # steps of the largest logit after two layers. A wrong model differs by O(1).
    err, tol = _by_position(got, want).max(), _tol(want, 3e-2)
    assert err <= tol, (f"forward: with dtype='bfloat16' logits differ from the course model's by "
                        f"{err:.2e} (> {tol:.1e}, a few bfloat16 roundings): compute in config.dtype as the "
                        "docstring says")


def check_forward_packed(m):
    positions, segment_ids = _packed()
    params, tokens = _params(MHA), _tokens(1)
    want = _core_logits(MHA, 1, packed=True)
    got = _logits(m, params, tokens, MHA, positions=positions, segment_ids=segment_ids)
    err, tol = _by_position(got, want), _tol(want)
    if err.max() <= tol:
        return
    plain = _logits(m, params, tokens, MHA)
    assert not np.allclose(got, plain), ("forward: giving positions and segment_ids changed nothing: "
                                         "pass them on to the rotary positions and the mask")
    raise AssertionError(
        f"forward: with documents packed into rows (positions and segment_ids given) logits differ from "
        f"the course model's by up to {err.max():.2e} from position {int(np.argmax(err > tol))} on: each "
        "document reads only itself, at its own positions")


def check_forward_causal(m):
    params, tokens, t = _params(MHA), _tokens(4), 6
    later = np.asarray(tokens).copy()
    later[:, t + 1:] = (later[:, t + 1:] + 1 + np.arange(MHA.seq_len - t - 1)) % MHA.vocab_size
    a = _logits(m, params, tokens, MHA)
    b = _logits(m, params, jnp.asarray(later), MHA)
    before = _by_position(a[:, :t + 1], b[:, :t + 1])
    tol = _tol(a, 1e-6)
    assert before.max() <= tol, (
        f"forward: logits at position {int(np.argmax(before > tol))} changed by {before.max():.2e} when only "
        f"tokens after position {t} changed: position s may read only positions up to s (the causal mask "
        "is missing or wrong)")
    assert _by_position(a[:, t + 1:], b[:, t + 1:]).max() > 1e-3, \
        f"forward: logits after position {t} did not change when their tokens did"


def check_forward_segments(m):
    params, tokens, half = _params(MHA), _tokens(5), MHA.seq_len // 2
    positions = jnp.tile(jnp.arange(half), (BATCH, 2))  # two documents per row
    segment_ids = jnp.repeat(jnp.arange(2), half)[None].repeat(BATCH, axis=0)
    first = np.asarray(tokens).copy()
    first[:, :half] = (first[:, :half] + 1 + np.arange(half)) % MHA.vocab_size
    a = _logits(m, params, tokens, MHA, positions=positions, segment_ids=segment_ids)
    b = _logits(m, params, jnp.asarray(first), MHA, positions=positions, segment_ids=segment_ids)
    second = _by_position(a[:, half:], b[:, half:])
    tol = _tol(a, 1e-6)
    assert second.max() <= tol, (
        f"forward: logits of a row's second document changed by {second.max():.2e} when only the first "
        "document's tokens changed: a token may read only its own segment (segment_ids)")
    assert _by_position(a[:, :half], b[:, :half]).max() > 1e-3, \
        "forward: logits of a row's first document did not change when its tokens did"


def check_forward_weights_sum_to_one(m):
    params = _params(MHA)
    tokens = jnp.full((BATCH, MHA.seq_len), 7, jnp.int32)  # the same token everywhere
    got = _logits(m, params, tokens, MHA)
    # Every value vector is then the same, so any weights that sum to 1 over the keys give the
    # same attention output at every position, and so the same logits.
    spread = np.abs(got - got[:, :1]).max()
    tol = _tol(got, 1e-4)
    assert spread <= tol, (
        f"forward: with the same token at every position (so every value vector is the same) logits still "
        f"differ between positions by {spread:.2e}: each query's attention weights must sum to 1 over the "
        "keys (check the softmax's axis), and values carry no position")


def check_forward_relative_positions(m):
    params, tokens, shift = _params(MHA), _tokens(6), 5
    a = _logits(m, params, tokens, MHA)
    positions = jnp.broadcast_to(jnp.arange(MHA.seq_len) + shift, tokens.shape)
    b = _logits(m, params, tokens, MHA, positions=positions)
    err, tol = np.abs(a - b).max(), _tol(a, 1e-4)  # float32 sin and cos of larger angles
    assert err <= tol, (
        f"forward: adding {shift} to every position changed the logits by {err:.2e}: with rotary positions "
        "attention may depend only on the distance between a query's and a key's positions (rotate "
        "queries and keys alike, and nothing else)")


def _jit_error(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:200]


def check_forward_jit(m):
    params, tokens = _params(MHA), _tokens(1)
    positions, segment_ids = _packed()
    eager = np.asarray(m.forward(params, tokens, MHA, positions=positions, segment_ids=segment_ids))
    try:
        jitted = np.asarray(jax.jit(m.forward, static_argnums=2)(
            params, tokens, MHA, positions=positions, segment_ids=segment_ids))
    except Exception as e:  # noqa: BLE001: any failure under jit is the learner's to see, in one line
        raise AssertionError(f"forward: runs eagerly but fails under jax.jit(forward, static_argnums=2): "
                             f"{_jit_error(e)}") from None
    err, tol = np.abs(jitted - eager).max(), _tol(eager)
    assert err <= tol, f"forward: logits under jax.jit differ from eager ones by {err:.2e} (> {tol:.1e})"


# ---- loss_sums (exercise 1.10) ----

def _sums(m, params, batch, config) -> tuple[float, float]:
    return _pair(_call(m.loss_sums, params, batch, config))


def _pair(out) -> tuple[float, float]:
    """(total, count) of what loss_sums returned, checked to be a pair of scalars."""
    assert isinstance(out, tuple) and len(out) == 2, \
        f"loss_sums: returned {type(out).__name__}, want a 2-tuple (total, count)"
    for name, x in zip(("total", "count"), out):
        shape = getattr(x, "shape", None)
        assert shape == (), f"loss_sums: {name} has shape {shape}; want a scalar, summed over the batch"
    return float(out[0]), float(out[1])


def check_loss_sums_matches_core(m):
    for weighted, which in ((False, "without weights"), (True, "with packed documents and weights")):
        config, batch = GQA, _batch(GQA, 7, weighted)
        params = _params(config)
        want, want_count = _core_loss_sums(params, batch, config)
        want, want_count = float(want), float(want_count)
        total, count = _sums(m, params, batch, config)
        what = "the sum of the weights" if weighted else "the number of positions B * S"
        assert abs(count - want_count) <= 1e-6 * want_count, \
            f"loss_sums: count is {count:g} {which}; want {what} = {want_count:g}"
        rel = abs(total - want) / abs(want)
        if rel > 1e-5:
            mean = want / want_count
            hint = (": it is a mean; return the sum" if abs(total - mean) <= 1e-4 * abs(mean)
                    else ": total is the sum over positions of weight * -log softmax(logits)[target]")
            raise AssertionError(f"loss_sums: total {total:.6g} {which} differs from the course model's "
                                 f"{want:.6g} (relative {rel:.1e} > 1e-5){hint}")


def check_loss_sums_adds_up(m):
    config, batch = GQA, _batch(GQA, 8, weighted=True)
    params = _params(config)
    total, count = _sums(m, params, batch, config)
    halves = [_sums(m, params, {k: v[i:i + 1] for k, v in batch.items()}, config) for i in range(BATCH)]
    parts = sum(t for t, _ in halves)
    assert abs(parts - total) <= 1e-5 * abs(total), (
        f"loss_sums: the totals of a batch's two halves add up to {parts:.6g}, not to the whole batch's "
        f"{total:.6g}: return the sum over positions, not a mean (so that micro-batches add up)")
    counts = sum(c for _, c in halves)
    assert abs(counts - count) <= 1e-6 * count, (
        f"loss_sums: the counts of a batch's two halves add up to {counts:g}, not to the whole batch's "
        f"{count:g}")


def check_loss_sums_grad(m):
    config, batch = GQA, _batch(GQA, 9, weighted=True)
    params = _params(config)
    _sums(m, params, batch, config)
    (_, _), grads = _call(m.loss_sums, params, batch, config, grad=True)
    _, want = _core_loss_and_grad(params, batch, config)
    got, want = _paths(grads), _paths(want)
    for name, w in want.items():
        g, w = np.asarray(got[name]), np.asarray(w)
        err, size = np.abs(g - w).max(), np.abs(w).max()
        assert err <= 1e-4 * size, (
            f"loss_sums: the gradient of total for {name} differs from the course model's by {err:.2e} "
            f"(relative {err / size:.1e} > 1e-4): is something in the way of autodiff (stop_gradient, "
            "integer or numpy steps)?")


def check_loss_sums_jit(m):
    config, batch = GQA, _batch(GQA, 10, weighted=True)
    params = _params(config)
    eager = _pair(m.loss_sums(params, batch, config))
    try:
        out = jax.jit(m.loss_sums, static_argnums=2)(params, batch, config)
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"loss_sums: runs eagerly but fails under jax.jit(loss_sums, static_argnums=2): "
                             f"{_jit_error(e)}") from None
    jitted = (float(out[0]), float(out[1]))
    assert np.allclose(jitted, eager, rtol=1e-5), f"loss_sums: under jax.jit gives {jitted}, eagerly {eager}"


# ---- the tests: your answers (or the solution's, with --solutions) through every check ----

def test_init_structure(answers):
    check_init_structure(check_imports(answers))


def test_init_statistics(answers):
    check_init_statistics(check_imports(answers))


def test_forward_matches_core(answers):
    check_forward_matches_core(check_imports(answers))


def test_forward_scale(answers):
    check_forward_scale(check_imports(answers))


def test_forward_gqa(answers):
    check_forward_gqa(check_imports(answers))


def test_forward_bfloat16(answers):
    check_forward_bfloat16(check_imports(answers))


def test_forward_packed(answers):
    check_forward_packed(check_imports(answers))


def test_forward_causal(answers):
    check_forward_causal(check_imports(answers))


def test_forward_segments(answers):
    check_forward_segments(check_imports(answers))


def test_forward_weights_sum_to_one(answers):
    check_forward_weights_sum_to_one(check_imports(answers))


def test_forward_relative_positions(answers):
    check_forward_relative_positions(check_imports(answers))


def test_forward_jit(answers):
    check_forward_jit(check_imports(answers))


def test_loss_sums_matches_core(answers):
    check_loss_sums_matches_core(check_imports(answers))


def test_loss_sums_adds_up(answers):
    check_loss_sums_adds_up(check_imports(answers))


def test_loss_sums_grad(answers):
    check_loss_sums_grad(check_imports(answers))


def test_loss_sums_jit(answers):
    check_loss_sums_jit(check_imports(answers))
