"""Packed rows keep documents apart; the loss skips padding; the loader is seeded and resumable."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import config as cfg
from shared import data, model, pipeline, sharding, train

MC = cfg.ModelConfig(seq_len=32, d_model=32, n_layers=2, n_heads=4, d_ff=64)


def docs(*lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 256, n).astype(np.uint8) for n in lengths]


def test_rows_lay_documents_end_to_end():
    documents = docs(10, 40, 5)
    rows = data.Rows(data.Stream.of(documents), seq_len=16)  # rows of 17 tokens
    assert len(rows) == 4, f"55 tokens in rows of 17 need ceil(55/17) = 4 rows, got {len(rows)}"
    b = rows.get(np.arange(4))
    stream = np.concatenate(documents)
    flat = np.concatenate([b["inputs"], b["targets"][:, -1:]], axis=1).reshape(-1)[:55]
    np.testing.assert_array_equal(flat, stream, "rows must hold the documents in order, unchanged")
    # Row 0: document 1 at columns 0-9, document 2 from column 10: positions restart there.
    np.testing.assert_array_equal(b["segment_ids"][0], [1] * 10 + [2] * 6)
    np.testing.assert_array_equal(b["positions"][0], list(range(10)) + list(range(6)))
    # The target of column 9 is document 2's first token: not a next token of document 1.
    assert b["weights"][0, 9] == 0 and b["weights"][0, :9].all() and b["weights"][0, 10:].all()
    # Row 3 holds the last 4 tokens of document 3, then padding (segment 0, weight 0).
    np.testing.assert_array_equal(b["segment_ids"][3], [1] * 4 + [0] * 12)
    np.testing.assert_array_equal(b["weights"][3], [1] * 3 + [0] * 13)


def test_attention_never_crosses_documents():
    documents = docs(12, 20)
    b = data.Rows(data.Stream.of(documents), seq_len=MC.seq_len).get(np.array([0]))
    params = model.init(MC, jax.random.key(0))
    logits = lambda inputs: model.forward(params, jnp.asarray(inputs), MC, positions=b["positions"],
                                          segment_ids=b["segment_ids"])
    before = logits(b["inputs"])
    changed = b["inputs"].copy()
    changed[0, 3] = (changed[0, 3] + 1) % 256  # a token of document 1
    after = logits(changed)
    second = b["segment_ids"][0] == 2
    assert not np.allclose(after[0, 3:12], before[0, 3:12]), "the change must reach document 1 itself"
    np.testing.assert_array_equal(after[0, second], before[0, second],
                                  "document 2's logits changed when only document 1 did")
    # And document 2 packed behind document 1 is document 2 alone at the start of a row.
    alone = model.forward(params, jnp.asarray(documents[1][None, :20].astype(np.int32)), MC)
    # Same arithmetic on other row positions; the masked softmax may sum in another order.
    np.testing.assert_allclose(before[0, second], alone[0, :int(second.sum())], rtol=1e-5, atol=1e-5,
                               err_msg="a packed document must see exactly what it sees alone")


def test_loss_ignores_padding_and_document_ends():
    b = data.Rows(data.Stream.of(docs(12, 9)), seq_len=MC.seq_len).get(np.array([0]))
    assert b["weights"].sum() == 11 + 8, "12- and 9-token documents have 11 + 8 next-token targets"
    params = model.init(MC, jax.random.key(1))
    args = {k: jnp.asarray(b[k]) for k in ("positions", "segment_ids", "weights")}
    loss = float(model.loss_fn(params, b["inputs"], b["targets"], MC, **args))
    logits = np.asarray(model.forward(params, jnp.asarray(b["inputs"]), MC, positions=b["positions"],
                                      segment_ids=b["segment_ids"]), np.float64)[0]
    logprobs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    real = b["weights"][0] > 0
    want = -logprobs[np.arange(MC.seq_len), b["targets"][0]][real].mean()
    assert abs(loss - want) < 1e-5, f"loss {loss} vs mean over the 19 real targets {want} (float32)"
    garbage = b["targets"].copy()
    garbage[0, ~real] = 77  # whatever the padding's targets are, the loss must not change
    again = float(model.loss_fn(params, b["inputs"], garbage, MC, **args))
    assert again == loss, f"changing padding targets changed the loss: {loss} -> {again}"


def test_packing_wastes_fewer_tokens_than_padding():
    # By hand, rows of 17 tokens (16 targets): padded, the documents take 1 + 3 + 1 rows =
    # 80 target slots, of which 9 + 37 + 4 = 50 train; packed, 55 tokens take 4 rows = 64
    # slots and each row piece of m tokens trains m - 1: (9+6) + 16 + (15+0) + 3 = 49.
    padded, packed = data.padding_waste([10, 40, 5], seq_len=16)
    assert padded == pytest.approx(30 / 80) and packed == pytest.approx(15 / 64), (padded, packed)


def test_loader_is_seeded_resumable_and_covers_an_epoch():
    rows = data.Rows(data.Stream.of(docs(*[30] * 20)), seq_len=15)  # 600 tokens, 38 rows of 16
    loader = pipeline.Loader(rows, batch_size=4, seed=3)
    first = [next(iter(loader)) for _ in range(3)]
    resumed = pipeline.Loader(rows, batch_size=4, seed=3, position=2)
    np.testing.assert_array_equal(next(iter(resumed))["inputs"], first[2]["inputs"],
                                  "a loader restarted at position 2 must give batch 2")
    assert loader.state() == {"seed": 3, "position": 3}
    epoch = np.concatenate([loader.indices(i) for i in range(len(rows) // 4)])
    assert len(set(epoch)) == len(epoch), "an epoch must not repeat a row"
    other = pipeline.Loader(rows, batch_size=4, seed=4)
    assert not np.array_equal(other.indices(0), loader.indices(0)), "another seed, another order"



def test_a_batch_is_the_same_whatever_was_asked_before():
    """The loader keeps the current epoch's order: asking across epochs, out of order, must
    give what a fresh loader gives for each position (batch i from (seed, i) alone)."""
    rows = data.Rows(data.Stream.of(docs(*[30] * 20)), seq_len=15)  # 38 rows: 9 batches of 4 an epoch
    loader = pipeline.Loader(rows, batch_size=4, seed=3)
    for position in [0, 10, 1, 27, 9, 8, 18, 2]:  # epochs 0, 1, 0, 3, 1, 0, 2, 0
        fresh = pipeline.Loader(rows, batch_size=4, seed=3).indices(position)
        np.testing.assert_array_equal(loader.indices(position), fresh,
                                      f"batch {position} after other epochs' batches")

def test_placed_batch_is_the_host_batch_split_over_devices():
    rows = data.Rows(data.Stream.of(docs(*[30] * 20)), seq_len=15)
    loader = pipeline.Loader(rows, batch_size=8, seed=0)
    mesh = sharding.strategy_mesh("fsdp", jax.devices())
    placement = train.Placement(mesh, "fsdp")
    placed = pipeline.place(loader, 5, placement.batch())
    for name, host in loader.batch(5).items():
        assert placed[name].sharding.shard_shape(placed[name].shape) == (1, 15), name
        np.testing.assert_array_equal(placed[name], host, f"{name}: devices must hold the host batch")


def test_prefetch_keeps_order_and_raises_the_producers_error():
    def make(i):
        if i == 3:
            raise ValueError("bad batch 3")
        return i
    feed = pipeline.Prefetch(make, start=0, depth=2)
    try:
        assert [feed.next()[0] for _ in range(3)] == [0, 1, 2]
        with pytest.raises(ValueError, match="bad batch 3"):
            feed.next()
    finally:
        feed.close()
