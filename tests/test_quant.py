"""int8 weights: rounding bounds, the quantized matmuls against numpy, bytes saved, and quality."""


import jax
import jax.numpy as jnp
import numpy as np

from shared import data, inference, model, quant, train
from shared import config as cfg
from shared.bench.inference import compare

MICRO = cfg.ModelConfig(seq_len=32, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=256)


def test_quantize_round_trip_is_within_half_a_step():
    w = jax.random.normal(jax.random.key(0), (3, 64, 4, 8))  # [L, E, H, D]
    t = quant.quantize(w, contracted=1, leading=1)
    assert t.q.dtype == jnp.int8 and t.scale.shape == (3, 1, 4, 8)
    np.testing.assert_allclose(t.scale[:, 0], np.abs(w).max(axis=1) / 127, rtol=1e-6)
    err = np.abs(quant.dequantize(t) - w)
    assert (err <= t.scale / 2 * (1 + 1e-5)).all(), "rounding to the nearest step errs by at most half a step"


def test_matmul_of_int8_weights_equals_einsum_with_dequantized_weights():
    x = jax.random.normal(jax.random.key(1), (2, 5, 4, 8))  # [B, S, H, D]
    w = quant.quantize(jax.random.normal(jax.random.key(2), (4, 8, 64)), contracted=2)  # wo [H, D, E]
    got = model.matmul("BSHD,HDE->BSE", x, w)
    want = np.einsum("bshd,hde->bse", np.asarray(x, np.float64), np.asarray(quant.dequantize(w), np.float64))
    # Sums of 32 products of size ~1: float32 rounding is ~1e-6 of the result.
    np.testing.assert_allclose(got, want, atol=1e-5, err_msg="(x @ q) * scale must equal x @ (q * scale)")


def test_int8_matmul_accumulates_exactly_in_int32():
    x = jax.random.normal(jax.random.key(3), (4, 256))
    w = quant.quantize(jax.random.normal(jax.random.key(4), (256, 16)), contracted=1)
    got = np.asarray(quant.int8_matmul(x, w))
    sx = np.abs(np.asarray(x)).max(-1, keepdims=True) / 127
    xq = np.clip(np.round(np.asarray(x) / sx), -127, 127).astype(np.int64)
    want = (xq @ np.asarray(w.q, np.int64)) * sx * np.asarray(w.scale)  # exact integer sum, then scale
    np.testing.assert_allclose(got, want, rtol=1e-6, err_msg="int32 sum of int8 products is exact")
    full = np.asarray(x) @ np.asarray(quant.dequantize(w))
    rel = np.abs(got - full).max() / np.abs(full).max()
    assert rel < 0.02, f"int8 x int8 vs float: relative error {rel:.3f}, expected < 2% (two 8-bit roundings)"


def test_int8_weights_take_a_quarter_of_the_bytes():
    params = jax.eval_shape(lambda: model.init(cfg.preset("small").model, jax.random.key(0)))
    q = jax.eval_shape(quant.quantize_params, params)
    ratio = quant.matmul_bytes(params) / quant.matmul_bytes(q)
    # 1 byte instead of 4 per weight, plus one float32 scale per output channel (~E times fewer).
    assert 3.9 < ratio <= 4.0, f"matmul weights should shrink ~4x from float32, got {ratio:.2f}x"


def test_int8_model_generates_and_loses_little_quality():
    text = "".join(f"def f{i % 7}(x):\n    return x * {i % 5} + {i % 3}\n" for i in range(300))
    corpus = data.split(np.frombuffer(text.encode(), np.uint8).copy(), MICRO.seq_len)
    # 30 steps at a high learning rate reach ~0.7 nats on this repetitive text (random: 5.5).
    tc = cfg.TrainConfig(batch_size=8, steps=30, lr=1e-2, warmup_steps=5)
    state, step = train.init_state(MICRO, tc), train.make_train_step(MICRO, tc)
    for i in range(tc.steps):
        state, _ = step(state, *data.batch(corpus.train, tc.batch_size, MICRO.seq_len, 0, i))
    params, val = state["params"], corpus.val
    c = compare(params, MICRO, val, batches=2)
    # 8-bit weights perturb each logit by ~1% of its size; on a trained model that moves the
    # loss by a few thousandths of a nat. 0.05 nats is a margin well above that and well below
    # the gap between a trained and an untrained model (> 3 nats here).
    print(c)
    assert abs(c.int8_loss - c.float_loss) < 0.05, str(c)
    assert c.float_loss < 2.0, f"the model should have learned something: {c}"
    prompt = data.encode("def f3(x):")
    q = inference.generate(quant.quantize_params(params), MICRO, [prompt], 12)[0]
    f = inference.generate(params, MICRO, [prompt], 12)[0]
    agree = (q == f).mean()
    assert agree >= 0.5, f"int8 and float greedy continuations agree on {agree:.0%} of tokens, expected most"
