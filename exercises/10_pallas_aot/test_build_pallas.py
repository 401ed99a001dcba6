"""Checks for the build exercise 10.7 (build_pallas.py): flash attention's forward kernel.

The oracles are the course core's readable attention, shared.attention.reference, and each
query's log-sum-exp computed directly from the scores in float64. Properties say which
mistake a difference is: outputs that do not move when keys they may not read move
(causality, documents), a probe of which key/value head each query head reads, one key tile
against several (the online softmax's rescale), the log-sum-exp against the scores' maxima.
The jaxpr shows that it is a kernel: one pallas_call, one program per (batch row, head, query
block), no [S, T] array outside it and no row of scores inside it. Two checks are the
drop-in: the core's blockwise backward pass, fed this kernel's (out, lse), gives the
reference's gradients; and the kernel lowers for a GPU through Triton (from this CPU).

Interpret mode runs every program as ordinary JAX ops, so the shapes are tiny (S = T = 64,
D = 16, blocks of 32) and each compiled kernel is kept (functools.cache).

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong builds (tests/wrong/build_pallas_*.py) and proves each is rejected
by the check about its mistake; the test_* functions at the bottom are thin wrappers over them.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from shared import attention as core
from shared.course import imports
from shared.course.jaxprs import sub_jaxprs

# The tests' blocks: 32, so that every length below is crossed by two or more of them.
BLOCK = 32
# Shapes (B, S, T, H, K, D): multi-head; grouped-query; multi-query with the S = 32 queries
# the last of T = 64 positions.
CASES = {
    "MHA": (2, 64, 64, 2, 2, 16),
    "GQA": (1, 64, 64, 4, 2, 16),
    "MQA": (1, 32, 64, 4, 1, 16),
}
# float32: the same sums in another order (tiles, a running max) differ by ~1e-7 of the
# largest value; 1e-5 leaves room. Gradients sum over more terms: 1e-4 of the largest entry.
F32_TOL, GRAD_TOL = 1e-5, 1e-4
# (case, causal) pairs the output and the log-sum-exp are compared on (MHA's causal runs are
# check_segments').
RUNS = (("MHA", False), ("GQA", True), ("GQA", False), ("MQA", True), ("MQA", False))
TASK = "flash_forward"


# ---- the answer is not one import away ----

ALLOWED = ("jax", "jaxlib", "numpy", "functools", "math", "typing", "shared.config", "shared.kernels")
NOT_ALLOWED = {
    "shared.flash_pallas": "it holds the core's flash-attention kernel, which this exercise writes",
    "shared.attention": "it holds the core's attention (the blockwise schedule and its masks), "
                        "which this kernel writes",
    "shared.backward": "it holds the core's attention with a hand-written backward; this exercise "
                       "writes attention's forward kernel",
    "shared.model": "it calls the core's attention, which this exercise writes",
}


def check_imports(m):
    """Fails on the first module the answer's file imports that it may not; returns m."""
    return imports.check(m, ALLOWED, NOT_ALLOWED)


# ---- inputs, running the answer, and the oracles on the same inputs ----

def _qkv(case: str, seed: int = 0, dtype=jnp.float32):
    B, S, T, H, K, D = CASES[case]
    kq, kk, kv = jax.random.split(jax.random.key(seed), 3)
    q = jax.random.normal(kq, (B, S, H, D), jnp.float32)
    k = jax.random.normal(kk, (B, T, K, D), jnp.float32)
    v = jax.random.normal(kv, (B, T, K, D), jnp.float32)
    return q.astype(dtype), k.astype(dtype), v.astype(dtype)


def _documents(B: int, T: int) -> jax.Array:
    """segment_ids [B, T]: documents of 20, 25 and T - 45 tokens, or 37 and T - 37; their
    boundaries fall inside the blocks of 32, not on their edges."""
    rows = [(20, 25, T - 45), (37, T - 37)] * B
    return jnp.asarray(np.stack([np.repeat(np.arange(len(r)), r) for r in rows[:B]]), jnp.int32)


