"""Tensor-parallel serving on 8 simulated CPU devices: the same tokens as one device, and
the collectives a decode step should need (Megatron: two all-reduces per layer)."""

import jax
import numpy as np
import pytest

from shared import engine, model, paged, serving_tp, sharding
from shared import config as cfg

# Every split dimension divisible by 8: heads 8, kv heads 8, d_ff 128, vocab 256.
TP = cfg.ModelConfig(seq_len=64, d_model=64, n_layers=2, n_heads=8, n_kv_heads=8, d_ff=128)


@pytest.fixture(scope="module")
def params():
    p = model.init(TP, jax.random.key(0))
    # Spread the logits (random init puts them within ~0.01) so greedy argmax is decided by
    # the model, not by the all-reduce summing in another order than one device does.
    return {**p, "unembed": p["unembed"] * 50}


def requests() -> list[engine.Request]:
    rng = np.random.default_rng(0)
    return [engine.Request(i, rng.integers(0, 256, int(rng.integers(1, 40))).astype(np.int32),
                           int(rng.integers(1, 10)), seed=i) for i in range(12)]


def engines(params, kind: str) -> tuple[engine.Engine, engine.Engine]:
    """(one device, 8-way tensor parallel) engines with the same slots and buckets."""
    kv = lambda: paged.PagedKV(TP, slots=4, page=16) if kind == "paged" else None
    return tuple(engine.Engine(params, TP, slots=4, kv=kv(), buckets=(16, 64), mesh=mesh)
                 for mesh in (None, serving_tp.mesh()))


@pytest.fixture(scope="module")
def contiguous(params):
    return engines(params, "contiguous")


@pytest.mark.parametrize("kind", ["contiguous", "paged"])
def test_tensor_parallel_engine_matches_one_device(params, contiguous, kind):
    assert len(jax.devices()) == 8, "tests/conftest.py should give 8 simulated CPU devices"
    one, tp = contiguous if kind == "contiguous" else engines(params, kind)
    want = {c.id: c.tokens for c in one.run(requests())}
    got = {c.id: c.tokens for c in tp.run(requests())}
    assert sorted(got) == sorted(want), "every request must complete exactly once"
    for i in want:
        np.testing.assert_array_equal(got[i], want[i], f"request {i}: 8-way tensor parallel vs one device")
    keys = tp.kv.state.k[0] if kind == "contiguous" else tp.kv.state.k  # [B, K, D, T] / [L, P, K, page, D]
    shards = {s.data.shape for s in keys.addressable_shards}
    axis = 1 if kind == "contiguous" else 2
    want = keys.shape[:axis] + (keys.shape[axis] // 8,) + keys.shape[axis + 1:]
    assert shards == {want}, \
        f"each device should hold 1/8 of the KV heads, got shard shapes {shards}"


def test_tensor_parallel_decode_collectives(contiguous):
    one, tp = contiguous
    assert one.decode_collectives() == [], "one device: no collectives"
    found = tp.decode_collectives()
    reduces = [c for c in found if c.kind == "all-reduce" and c.shape.endswith(f"[4,1,{TP.d_model}]")]
    assert sum(c.count for c in reduces) == 2 * TP.n_layers + 1, \
        (f"Megatron TP needs one [B, 1, E] all-reduce after wo and one after w_down per layer, "
         f"plus one for the embedding lookup split over the vocabulary ({2 * TP.n_layers + 1}); "
         f"found {[(c.kind, c.shape, c.count) for c in found]}")
    assert not any(c.kind == "all-gather" and f",{TP.seq_len}," in c.shape for c in found), \
        f"the KV cache is split by heads: attention should not gather it; found {found}"


def test_tensor_parallel_rejects_indivisible_heads(params):
    bad = cfg.ModelConfig(seq_len=64, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128)
    with pytest.raises(sharding.ShardingError, match="n_heads divisible by 8, got 4"):
        engine.Engine(model.init(bad, jax.random.key(0)), bad, slots=2, buckets=(64,),
                      mesh=serving_tp.mesh())
