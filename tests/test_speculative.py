"""Speculative decoding: greedy output equals the target's own, whatever the draft; rollback
is a length change; verify gives the full forward pass's logits at every position."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import inference, model, speculative
from shared import config as cfg

TARGET = cfg.ModelConfig(seq_len=64, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128,
                         **cfg.FAST)
DRAFT = cfg.ModelConfig(seq_len=64, d_model=32, n_layers=1, n_heads=2, d_ff=64, **cfg.FAST)
TOL = 1e-5
extend = jax.jit(inference.extend, static_argnames="config")
verify = jax.jit(speculative.verify, static_argnames="config")


def spread(p):
    # Random init gives logits within ~0.01 of each other; spread them so that greedy argmax
    # is not decided by rounding (one k + 1 pass and k + 1 single steps are different programs).
    return {**p, "unembed": p["unembed"] * 50}


@pytest.fixture(scope="module")
def target():
    return spread(model.init(TARGET, jax.random.key(0)))


def drafts(target):
    """name -> (params, config, expected acceptance: 0, 1, or None for in between)."""
    w = target["unembed"]
    noisy = {**target, "unembed": w + 0.3 * jnp.std(w) * jax.random.normal(jax.random.key(2), w.shape)}
    return {
        "smaller": (spread(model.init(DRAFT, jax.random.key(1))), DRAFT, None),
        "always wrong": ({**target, "unembed": -target["unembed"]}, TARGET, 0.0),  # proposes the argmin
        "equal": (target, TARGET, 1.0),
        "noisy": (noisy, TARGET, "partial"),
    }


@pytest.mark.parametrize("k", [1, 2, 4])
def test_greedy_output_is_the_targets_own(target, k):
    rng = np.random.default_rng(k)
    prompt = rng.integers(0, 256, 9).astype(np.int32)
    n = 24
    want = inference.generate(target, TARGET, [prompt], n)[0]
    for name, (params, config, acceptance) in drafts(target).items():
        got, stats = speculative.generate(target, TARGET, params, config, prompt, n, k=k)
        np.testing.assert_array_equal(got, want, f"k={k}, draft {name}: tokens differ from "
                                                 "the target's own greedy decoding")
        assert stats.produced == stats.accepted + stats.rounds
        if acceptance == 0.0:
            assert stats.accepted == 0 and stats.rounds == n - 1, \
                f"k={k}: a draft that is always wrong should give one token per round, got {stats}"
        elif acceptance == 1.0:
            assert stats.acceptance == 1.0 and stats.tokens_per_pass == k + 1, \
                f"k={k}: a draft equal to the target should have every token accepted, got {stats}"
        elif acceptance == "partial":
            assert 0 < stats.acceptance < 1, f"k={k}: the noisy draft should be partly right, got {stats}"


def test_verify_gives_every_positions_logits(target):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 256, (2, 20)).astype(np.int32)
    full = np.asarray(jax.jit(model.forward, static_argnums=2)(target, tokens, TARGET))  # [B, S, V]
    cache = inference.init_cache(TARGET, 2)
    _, cache = extend(target, cache, tokens[:, :15], np.full(2, 15, np.int32), config=TARGET)
    logits, cache = verify(target, cache, tokens[:, 15:], config=TARGET)
    np.testing.assert_allclose(logits, full[:, 15:], atol=TOL * 50,  # logits spread 50x
                               err_msg="verify's logits at each of the S positions")
    np.testing.assert_array_equal(cache.length, [20, 20])


def test_rollback_is_a_length_change(target):
    """Rejected tokens left past the length are never read: after rolling back, the next
    step's logits equal those of a cache that never saw them."""
    rng = np.random.default_rng(3)
    prompt = rng.integers(0, 256, (1, 10)).astype(np.int32)
    ten = np.array([10], np.int32)
    _, clean = extend(target, inference.init_cache(TARGET, 1), prompt, ten, config=TARGET)
    _, dirty = extend(target, inference.init_cache(TARGET, 1), prompt, ten, config=TARGET)
    _, dirty = verify(target, dirty, rng.integers(0, 256, (1, 5)).astype(np.int32), config=TARGET)
    assert int(dirty.length[0]) == 15 and not all(map(np.array_equal, dirty.k, clean.k))
    dirty = speculative.rollback(dirty, ten)
    step = np.array([[7, 8]], np.int32)
    a, _ = verify(target, clean, step, config=TARGET)
    b, _ = verify(target, dirty, step, config=TARGET)
    np.testing.assert_array_equal(a, b, "logits after a rollback must not see the rolled-back tokens")


def test_requests_that_do_not_fit_name_the_numbers(target):
    prompt = np.arange(10, dtype=np.int32)
    with pytest.raises(inference.InferenceError, match="cache positions"):
        speculative.generate(target, TARGET, target, TARGET, prompt, 52, k=4)  # 10 + 52 + 4 - 1 > 64
    with pytest.raises(inference.InferenceError, match="k"):
        speculative.generate(target, TARGET, target, TARGET, prompt, 8, k=0)


def test_bench_rejects_bad_ks_in_one_line(capsys):
    from shared.bench.__main__ import main
    assert main(["speculative", "--ks", "1,0"]) == 2
    assert "--ks must be >= 1" in capsys.readouterr().err