@functools.cache
def _jitted(fn, causal: bool, scale, block_q: int, block_k: int):
    return jax.jit(lambda q, k, v, seg: fn(q, k, v, causal=causal, segment_ids=seg, scale=scale,
                                           block_q=block_q, block_k=block_k))


def _run(m, q, k, v, *, causal=True, segment_ids=None, scale=None, block_q=BLOCK, block_k=BLOCK):
    """m.flash_forward under jax.jit (compiled once per shape), checked for shapes, dtypes and
    finiteness; returns (out, lse) as float32 numpy arrays. When jit fails it runs eagerly, so
    that an error reads as your code raised it (a failure under jit alone is check_jit's)."""
    try:
        got = _jitted(m.flash_forward, causal, scale, block_q, block_k)(q, k, v, segment_ids)
    except Exception:  # noqa: BLE001: run it again below, outside this block (no chained traceback)
        got = None
    if got is None:
        got = m.flash_forward(q, k, v, causal=causal, segment_ids=segment_ids, scale=scale,
                              block_q=block_q, block_k=block_k)
    assert isinstance(got, (tuple, list)) and len(got) == 2, \
        f"{TASK}: returned {type(got).__name__}, want the pair (out, lse)"
    out, lse = got
    B, S, H, _ = q.shape
    assert getattr(out, "shape", None) == q.shape, \
        f"{TASK}: out has shape {getattr(out, 'shape', type(out).__name__)}, want q's [B, S, H, D] = {q.shape}"
    assert out.dtype == q.dtype, f"{TASK}: out is {out.dtype} for {q.dtype} inputs; return q's dtype"
    assert getattr(lse, "shape", None) == (B, H, S), \
        f"{TASK}: lse has shape {getattr(lse, 'shape', type(lse).__name__)}, want [B, H, S] = {(B, H, S)}"
    assert lse.dtype == jnp.float32, f"{TASK}: lse is {lse.dtype}, want float32"
    out, lse = np.asarray(out.astype(jnp.float32)), np.asarray(lse)
    bad = np.sum(~np.isfinite(out)) + np.sum(~np.isfinite(lse))
    assert not bad, f"{TASK}: {bad} values of out and lse are NaN or infinite"
    return out, lse


_reference = jax.jit(core.reference, static_argnames=("causal", "scale"))


def _want(q, k, v, *, causal=True, segment_ids=None, scale=None) -> np.ndarray:
    out = _reference(q, k, v, causal=causal, segment_ids=segment_ids, scale=scale)
    return np.asarray(out.astype(jnp.float32))


