"""Checks for the build exercise 9.7-9.9 (build_decode.py): the KV-cached forward pass, and
continuous batching's scheduler, written by you.

The oracles are the course core: the full forward pass (shared.model.forward, no cache),
shared.inference.extend and each request decoded alone (shared.inference.generate). The
properties say which mistake a difference is: cached keys one position away from the core's
(the write's position), cache entries that move when only a later token changed (the mask
reads the future), logits that move when only cache positions past a row's own length
change (the mask reads past the row), logits right after an empty-cache prefill but wrong
once decoding (the new tokens' positions), and a fake memory that records what the
scheduler asked. The real serving code then runs on your pieces: the engine and static
batching on your extend, and the engine on your admit and retire.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong builds (tests/wrong/build_decode_*.py) and proves each is rejected
by the check about its mistake; the test_* functions at the bottom are thin wrappers.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import functools
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

from shared import engine, inference, model, paged
from shared.config import ModelConfig
from shared.course import imports

TINY = ModelConfig(vocab_size=64, seq_len=32, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2,
                   d_ff=64)
T = TINY.seq_len  # cache positions per row
FULL = 18  # the full forward pass's length: the longest sequence a check decodes
# float32: the same sums in another order differ by ~1e-6 of the largest logit; 2e-5 leaves room.
F32_TOL = 2e-5


# ---- the answer is not one import away ----

ALLOWED = ("jax", "jaxlib", "numpy", "stdlib", "shared.config", "shared.model", "shared.inference")
NOT_ALLOWED = {
    "shared.attention": "the mask over the cache is what this exercise writes, so the core's "
                        "attention is not allowed here",
    "shared.backward": "it holds the core's attention, which this exercise writes",
    "shared.paged": "it runs the core's cached forward, which this exercise writes",
    "shared.engine": "it holds the core's scheduler, which this exercise writes",
    "shared.generate": "it runs the core's cached forward and scheduler, which this exercise writes",
}
# What the file may use of the two core modules it may import: the model's building blocks and
# the cache's data structure. The rest (hidden, block, attention_block, forward; extend, run,
# write) is the cached forward pass itself.
MAY_USE = {
    "shared.model": {"rms_norm", "rope", "matmul", "mlp_block", "mlp", "unembed", "cast", "KVCache"},
    "shared.inference": {"Cache", "init_cache"},
}
WHY = {
    "shared.model": "the cached forward is what this exercise writes (the building blocks "
                    "rms_norm, rope, matmul, mlp_block, unembed and cast are allowed)",
    "shared.inference": "the cached forward and the cache's write are what this exercise writes "
                        "(only Cache and init_cache, the data structure, are allowed)",
}


def _core_uses(tree: ast.AST):
    """(line, what) for each use of shared.model or shared.inference beyond MAY_USE, and each
    call of a cache's update method (the core's write: update(layer, k, v, positions))."""
    aliases = {}  # a local name -> the core module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.name in MAY_USE and a.asname})
        elif isinstance(node, ast.ImportFrom) and node.module == "shared":
            aliases.update({a.asname or a.name: f"shared.{a.name}" for a in node.names
                            if f"shared.{a.name}" in MAY_USE})
        elif isinstance(node, ast.ImportFrom) and node.module in MAY_USE:
            for a in node.names:
                if a.name not in MAY_USE[node.module]:
                    yield node.lineno, f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base, module = node.value, None
            if isinstance(base, ast.Name):
                module = aliases.get(base.id)
            elif isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) \
                    and base.value.id == "shared" and f"shared.{base.attr}" in MAY_USE:
                module = f"shared.{base.attr}"
            if module and node.attr not in MAY_USE[module]:
                yield node.lineno, f"{module}.{node.attr}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "update" and len(node.args) >= 3:  # dict.update takes one
            yield node.lineno, "update"


def check_imports(m):
    """Fails on the first module the answer's file imports that it may not, or the first core
    function it uses that it writes (the file's AST: shared.model's cached forward, anything of
    shared.inference but its data structure, a cache's update method); returns m."""
    imports.check(m, ALLOWED, NOT_ALLOWED)
    path = Path(m.__file__)
    for line, what in _core_uses(ast.parse(path.read_text())):
        if what == "update":  # raised, not asserted: pytest would add its own lines to an assert
            raise AssertionError(f"{path.name} line {line} calls a cache's update method: the "
                                 "cache's write is what this exercise writes")
        module = what.rsplit(".", 1)[0]
        raise AssertionError(f"{path.name} line {line} uses {what}: {WHY[module]}")
    return m


# ---- the model, inputs, and the core's answers ----

@functools.cache
def _params() -> dict:
    """Parameters in the core's layout (shared.model.init's shapes), drawn with numpy at scales
    that make every part of the model show in the logits: unit embeddings, blocks that each move
    the residual stream by O(1), attention scores of a few units (neither uniform nor one-hot),
    norm scales not all one, and logits a few units apart (greedy argmax is decided by the
    model, not by float32 rounding). The init's own scales (std 0.02) would hide a wrong mask."""
    shapes = jax.eval_shape(lambda key: model.init(TINY, key), jax.random.key(0))
    E, F = TINY.d_model, TINY.d_ff
    std = {"embed": 1.0, "wq": 1.3 * E ** -0.5, "wk": 1.3 * E ** -0.5, "wv": E ** -0.5,
           "wo": E ** -0.5, "w_up": E ** -0.5, "w_down": F ** -0.5, "unembed": 3 * E ** -0.5}
    rng = np.random.default_rng(0)

    def draw(path, w):
        name, x = path[-1].key, rng.standard_normal(w.shape)
        return jnp.asarray(std[name] * x if name in std else 1 + 0.2 * x, jnp.float32)  # norms: ~1

    return jax.tree_util.tree_map_with_path(draw, shapes)


def _tokens(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, TINY.vocab_size, shape).astype(np.int32)


_core_forward = jax.jit(model.forward, static_argnums=2)
_core_extend = jax.jit(inference.extend, static_argnames="config")


def _full(tokens: np.ndarray) -> np.ndarray:
    """The full forward pass's float32 logits [B, S, V] (no cache), on tokens right-padded to
    FULL (one compiled program; causal, so the padding changes no logits before it)."""
    S = tokens.shape[1]
    padded = np.pad(tokens, ((0, 0), (0, FULL - S)))
    return np.asarray(_core_forward(_params(), jnp.asarray(padded), TINY))[:, :S]


def _core(cache, tokens, n_valid):
    return _core_extend(_params(), cache, jnp.asarray(tokens), jnp.asarray(n_valid, jnp.int32),
                        config=TINY)


def _junk(cache: inference.Cache, seed: int, past_length: bool = True) -> inference.Cache:
    """The cache with other values at every position at or past each row's length (or all)."""
    rng = np.random.default_rng(seed)
    keep = np.arange(T)[None, :] < np.asarray(cache.length)[:, None] if past_length \
        else np.zeros((cache.length.shape[0], T), bool)
    noise = lambda a, keep: jnp.asarray(np.where(keep, a, 3 * rng.standard_normal(a.shape)),
                                        jnp.float32)
    return inference.Cache(tuple(noise(a, keep[:, None, None, :]) for a in cache.k),  # [B, K, D, T]
                           tuple(noise(a, keep[:, None, :, None]) for a in cache.v),  # [B, K, T, D]
                           cache.length)


def _by_position(cache: inference.Cache, name: str) -> np.ndarray:
    """The cache's keys or values as one numpy [L, B, K, T, D] (the layers' key buffers are
    [B, K, D, T])."""
    a = np.stack([np.asarray(layer) for layer in getattr(cache, name)])
    return np.swapaxes(a, 3, 4) if name == "k" else a


def _shapes(cache: inference.Cache) -> str:
    return f"k {[tuple(a.shape) for a in cache.k]}, v {[tuple(a.shape) for a in cache.v]}, " \
           f"length {tuple(cache.length.shape)}"


@functools.cache
def _jitted(fn):
    return jax.jit(lambda params, cache, tokens, n_valid: fn(params, cache, tokens, n_valid, TINY))


def _extend(m, cache: inference.Cache, tokens, n_valid):
    """m.extend under jax.jit (compiled once per shape), its results checked for type, shape
    and finiteness; numpy logits [B, V] and the new cache. When jit fails it runs eagerly, so
    that an error reads as your code raised it."""
    params = _params()
    tokens, n_valid = jnp.asarray(tokens, jnp.int32), jnp.asarray(n_valid, jnp.int32)
    try:
        out = _jitted(m.extend)(params, cache, tokens, n_valid)
    except Exception:  # noqa: BLE001: run it again below, outside this block (no chained traceback)
        out = None
    if out is None:
        out = m.extend(params, cache, tokens, n_valid, TINY)
    assert isinstance(out, tuple) and len(out) == 2, \
        f"extend: returned {type(out).__name__}, want the pair (logits, cache)"
    logits, new = out
    B = tokens.shape[0]
    assert getattr(logits, "shape", None) == (B, TINY.vocab_size) and logits.dtype == jnp.float32, \
        f"extend: logits {getattr(logits, 'shape', None)} {getattr(logits, 'dtype', '')}, want " \
        f"float32 [B, V] = {(B, TINY.vocab_size)}: one row of logits per row, at its last valid token"
    assert isinstance(new, inference.Cache), \
        f"extend: returned a {type(new).__name__} as the cache, want a shared.inference.Cache"
    assert isinstance(new.k, tuple) and isinstance(new.v, tuple), \
        f"extend: the new cache's k and v are {type(new.k).__name__} and {type(new.v).__name__}, " \
        "want tuples of one buffer per layer, as in the cache it was given"
    assert _shapes(new) == _shapes(cache), \
        f"extend: the cache's shapes changed from {_shapes(cache)} to {_shapes(new)}: it keeps its shapes"
    logits = np.asarray(logits)
    assert np.isfinite(logits[np.asarray(n_valid) > 0]).all(), "extend: some logits are NaN or infinite"
    return logits, new


def _err(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """max |got - want|, and the float32 tolerance for it."""
    return float(np.abs(got - want).max()), F32_TOL * max(1.0, float(np.abs(want).max()))


def _padded(rows: list[np.ndarray], S: int) -> np.ndarray:
    out = np.zeros((len(rows), S), np.int32)  # [B, S], right-padded
    for b, r in enumerate(rows):
        out[b, :len(r)] = r
    return out


# ---- 9.7: the cached forward pass ----

PROMPT = _tokens(0, (3, 8))  # [B, S]: a prefill chunk
N_PROMPT = np.array([8, 3, 5], np.int32)  # rows of different lengths, right-padded


def check_extend_prefill(m):
    full = _full(PROMPT)  # causal: position p's logits depend on the tokens up to p only
    logits, new = _extend(m, inference.init_cache(TINY, 3), PROMPT, N_PROMPT)
    for b, n in enumerate(N_PROMPT):
        err, tol = _err(logits[b], full[b, n - 1])
        if err <= tol:
            continue
        last, _ = _err(logits[b], full[b, -1])
        if n < PROMPT.shape[1] and last <= tol:
            raise AssertionError(f"extend: prefill row {b} ({n} valid of {PROMPT.shape[1]} tokens): the "
                                 "logits are those of the chunk's last slot, not of the row's last "
                                 "valid token")
        raise AssertionError(f"extend: prefill row {b} ({n} valid of {PROMPT.shape[1]} tokens) from an "
                             f"empty cache: the logits differ from the full forward pass's at position "
                             f"{n - 1} by {err:.2e} (> {tol:.0e})")
    got = np.asarray(new.length)
    assert np.array_equal(got, N_PROMPT), \
        f"extend: after a prefill with n_valid {N_PROMPT.tolist()} from an empty cache the lengths " \
        f"are {got.tolist()}: each row grows by its n_valid"


def check_extend_cache(m):
    """A chunk written over a cache whose rows already hold 5, 0 and 2 tokens, junk past them."""
    prefix = _tokens(1, (3, 8))
    _, start = _core(_junk(inference.init_cache(TINY, 3), 2, past_length=False), prefix, [5, 0, 2])
    start = _junk(start, 3)  # junk past each row's length: what the core left there, or anything
    chunk, n_valid = _tokens(4, (3, 4)), np.array([4, 2, 0], np.int32)
    _, want = _core(start, chunk, n_valid)
    _, got = _extend(m, start, chunk, n_valid)
    length = np.asarray(start.length)
    for name in ("k", "v"):
        g, w, s = (_by_position(c, name) for c in (got, want, start))  # [L, B, K, T, D]
        for layer in range(TINY.n_layers):
            for b in range(3):
                lo, hi = length[b], length[b] + n_valid[b]
                if hi == lo:
                    continue
                err, tol = _err(g[layer, b, :, lo:hi], w[layer, b, :, lo:hi])
                if err <= tol:
                    continue
                for shift, how in ((1, "late"), (-1, "early")):
                    if 0 <= lo + shift and hi + shift <= T and \
                            _err(g[layer, b, :, lo + shift:hi + shift], w[layer, b, :, lo:hi])[0] <= tol:
                        raise AssertionError(
                            f"extend: row {b} (length {lo}, {n_valid[b]} new tokens): layer {layer}'s "
                            f"new {name} are written one position {how} (off by one): the token at "
                            f"position {lo} went to {lo + shift}")
                raise AssertionError(f"extend: row {b} (length {lo}, {n_valid[b]} new tokens): layer "
                                     f"{layer}'s cached {name} at positions {lo}..{hi - 1} differ from "
                                     f"the core's by {err:.2e} (> {tol:.0e})")
            for b in range(3):
                before = np.flatnonzero(np.any(g[layer, b, :, :length[b]] != s[layer, b, :, :length[b]],
                                               axis=(0, 2)))
                assert not before.size, \
                    f"extend: row {b} (length {length[b]}): layer {layer}'s {name} changed at position " \
                    f"{before[0]}, before the row's length: the tokens already cached stay as they are"
                end = length[b] + chunk.shape[1]
                past = np.flatnonzero(np.any(g[layer, b, :, end:] != s[layer, b, :, end:], axis=(0, 2)))
                assert not past.size, \
                    f"extend: row {b} (length {length[b]}, a chunk of {chunk.shape[1]}): layer {layer}'s " \
                    f"{name} changed at position {end + past[0]}, past the chunk: nothing is written there"
    lengths = np.asarray(got.length)
    assert np.array_equal(lengths, length + n_valid), \
        f"extend: lengths {length.tolist()} with n_valid {n_valid.tolist()} became {lengths.tolist()}, " \
        f"want {(length + n_valid).tolist()}: each row grows by its n_valid"


def check_extend_causal(m):
    """Only the token at position 4 of the prompt changes: nothing cached before it may move."""
    j, n_valid = 4, np.array([8, 8, 6], np.int32)
    other = PROMPT.copy()
    other[:, j] = (other[:, j] + 1) % TINY.vocab_size
    _, a = _extend(m, inference.init_cache(TINY, 3), PROMPT, n_valid)
    _, b = _extend(m, inference.init_cache(TINY, 3), other, n_valid)
    for name in ("k", "v"):
        moved = np.abs(_by_position(a, name) - _by_position(b, name))[..., :j, :]  # [L, B, K, j, D]
        scale = F32_TOL * max(1.0, float(np.abs(_by_position(a, name)).max()))
        if moved.max() > scale:
            layer = int(np.argmax(moved.max(axis=(1, 2, 3, 4)) > scale))
            raise AssertionError(f"extend: changing only the token at position {j} of a prefill moved "
                                 f"layer {layer}'s cached {name} at positions before it by "
                                 f"{moved.max():.2e}: a query may read only cached positions at or "
                                 "before its own")


def check_extend_own_row(m):
    """A decode step over rows of lengths 8 and 3, with other values past each row's length,
    and an idle third row whose cache is full (length T)."""
    n = np.array([8, 3, 0], np.int32)
    _, clean = _core(inference.init_cache(TINY, 3), _tokens(5, (3, 8)), n)
    filled = _junk(clean, 6, past_length=False)
    row_2 = lambda layers, junk: tuple(a.at[2].set(j[2]) for a, j in zip(layers, junk))
    clean = inference.Cache(row_2(clean.k, filled.k), row_2(clean.v, filled.v),
                            clean.length.at[2].set(T))  # row 2: all T positions filled, with anything
    step, n_valid = _tokens(7, (3, 1)), np.array([1, 1, 0], np.int32)
    want, _ = _core(clean, step, n_valid)
    junk = _junk(clean, 8)
    got, new = _extend(m, junk, step, n_valid)
    clean_got, _ = _extend(m, clean, step, n_valid)
    for b in range(2):
        length = int(n[b])
        moved, tol = _err(got[b], clean_got[b])
        assert moved <= tol, \
            f"extend: decode row {b} (length {length}, in a batch of rows of lengths " \
            f"{[8, 3, T]}): its logits moved by {moved:.2e} when only cache positions past its " \
            "own length held other values: a query may read only its own row's positions up to " \
            "its own, whatever the other rows' lengths"
        err, tol = _err(got[b], np.asarray(want[b]))
        assert err <= tol, f"extend: decode row {b} (length {length}): the logits differ from the " \
                           f"core's by {err:.2e} (> {tol:.0e})"
    changed = np.flatnonzero(np.any(_by_position(new, "k")[:, 2] != _by_position(junk, "k")[:, 2],
                                    axis=(0, 1, 3)))  # [L, K, T, D] -> the positions T
    assert not changed.size, \
        f"extend: row 2 takes no step (n_valid 0) with its cache full (length T = {T}), but its " \
        f"keys changed at position {changed[0]}: a position at or past T is not written"
    assert int(new.length[2]) == T, f"extend: an idle row's length went from {T} to {int(new.length[2])}"


def check_extend_greedy(m):
    """Prefill rows of 8, 3 and 5 tokens, then 10 greedy decode steps, each fed its argmax."""
    steps = 10
    logits, cache = _extend(m, inference.init_cache(TINY, 3), PROMPT, N_PROMPT)
    history, fed = [logits], []
    for _ in range(steps):
        token = history[-1].argmax(axis=-1).astype(np.int32)  # [B]
        fed.append(token)
        logits, cache = _extend(m, cache, token[:, None], np.ones(3, np.int32))
        history.append(logits)
    rows = [np.concatenate([PROMPT[b, :n], [t[b] for t in fed]]) for b, n in enumerate(N_PROMPT)]
    full = _full(_padded(rows, PROMPT.shape[1] + steps))
    for i, got in enumerate(history):
        for b, n in enumerate(N_PROMPT):
            p = n - 1 + i  # the position whose logits step i returns
            err, tol = _err(got[b], full[b, p])
            if err > tol:
                what = "the prefill" if i == 0 else f"decode step {i}"
                hint = "" if i == 0 else (": the prefill from an empty cache agreed, so check the "
                                          "position each new token takes, for RoPE as for the mask")
                raise AssertionError(f"extend: greedy decoding, {what}, row {b} (prompt of {n}): the "
                                     f"logits differ from the full forward pass's at position {p} by "
                                     f"{err:.2e}{hint}")
            if i < steps:
                want = int(full[b, p].argmax())
                assert fed[i][b] == want, f"extend: greedy token {i} of row {b} is {fed[i][b]}, the " \
                                          f"full forward pass's argmax is {want}"


def check_extend_chunks(m):
    """A chunk, a chunk over it (one row idle), then decode steps."""
    stream = _tokens(9, (3, 16))  # each row's tokens, in order
    full = _full(stream)
    calls = [(4, [4, 2, 3]), (4, [3, 4, 0]), (1, [1, 1, 1]), (1, [1, 1, 1]), (1, [1, 1, 1])]
    cache, length = inference.init_cache(TINY, 3), np.zeros(3, np.int32)
    for i, (S, n_valid) in enumerate(calls):
        n_valid = np.array(n_valid, np.int32)
        chunk = np.stack([np.pad(stream[b, length[b]:length[b] + n_valid[b]], (0, S - n_valid[b]))
                          for b in range(3)])  # [B, S], right-padded
        logits, new = _extend(m, cache, chunk, n_valid)
        what = (f"call {i + 1} of {len(calls)} (S = {S}, n_valid {n_valid.tolist()}, "
                f"lengths {length.tolist()})")
        for b in range(3):
            if n_valid[b] == 0:
                before = [np.any(_by_position(new, a)[:, b, :, :length[b]]
                                 != _by_position(cache, a)[:, b, :, :length[b]]) for a in "kv"]
                assert not any(before), f"extend: {what}: row {b} takes no step, but its cached " \
                                        "tokens changed: a row with n_valid 0 is left as it is"
                continue
            p = length[b] + n_valid[b] - 1
            err, tol = _err(logits[b], full[b, p])
            assert err <= tol, f"extend: {what}, row {b}: the logits differ from the full forward " \
                               f"pass's at position {p} by {err:.2e} (> {tol:.0e})"
        got = np.asarray(new.length)
        assert np.array_equal(got, length + n_valid), \
            f"extend: {what}: the lengths became {got.tolist()}, want {(length + n_valid).tolist()}"
        cache, length = new, length + n_valid


@contextlib.contextmanager
def _plugged(m):
    """m.extend wherever the serving code calls shared.inference.extend (generate's step, the
    engine's ContiguousKV), for the block: the plug `--mine` uses. JAX's traces are cleared on
    both sides, so that neither runs the other's extend."""
    jax.clear_caches()
    try:
        with mock.patch.object(inference, "extend", m.extend):
            yield
    finally:
        jax.clear_caches()


def _workload(seed: int, n: int) -> list[engine.Request]:
    """Random prompts (1..20 tokens) and outputs (1..8 tokens), a one-token stop on a third."""
    rng = np.random.default_rng(seed)
    requests = []
    for i in range(n):
        prompt = rng.integers(0, TINY.vocab_size, rng.integers(1, 21)).astype(np.int32)
        stop = ((int(rng.integers(0, TINY.vocab_size)),),) if rng.random() < 0.35 else ()
        requests.append(engine.Request(i, prompt, int(rng.integers(1, 9)), stop, seed=i))
    return requests


@functools.cache
def _alone(seed: int, n: int) -> dict[int, np.ndarray]:
    """Each request of _workload(seed, n) decoded alone by the core (batch 1, greedy)."""
    return {r.id: inference.generate(_params(), TINY, [r.prompt], r.max_new_tokens, pad_to=T)[0]
            for r in _workload(seed, n)}


def _cut(tokens: np.ndarray, stops) -> np.ndarray:
    """tokens before the first stop sequence they hold: what the engine returns."""
    for s in stops:
        hits = [i for i in range(len(tokens) - len(s) + 1) if tuple(tokens[i:i + len(s)]) == s]
        tokens = tokens[:hits[0]] if hits else tokens
    return tokens


def _same_as_alone(task: str, done: list[engine.Completion], want: dict[int, np.ndarray], how: str):
    ids = sorted(c.id for c in done)
    assert ids == sorted(want), f"{task}: {how}: {len(ids)} completions ({len(set(ids))} distinct) " \
                                f"for {len(want)} requests: each request completes exactly once"
    for c in sorted(done, key=lambda c: c.id):
        assert np.array_equal(c.tokens, want[c.id]), \
            f"{task}: {how}: request {c.id} got tokens {c.tokens.tolist()}, decoded alone it gets " \
            f"{want[c.id].tolist()}"


def check_extend_serving(m):
    """The engine (contiguous cache, 3 slots) and static batching on m.extend."""
    requests = _workload(10, 8)
    with _plugged(m):
        eng = engine.Engine(_params(), TINY, slots=3, buckets=(T,))
        done = eng.run(requests)
        batch = inference.generate(_params(), TINY, [r.prompt for r in requests[:3]],
                                   [r.max_new_tokens for r in requests[:3]], pad_to=T)
    alone = _alone(10, 8)  # the core's, once unplugged
    _same_as_alone("extend", done, {r.id: _cut(alone[r.id], r.stop) for r in requests},
                   "the engine on your extend")
    for r, got in zip(requests, batch):
        assert np.array_equal(got, alone[r.id]), \
            f"extend: static batching (shared.inference.generate) on your extend gave request {r.id} " \
            f"tokens {got.tolist()}, decoded alone by the core it gets {alone[r.id].tolist()}"


# ---- 9.8-9.9: the scheduler ----

class _Memory:
    """A fake KV memory of `capacity` positions; a request reserves prompt + budget - 1 of them.
    It records what it was asked, and fails on a reservation it cannot hold."""

    def __init__(self, capacity: int, held: dict[int, int] | None = None):
        self.capacity, self.held = capacity, dict(held or {})
        self.admitted: list[int] = []
        self.released: list[int] = []

    def can_admit(self, n_prompt: int, budget: int) -> bool:
        return sum(self.held.values()) + n_prompt + budget - 1 <= self.capacity

    def admit(self, slot: int, n_prompt: int, budget: int) -> None:
        assert slot not in self.held, f"admit: kv.admit({slot}) reserved memory for slot {slot}, " \
                                      "which already holds a request"
        self.held[slot] = n_prompt + budget - 1
        self.admitted.append(slot)
        assert sum(self.held.values()) <= self.capacity, \
            f"admit: the reservations exceed the memory ({sum(self.held.values())} of " \
            f"{self.capacity} positions): start a request only when kv.can_admit says it fits, and " \
            "reserve each (kv.admit) before asking whether the next one fits"

    def release(self, slot: int) -> None:
        self.held.pop(slot, None)
        self.released.append(slot)


def _entry(i: int, n_prompt: int, budget: int) -> tuple:
    return engine.Request(i, np.ones(n_prompt, np.int32), budget), float(i)


def _admit(m, queue: list[tuple], active: list, kv: _Memory):
    """m.admit on copies; (what it returned, the queue after it), checked for its form."""
    q, before = collections.deque(queue), list(active)
    got = m.admit(q, active, kv, lambda r: r.max_new_tokens)
    assert isinstance(got, list) and all(isinstance(x, tuple) and len(x) == 2 for x in got), \
        f"admit: returned {got!r}, want a list of (slot, entry) pairs"
    assert active == before, "admit: it changed `active`: the engine fills each slot after its prefill"
    return got, list(q)


def check_admit_policy(m):
    busy = "busy"
    # Three free slots, four small requests waiting, memory for all of them.
    queue = [_entry(i, 3, 4) for i in range(4)]
    active = [busy, None, busy, None, None]
    kv = _Memory(100, {0: 6, 2: 6})
    got, left = _admit(m, queue, active, kv)
    if not got:
        raise AssertionError("admit: slots 1, 3 and 4 were free with 4 requests waiting and memory "
                             "for them, but none started: a free slot takes a waiting request at "
                             "once, not when the whole batch is done (static batching)")
    ids, slots = [e[0].id for _, e in got], [s for s, _ in got]
    assert len(got) == 3, f"admit: slots 1, 3 and 4 were free with 4 requests waiting and memory " \
                          f"for them; {len(got)} started: every free slot is used while requests wait"
    assert ids == [0, 1, 2], f"admit: started requests {ids}, want the oldest three [0, 1, 2], in order"
    assert slots == [1, 3, 4], f"admit: used slots {slots}, want the free ones [1, 3, 4], lowest first, " \
                               "each once"
    assert got[0][1] is queue[0], "admit: return the queue's entries as they are, (request, submitted)"
    assert [e[0].id for e in left] == [3], \
        f"admit: the queue holds requests {[e[0].id for e in left]} after it, want [3]: the started " \
        "ones leave the queue"
    assert kv.admitted == [1, 3, 4], f"admit: kv.admit was called for slots {kv.admitted}, want " \
                                     "[1, 3, 4]: reserve each started request's memory"
    # The oldest does not fit the memory now: it waits, and nobody overtakes it.
    queue = [_entry(0, 20, 30), _entry(1, 2, 2), _entry(2, 2, 2)]
    got, left = _admit(m, queue, [None, busy, None], _Memory(30, {1: 10}))
    assert not got, f"admit: the oldest waiting request (49 positions) did not fit the 20 free, yet " \
                    f"requests {[e[0].id for _, e in got]} behind it started: none may overtake it " \
                    "(a long request would wait forever)"
    assert len(left) == 3, "admit: no request started, yet the queue changed"
    # Memory for either of two requests but not both: the second waits.
    queue = [_entry(0, 10, 11), _entry(1, 10, 11)]
    kv = _Memory(30)
    got, left = _admit(m, queue, [None, None], kv)
    assert [e[0].id for _, e in got] == [0] and len(left) == 1, \
        f"admit: memory for one of two requests (20 positions each, 30 free): started " \
        f"{[e[0].id for _, e in got]}, want [0]: reserve each started request before asking about the next"
    # Every slot busy, or nobody waiting: nothing starts, nothing is reserved.
    kv = _Memory(100)
    got, left = _admit(m, [_entry(0, 2, 2)], [busy, busy], kv)
    assert not got and len(left) == 1 and not kv.admitted, \
        "admit: every slot was busy, yet a request started"
    got, _ = _admit(m, [], [None, None], kv)
    assert got == [], f"admit: nobody was waiting, yet it returned {got!r}"


def _record(out: list[int], budget: int, stop=()):
    return SimpleNamespace(request=SimpleNamespace(stop=stop), budget=budget, out=list(out))


def check_retire_policy(m):
    records = [
        _record([3, 4, 5], 3),                  # 0: budget reached: "length"
        None,                                   # 1: free
        _record([1, 2], 5, ((7,),)),            # 2: running
        _record([1, 7, 8], 5, ((9,), (7, 8))),  # 3: ends with the stop (7, 8): "stop", out [1]
        _record([2, 9], 2, ((9,),)),            # 4: stop and budget at once: "stop", out [2]
        _record([9, 1], 4, ((9,),)),            # 5: a stop token earlier is not at the end: running
        _record([5], 3, ((),)),                 # 6: an empty stop sequence never matches: running
    ]
    active = list(records)
    kv = _Memory(100, {i: 5 for i, r in enumerate(records) if r is not None})
    got = m.retire(active, kv)
    assert isinstance(got, list) and all(isinstance(x, tuple) and len(x) == 3 for x in got), \
        f"retire: returned {got!r}, want a list of (slot, record, finish)"
    want = {0: ("length", [3, 4, 5]), 3: ("stop", [1]), 4: ("stop", [2])}
    why = {0: "its output holds its budget of 3 tokens", 3: "its output ends with the stop (7, 8)",
           4: "its output ends with the stop (9,)"}
    slots = [s for s, _, _ in got]
    for slot in want:
        assert slot in slots, f"retire: slot {slot}'s request is done ({why[slot]}) but was not retired"
    for slot, record, finish in got:
        assert slot in want, f"retire: retired slot {slot} (output {records[slot].out}, budget " \
                             f"{records[slot].budget}, stops {records[slot].request.stop}), which is " \
                             "not done: a stop sequence ends a request only at the end of its output"
        assert record is records[slot], f"retire: slot {slot}: return the slot's record itself"
        assert finish == want[slot][0], f"retire: slot {slot} ({why[slot]}) finished {finish!r}, " \
                                        f"want {want[slot][0]!r}"
        assert record.out == want[slot][1], f"retire: slot {slot}: output {record.out} after retiring, " \
                                            f"want {want[slot][1]} (a stop sequence is not part of it)"
    assert slots == sorted(slots), f"retire: slots {slots}, want them in slot order"
    for slot in want:
        assert active[slot] is None, f"retire: slot {slot}'s request is done but its slot was not " \
                                     f"freed (active[{slot}] still holds it): a waiting request " \
                                     "could never take it"
        assert slot in kv.released, f"retire: slot {slot}'s request is done but its memory was not " \
                                    f"freed (kv.release({slot}) was not called)"
    for slot, out in ((2, [1, 2]), (5, [9, 1]), (6, [5])):
        assert active[slot] is records[slot] and records[slot].out == out, \
            f"retire: slot {slot}'s request is not done, but its slot or its output changed"
    assert sorted(kv.released) == [0, 3, 4], f"retire: kv.release was called for slots " \
                                             f"{sorted(kv.released)}, want [0, 3, 4]"


class _Engine(engine.Engine):
    """shared.engine.Engine whose admission and release are m.admit and m.retire: Engine._admit's
    loop asks admit which requests start where, and retire runs after every new token (in place
    of Engine._after_token's finish). Counts the steps at which a slot stood free after
    admission while the oldest waiting request fit the memory."""

    def __init__(self, m, *args, **kwargs):
        self.m, self.idle_slot_steps = m, 0
        super().__init__(*args, **kwargs)

    def _admit(self):
        done = []
        while started := self.m.admit(self.queue, self.active, self.kv, self._budget):
            for slot, (request, submitted) in started:
                assert self.active[slot] is None, f"admit: started a request in slot {slot}, which " \
                                                  "holds one"
                n = len(request.prompt)
                bucket = next(b for b in self.buckets if b >= n)
                tokens = np.zeros((1, bucket), np.int32)  # [1, bucket], right-padded
                tokens[0, :n] = request.prompt
                first, self.kv.state = self._prefill[bucket](
                    self.params, self.kv.state, tokens, np.array([n], np.int32), np.int32(slot),
                    np.int32(request.seed), *self.kv.prefill_aux(slot))
                now = time.perf_counter()
                self.active[slot] = engine._Slot(request, self._budget(request), n, [int(first[0])],
                                                 completion=engine.Completion(
                                                     request.id, np.zeros(0, np.int32), "", "",
                                                     submitted, now))
            done += self._retire()  # a request may be done at its first token, freeing its slot
        if self.queue and None in self.active:
            request = self.queue[0][0]
            self.idle_slot_steps += self.kv.can_admit(len(request.prompt), self._budget(request))
        return done

    def _after_token(self, slot, token, now):
        self.active[slot].out.append(token)  # whether that ends the request is retire's to say

    def step(self):
        return super().step() + self._retire()

    def _retire(self):
        now, done = time.perf_counter(), []
        for slot, s, finish in self.m.retire(self.active, self.kv):
            c = s.completion
            c.tokens, c.finish, c.finished = np.array(s.out, np.int32), finish, now
            done.append(c)
        return done


def check_scheduler_serving(m):
    """24 requests submitted at random times into 3 slots over a pool of 7 pages of 8 positions
    (fewer than 3 requests at full length need): some wait for memory with a slot free."""
    requests = _workload(11, 24)
    kv = paged.PagedKV(TINY, slots=3, page=8, pages=8)
    eng = _Engine(m, _params(), TINY, kv=kv, buckets=(T,))
    rng = np.random.default_rng(12)
    order, done, steps = list(rng.permutation(len(requests))), [], 0
    limit = 3 * sum(r.max_new_tokens for r in requests)
    while order or not eng.idle:
        for _ in range(min(len(order), int(rng.integers(0, 3)))):
            assert eng.submit(requests[order.pop()]) is None
        try:
            done += eng.step()
        except (AssertionError, IndexError) as e:  # the paged pool's own bookkeeping gave up
            if str(e).startswith(("admit:", "retire:")):
                raise
            raise AssertionError(f"admit/retire: the engine's step {steps + 1} failed in the KV pool's "
                                 f"bookkeeping ({type(e).__name__}: {e}): a request ran past its "
                                 "budget, or memory was handed out that was not free") from None
        steps += 1
        if steps > limit:
            held = [i for i, s in enumerate(eng.active) if s is not None]
            raise AssertionError(f"retire: the engine is stuck after {steps} steps: slots {held} held, "
                                 f"{len(eng.queue)} requests waiting, {len(done)} of {len(requests)} "
                                 "done: a done request gives its slot and memory back")
    assert eng.idle_slot_steps == 0, \
        f"admit: in the engine, a slot stood free after admission at {eng.idle_slot_steps} steps while " \
        "the oldest waiting request fit the memory: a free slot takes a waiting request at once"
    alone = _alone(11, 24)
    _same_as_alone("retire", done, {r.id: _cut(alone[r.id], r.stop) for r in requests},
                   "the engine on your admit and retire")
    assert len(kv.free) == kv.pages - 1, f"retire: {kv.pages - 1 - len(kv.free)} pages were never " \
                                         "given back after every request finished"


# ---- the tests: your answers (or the solution's, with --solutions) through every check ----

def test_extend_prefill(answers):
    check_extend_prefill(check_imports(answers))


def test_extend_cache(answers):
    check_extend_cache(check_imports(answers))


def test_extend_causal(answers):
    check_extend_causal(check_imports(answers))


def test_extend_own_row(answers):
    check_extend_own_row(check_imports(answers))


def test_extend_greedy(answers):
    check_extend_greedy(check_imports(answers))


def test_extend_chunks(answers):
    check_extend_chunks(check_imports(answers))


def test_extend_serving(answers):
    check_extend_serving(check_imports(answers))


def test_admit_policy(answers):
    check_admit_policy(check_imports(answers))


def test_retire_policy(answers):
    check_retire_policy(check_imports(answers))


def test_retire_serving(answers):
    check_scheduler_serving(check_imports(answers))
