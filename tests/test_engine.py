"""The continuous-batching engine, contiguous and paged: a randomised workload where every
request must come back exactly once with the tokens it gets when decoded alone."""

import dataclasses
import re

import jax
import numpy as np
import pytest

from shared import engine, inference, model, paged
from shared import config as cfg

TINY = cfg.ModelConfig(seq_len=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64)
N_REQUESTS = 240


@pytest.fixture(scope="module")
def params():
    p = model.init(TINY, jax.random.key(0))
    # Spread the logits (random init puts them within ~0.01) so greedy argmax is decided by
    # the model, not by rounding differences between batch shapes.
    return {**p, "unembed": p["unembed"] * 50}


def workload(seed: int) -> list[engine.Request]:
    """Random prompt lengths (1..48), output lengths (1..12), a stop sequence on some requests."""
    rng = np.random.default_rng(seed)
    requests = []
    for i in range(N_REQUESTS):
        prompt = rng.integers(0, 256, rng.integers(1, 49)).astype(np.int32)
        stop = ((int(rng.integers(0, 256)),),) if rng.random() < 0.3 else ()
        requests.append(engine.Request(i, prompt, int(rng.integers(1, 13)), stop, seed=i))
    return requests


def expected(params, request: engine.Request) -> np.ndarray:
    """The request decoded alone (batch 1), cut before the first stop sequence it produced."""
    out = inference.generate(params, TINY, [request.prompt], request.max_new_tokens, pad_to=TINY.seq_len)[0]
    for s in request.stop:
        hits = [i for i in range(len(out) - len(s) + 1) if tuple(out[i:i + len(s)]) == s]
        if hits:
            out = out[:hits[0]]
    return out


@pytest.fixture(scope="module")
def oracle(params):
    requests = workload(0)
    return requests, {r.id: expected(params, r) for r in requests}


def serve(eng: engine.Engine, requests, seed: int):
    """Submit in random order and at random times between steps; count steps where a request
    waited although a slot was free (it waited for KV memory)."""
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(requests)))
    done, memory_waits = [], 0
    while order or not eng.idle:
        for _ in range(min(len(order), int(rng.integers(0, 4)))):
            if (c := eng.submit(requests[order.pop()])) is not None:
                done.append(c)
        memory_waits += bool(eng.queue) and None in eng.active
        done += eng.step()
    return done, memory_waits


@pytest.mark.parametrize("kind", ["contiguous", "paged"])
def test_every_request_completes_once_and_matches_decoding_alone(params, oracle, kind):
    requests, want = oracle
    if kind == "paged":  # 15 pages of 8 positions: fewer than 4 slots at full length need
        kv = paged.PagedKV(TINY, slots=4, page=8, pages=16)
    else:
        kv = engine.ContiguousKV(TINY, slots=4)
    eng = engine.Engine(params, TINY, kv=kv, buckets=(16, 64))
    assert eng.compiled_programs == 3, "one prefill per bucket and one decode"
    done, memory_waits = serve(eng, requests, seed=1)
    ids = [c.id for c in done]
    assert sorted(ids) == list(range(N_REQUESTS)), \
        f"{len(ids)} completions for {N_REQUESTS} requests ({len(set(ids))} distinct)"
    for c in done:
        np.testing.assert_array_equal(c.tokens, want[c.id], f"request {c.id} ({c.finish})")
        assert c.finish == ("stop" if len(c.tokens) < requests[c.id].max_new_tokens else "length")
    if kind == "paged":
        assert memory_waits > 0, "the pool should have been full at times, with requests waiting"
        assert kv.free and len(kv.free) == kv.pages - 1, "every page must be back on the free list"
        allocated, used = eng.mean_memory
        assert used <= allocated < used + 4 * kv.page * inference.kv_bytes_per_token(TINY), \
            f"paged allocation {allocated} B should exceed use {used} B by under a page per slot"


def test_bad_requests_are_rejected_alone(params):
    kv = paged.PagedKV(TINY, slots=2, page=16, pages=4)  # 3 usable pages: 48 positions
    eng = engine.Engine(params, TINY, kv=kv, buckets=(64,))
    good = engine.Request(0, np.arange(1, 9, dtype=np.int32), 5)
    bad = [engine.Request(1, np.ones(65, np.int32), 5), engine.Request(2, np.zeros(0, np.int32), 5),
           engine.Request(3, np.ones(40, np.int32), 20), engine.Request(4, np.ones(3, np.int32), 0)]
    done = {c.id: c for c in eng.run([good, *bad])}
    assert done[0].finish == "length" and len(done[0].tokens) == 5
    messages = {1: "request 1: the prompt is 65 tokens, longer than the context of 64",
                2: "request 2: the prompt is empty",
                3: "request 3: needs 4 pages of 16 positions for 40 prompt + 20 new tokens; the pool has 3",
                4: "request 4: max_new_tokens must be >= 1, got 0"}
    for i, message in messages.items():
        assert done[i].finish == "rejected" and done[i].error == message, done[i].error


def test_generation_stops_at_the_context(params):
    eng = engine.Engine(params, TINY, slots=2, buckets=(64,))
    (c,) = eng.run([engine.Request(0, np.ones(60, np.int32), 50)])
    assert c.finish == "length" and len(c.tokens) == 5, \
        f"60 prompt tokens in a 64-position cache leave room for 5 new tokens, got {len(c.tokens)}"


def test_impossible_pool_names_the_numbers():
    with pytest.raises(paged.PoolError, match="max_len 64 must be a multiple of the page size 24"):
        paged.PagedKV(TINY, slots=2, page=24)
    with pytest.raises(paged.PoolError, match="a pool of 1 pages"):
        paged.PagedKV(TINY, slots=2, page=16, pages=1)


@pytest.mark.parametrize("kv", ["contiguous", "paged"])
def test_bfloat16_decode_writes_its_cache_in_place_on_the_cpu(params, kv):
    """With XLA:CPU's defaults, writing one token's keys and values into a bfloat16 cache would
    convert the whole cache to float32, write, and convert it back (float normalization)."""
    mc = dataclasses.replace(TINY, dtype="bfloat16")
    store = engine.ContiguousKV(mc, 2) if kv == "contiguous" else paged.PagedKV(mc, 2, page=8)
    eng = engine.Engine(params, mc, kv=store, buckets=(mc.seq_len,))
    upcast = re.findall(r"= f32\[[^\]]*\]\S* (?:scatter|dynamic-update-slice)\(", eng._decode.as_text())
    assert not upcast, (f"Engine ({kv} cache, bfloat16): compile its programs with "
                        f"shared.compile_options; the decode step writes {len(upcast)} caches in float32")