def _scores(q, k, *, causal=True, segment_ids=None, scale=None) -> np.ndarray:
    """Scaled scores [B, H, S, T] in float64, -inf where a query may not read a key."""
    B, S, H, D = q.shape
    T, K = k.shape[1], k.shape[2]
    scale = D ** -0.5 if scale is None else scale
    kh = np.repeat(np.asarray(k, np.float64), H // K, axis=2)  # [B, T, H, D]: head h reads h // G
    s = np.einsum("bshd,bthd->bhst", np.asarray(q, np.float64), kh) * scale
    allowed = np.ones((B, 1, S, T), bool)
    if causal:
        allowed &= np.arange(T)[None, :] <= np.arange(T - S, T)[:, None]
    if segment_ids is not None:
        seg = np.asarray(segment_ids)
        allowed &= (seg[:, T - S:, None] == seg[:, None, :])[:, None]
    return np.where(allowed, s, -np.inf)


def _want_lse(q, k, **kw) -> np.ndarray:
    """log sum_t exp(score) over the allowed keys, [B, H, S], float64."""
    s = _scores(q, k, **kw)
    top = s.max(axis=-1)
    return top + np.log(np.exp(s - top[..., None]).sum(axis=-1))


def _err(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """max |got - want|, and the float32 tolerance for it."""
    return float(np.abs(got - want).max()), F32_TOL * max(1.0, float(np.abs(want).max()))


def _describe(case: str, **kw) -> str:
    B, S, T, H, K, D = CASES[case]
    flags = ", ".join(f"{k}={v}" for k, v in kw.items())
    return f"{case} (B={B} S={S} T={T} H={H} K={K} D={D}{', ' + flags if flags else ''})"


# ---- values: the output and the log-sum-exp ----

def check_output(m):
    for case, causal in RUNS:
        q, k, v = _qkv(case)
        err, tol = _err(_run(m, q, k, v, causal=causal)[0], _want(q, k, v, causal=causal))
        assert err <= tol, (f"{TASK}: {_describe(case, causal=causal)}: out differs from "
                            f"shared.attention.reference's by {err:.2e} (> {tol:.0e})")


def check_logsumexp(m):
    for case, causal in RUNS:
        q, k, v = _qkv(case)
        got, want = _run(m, q, k, v, causal=causal)[1], _want_lse(q, k, causal=causal)
        err, tol = _err(got, want)
        if err <= tol:
            continue
        top = _scores(q, k, causal=causal).max(axis=-1)  # each query's largest allowed score
        hint = ("it is short by each query's largest score: the running sum is taken against the "
                "running max, so its log is not yet the scores' log-sum-exp"
                if _err(got, want - top)[0] <= tol else
                "lse[b, h, s] is the log of the sum, over the keys query s of head h may read, "
                "of exp(its scaled score)")
        raise AssertionError(f"{TASK}: {_describe(case, causal=causal)}: lse differs from each "
                             f"query's log-sum-exp of its scores by {err:.2e}: {hint}")


def check_scale(m):
    q, k, v = _qkv("MHA", 1)
    out, _ = _run(m, q, k, v, causal=False)
    err, tol = _err(out, _want(q, k, v, causal=False))
    if err > tol:
        unscaled, _ = _err(out, _want(q, k, v, causal=False, scale=1.0))
        hint = ("the 1/sqrt(D) scale is missing: scale defaults to 1/sqrt(D)" if unscaled <= tol
                else "scores are scale * q . k, scale 1/sqrt(D) unless given")
        raise AssertionError(f"{TASK}: without a scale, out differs from the reference's by "
                             f"{err:.2e}: {hint}")
    out, lse = _run(m, q, k, v, causal=False, scale=0.5)
    err, tol = _err(out, _want(q, k, v, causal=False, scale=0.5))
    lse_err, lse_tol = _err(lse, _want_lse(q, k, causal=False, scale=0.5))
    assert err <= tol and lse_err <= lse_tol, (
        f"{TASK}: with scale=0.5, out differs from the reference's by {err:.2e} and lse from the "
        f"scores' log-sum-exp by {lse_err:.2e}: use the given scale, in lse too")


# ---- the masks and the heads: probes ----

def check_causal(m):
    case = "MQA"  # the S = 32 queries are at positions 32..63 of T = 64
    B, S, T, H, K, D = CASES[case]
    q, k, v = _qkv(case, 2)
    s = 5
    p = T - S + s  # query s's position: inside a tile, so a mask off by one shows
    a_out, a_lse = _run(m, q, k, v)
    later = jnp.arange(T)[None, :, None, None] > p
    b_out, b_lse = _run(m, q, jnp.where(later, k + 1, k), jnp.where(later, v + 1, v))
    moved = max(np.abs(a_out - b_out)[:, :s + 1].max(), np.abs(a_lse - b_lse)[..., :s + 1].max())
    assert moved <= _err(a_lse, a_lse)[1], (
        f"{TASK}: with causal=True the out or lse of queries at positions <= {p} moved by {moved:.2e} "
        f"when only keys after position {p} changed: a query may read only keys at its own position "
        "or before (the causal mask is missing or off by one)")
    own = jnp.arange(T)[None, :, None, None] == p
    c_out, _ = _run(m, q, k, jnp.where(own, v + 1, v))
    assert np.abs(a_out - c_out)[:, s].max() > 1e-3, (
        f"{TASK}: with causal=True the output of the query at position {p} did not move when the value "
        "at its own position changed: a query reads keys at its own position too (the causal mask is "
        "off by one)")
    err, tol = _err(a_out, _want(q, k, v))
    assert err <= tol, (f"{TASK}: {_describe(case, causal=True)}: out differs from the reference's "
                        f"by {err:.2e}: the S queries are the last S of the T positions")


def check_segments(m):
    for case in ("MHA", "GQA"):
        B, S, T, H, K, D = CASES[case]
        q, k, v = _qkv(case, 3)
        seg = _documents(B, T)
        first = (seg == 0)[:, :, None, None]  # each row's first document
        for causal in (True, False):
            a_out, a_lse = _run(m, q, k, v, causal=causal, segment_ids=seg)
            b_out, b_lse = _run(m, q, jnp.where(first, k + 1, k), jnp.where(first, v + 1, v),
                                causal=causal, segment_ids=seg)
            others = np.asarray(seg[:, T - S:] != 0)  # [B, S]: queries of the rows' other documents
            moved = max(np.abs(a_out - b_out).max(axis=(2, 3))[others].max(),
                        np.abs(a_lse - b_lse).max(axis=1)[others].max())
            assert moved <= _err(a_lse, a_lse)[1], (
                f"{TASK}: {_describe(case, causal=causal)}: out or lse of a row's later documents "
                f"moved by {moved:.2e} when only its first document's keys changed: a query reads "
                "only keys of its own segment (segment_ids)")
            err, tol = _err(a_out, _want(q, k, v, causal=causal, segment_ids=seg))
            lse_err, lse_tol = _err(a_lse, _want_lse(q, k, causal=causal, segment_ids=seg))
            assert err <= tol and lse_err <= lse_tol, (
                f"{TASK}: {_describe(case, causal=causal)} with segment_ids: out differs from the "
                f"reference's by {err:.2e}, lse by {lse_err:.2e}: the queries use the last S of "
                "the T segment ids")


def check_gqa(m):
    for case in ("GQA", "MQA"):
        B, S, T, H, K, D = CASES[case]
        q, k, _ = _qkv(case, 4)
        v = jnp.broadcast_to(jnp.arange(K, dtype=jnp.float32)[:, None], (B, T, K, D))  # head k: all k
        got = _run(m, q, k, v, causal=False)[0].mean(axis=(0, 1, 3))  # [H]: the head each one read
        want = np.arange(H) // (H // K)
        if np.abs(got - want).max() > 1e-3:
            h = int(np.argmax(np.abs(got - want) > 1e-3))
            raise AssertionError(
                f"{TASK}: {case} (H={H}, K={K}): query head {h} reads key/value head {got[h]:.3g}, want "
                f"h // G = {want[h]}: which key/value head each query head reads (the G = H / K "
                "consecutive query heads h = k G, ..., k G + G - 1 share head k)")


def check_online_softmax(m):
    case = "GQA"
    B, S, T, H, K, D = CASES[case]
    q, k, v = _qkv(case, 5)
    q = q.at[..., 0].add(2.0)
    k = k.at[..., 0].add(jnp.linspace(0.0, 8.0, T)[None, :, None])  # later keys score higher
    want = _want(q, k, v, causal=False)
    err, tol = _err(_run(m, q, k, v, causal=False)[0], want)
    if err <= tol:
        return
    one, _ = _err(_run(m, q, k, v, causal=False, block_k=T)[0], want)
    hint = ("with one key tile it is right: when a later tile raises a query's running max, the "
            "running sum and the running weighted sum kept so far must be rescaled to the new max"
            if one <= tol else "even with one key tile it is wrong")
    raise AssertionError(f"{TASK}: with the largest scores in the later key tiles, out differs "
                         f"from the reference's by {err:.2e} over {T // BLOCK} key tiles: {hint}")


# ---- dtypes, blocks, jit ----

def check_bfloat16(m):
    case = "GQA"
    B, S, T, H, K, D = CASES[case]
    q, k, v = _qkv(case, 6, jnp.bfloat16)
    seg = _documents(B, T)
    out, lse = _run(m, q, k, v, segment_ids=seg)
    want = _want(q, k, v, segment_ids=seg)
    # bfloat16 keeps 8 bits of mantissa: the output's own rounding is up to 2^-9 of its size,
    # and the weights cast to bfloat16 before they multiply v round at other places in a tiled
    # sum (against the running max) than in the reference's: a few such steps. A wrong answer
    # is O(1) off. The lse is float32 from the same bfloat16 inputs: float32's tolerance.
    err, tol = float(np.abs(out - want).max()), 3e-2 * max(1.0, float(np.abs(want).max()))
    assert err <= tol, (f"{TASK}: {_describe(case)} in bfloat16 with segment_ids: out differs "
                        f"from the reference's by {err:.2e} (> {tol:.1e}, a few bfloat16 roundings): "
                        "accumulate in float32")
    err, tol = _err(lse, _want_lse(q, k, segment_ids=seg))
    assert err <= tol, (f"{TASK}: {_describe(case)} in bfloat16: lse differs from the scores' "
                        f"log-sum-exp by {err:.2e} (> {tol:.0e}): compute the scores and the running "
                        "statistics in float32")


def check_block_sizes(m):
    q, k, v = _qkv("GQA", 7)
    want = _want(q, k, v)
    for bq, bk in ((16, 64), (128, 16)):  # min(block, length) when a block is longer
        err, tol = _err(_run(m, q, k, v, block_q=bq, block_k=bk)[0], want)
        assert err <= tol, (f"{TASK}: with block_q={bq}, block_k={bk}, out differs from the "
                            f"reference's by {err:.2e}: blocks of min(block, length) must tile S and T")
    for what, args in (("S=48 with block_q=32", (q[:, :48], k, v)),
                       ("T=48 with block_k=32", (q[:, :16], k[:, :48], v[:, :48]))):
        try:
            m.flash_forward(*args, block_q=32, block_k=32)
        except ValueError as e:
            assert str(e).strip() and "\n" not in str(e).strip(), \
                f"{TASK}: the error for a length its block does not tile is not one line: {str(e)!r}"
            continue
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"{TASK}: {what} raised {type(e).__name__}, want a ValueError saying "
                                 "the block size must divide the length") from None
        raise AssertionError(f"{TASK}: {what} ran: raise a ValueError when min(block, length) does "
                             "not divide the length")


def check_jit(m):
    case = "GQA"
    B, S, T, H, K, D = CASES[case]
    q, k, v = _qkv(case, 12)
    seg = _documents(B, T)  # traced under jit, as the training step's are
    try:
        _jitted(m.flash_forward, True, None, BLOCK, BLOCK)(q, k, v, seg)
    except NotImplementedError:
        raise
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [""])[0][:120]
        raise AssertionError(f"{TASK}: fails under jax.jit with traced segment_ids "
                             f"({type(e).__name__}: {first}): no Python `if` or int() on array "
                             "values") from None


# ---- it is a kernel: the jaxpr ----
def _kernels(jaxpr) -> list:
    """Every pallas_call in jaxpr and the jaxprs inside it (not inside a kernel)."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "pallas_call":
            found.append(eqn)
            continue
        for sub in sub_jaxprs(eqn):
            found += _kernels(sub)
    return found


def _first_shape(jaxpr, bad, *, into_kernels: bool):
    """The first (primitive, shape) in jaxpr (and the jaxprs inside it; a kernel's only when
    into_kernels) for which bad(shape) holds."""
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            shape = tuple(getattr(var.aval, "shape", ()))
            if bad(shape):
                return eqn.primitive.name, shape
        if eqn.primitive.name == "pallas_call" and not into_kernels:
            continue
        for sub in sub_jaxprs(eqn):
            found = _first_shape(sub, bad, into_kernels=into_kernels)
            if found:
                return found
    return None


def check_kernel(m):
    case = "GQA"  # S = T = 64: 2 query blocks and 2 key tiles of 32
    B, S, T, H, K, D = CASES[case]
    q, k, v = _qkv(case, 11)
    seg = _documents(B, T)
    jaxpr = jax.make_jaxpr(lambda q, k, v, s: m.flash_forward(
        q, k, v, segment_ids=s, block_q=BLOCK, block_k=BLOCK))(q, k, v, seg).jaxpr
    kernels = _kernels(jaxpr)
    assert kernels, (f"{TASK}: no pallas_call in the jaxpr: write the kernel with pl.pallas_call "
                     "(shared.kernels.pallas_call), not as jnp code around it")
    assert len(kernels) == 1, (f"{TASK}: {len(kernels)} pallas_calls in the jaxpr, want one kernel "
                               "that writes both out and lse")
    grid = tuple(kernels[0].params["grid_mapping"].grid)
    want = B * H * (S // BLOCK)
    assert math.prod(grid) == want and S // BLOCK in grid, (
        f"{TASK}: grid {grid} ({math.prod(grid)} programs) for B={B}, H={H}, S={S}, bq={BLOCK}: want "
        f"one program per (batch row, query head, query block), {want}; the key tiles are a loop "
        "inside each program, not a grid axis (a GPU runs grid programs in parallel)")
    found = _first_shape(jaxpr, lambda shape: shape[-2:] in ((S, T), (T, S))
                         or math.prod(shape) >= B * H * S * T, into_kernels=False)
    if found:
        raise AssertionError(f"{TASK}: a [{S}, {T}] array appears outside the kernel ({found[0]} "
                             f"makes {list(found[1])}): scores and masks are built tile by tile "
                             "inside the kernel")
    found = _first_shape(kernels[0].params["jaxpr"], lambda shape: shape[-2:] in
                         ((BLOCK, T), (T, BLOCK)), into_kernels=True)
    if found:
        raise AssertionError(f"{TASK}: the kernel holds a [{BLOCK}, {T}] array ({found[0]} makes "
                             f"{list(found[1])}), a whole row of scores: loop over [bq, bk] = "
                             f"[{BLOCK}, {BLOCK}] tiles of keys, with the online softmax")


# ---- the drop-in: the core's backward pass on this kernel's (out, lse), and a GPU ----

@functools.cache
def _with_core_backward(forward, causal: bool):
    """What shared.flash_pallas builds around its forward kernel: a custom_vjp whose forward
    is `forward` and whose backward is shared.attention.blockwise_backward, fed (out, lse);
    returns jit(the vjp of q, k, v)."""
    fwd_kernel = functools.partial(forward, causal=causal, block_q=BLOCK, block_k=BLOCK)

    @jax.custom_vjp
    def attention(q, k, v, seg):
        return fwd_kernel(q, k, v, segment_ids=seg)[0]

    def attention_fwd(q, k, v, seg):
        out, lse = fwd_kernel(q, k, v, segment_ids=seg)
        B, H, S = lse.shape
        lse = lse.reshape(B, k.shape[2], H // k.shape[2], S)  # [B, H, S] -> [B, K, G, S]
        return out, (q, k, v, seg, out, lse)

    def attention_bwd(saved, d_out):
        q, k, v, seg, out, lse = saved
        grads = core.blockwise_backward(q, k, v, seg, None, out, lse, d_out, causal,
                                        q.shape[-1] ** -0.5, BLOCK, BLOCK)
        return (*grads, None)

    attention.defvjp(attention_fwd, attention_bwd)
    return jax.jit(lambda q, k, v, seg, d_out: jax.vjp(
        lambda q, k, v: attention(q, k, v, seg), q, k, v)[1](d_out))


@functools.cache
def _reference_vjp(causal: bool):
    return jax.jit(lambda q, k, v, seg, d_out: jax.vjp(
        lambda q, k, v: core.reference(q, k, v, causal=causal, segment_ids=seg), q, k, v)[1](d_out))


def check_core_backward(m):
    for case, causal, segments in (("GQA", True, True),):  # the training job's case
        B, S, T, H, K, D = CASES[case]
        q, k, v = _qkv(case, 8)
        seg = _documents(B, T) if segments else None
        d_out = jax.random.normal(jax.random.key(9), q.shape)
        want = _reference_vjp(causal)(q, k, v, seg, d_out)
        got = _with_core_backward(m.flash_forward, causal)(q, k, v, seg, d_out)
        wrong = [f"{name} (relative {err:.1e})" for name, g, w in zip(("dq", "dk", "dv"), got, want)
                 if (err := float(jnp.abs(g - w).max()) / float(jnp.abs(w).max())) > GRAD_TOL]
        assert not wrong, (
            f"{TASK}: {_describe(case, causal=causal, segment_ids=segments)}: with the core's blockwise "
            f"backward pass fed your (out, lse), the gradients {', '.join(wrong)} differ from the "
            f"reference's (> {GRAD_TOL:.0e}): the backward rebuilds the weights as exp(score - lse), "
            "so lse must be each query's log-sum-exp, [B, H, S]")


def check_lowers_for_gpu(m):
    B, S, T, H, K, D = CASES["GQA"]
    q = jax.ShapeDtypeStruct((B, S, H, D), jnp.bfloat16)
    kv = jax.ShapeDtypeStruct((B, T, K, D), jnp.bfloat16)
    seg = jax.ShapeDtypeStruct((B, T), jnp.int32)
    fn = jax.jit(lambda q, k, v, s: m.flash_forward(q, k, v, segment_ids=s, block_q=BLOCK,
                                                    block_k=BLOCK, interpret=False))
    triton = "__gpu$xla.gpu.triton"
    try:
        exported = jax.export.export(fn, platforms=["cuda"], disabled_checks=[
            jax.export.DisabledSafetyCheck.custom_call(triton)])(q, kv, kv, seg)
        mlir = exported.mlir_module()
    except NotImplementedError:
        raise
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [""])[0][:120]
        raise AssertionError(f"{TASK}: lowering for a GPU (interpret=False, exported for cuda from "
                             f"here) failed ({type(e).__name__}: {first}): the kernel must compile "
                             "natively too, through shared.kernels.pallas_call") from None
    assert triton in mlir, (f"{TASK}: exported for a GPU with interpret=False, the program holds no "
                            "Triton kernel: pass interpret through, and call the kernel through "
                            "shared.kernels.pallas_call (it asks for the Triton lowering)")


# ---- the tests: your answers (or the solution's, with --solutions) through every check ----

def test_flash_forward_output(answers):
    check_output(check_imports(answers))


def test_flash_forward_logsumexp(answers):
    check_logsumexp(check_imports(answers))


def test_flash_forward_scale(answers):
    check_scale(check_imports(answers))


def test_flash_forward_causal(answers):
    check_causal(check_imports(answers))


def test_flash_forward_segments(answers):
    check_segments(check_imports(answers))


def test_flash_forward_gqa(answers):
    check_gqa(check_imports(answers))


def test_flash_forward_online_softmax(answers):
    check_online_softmax(check_imports(answers))


def test_flash_forward_bfloat16(answers):
    check_bfloat16(check_imports(answers))


def test_flash_forward_block_sizes(answers):
    check_block_sizes(check_imports(answers))


def test_flash_forward_jit(answers):
    check_jit(check_imports(answers))


def test_flash_forward_is_a_kernel(answers):
    check_kernel(check_imports(answers))


def test_flash_forward_with_core_backward(answers):
    check_core_backward(check_imports(answers))


def test_flash_forward_lowers_for_gpu(answers):
    check_lowers_for_gpu(check_imports(answers))
