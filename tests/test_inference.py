"""KV-cache inference: cached logits equal the full forward pass; batching and seeds; the CLI."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import checkpoint, inference, model, sampling, train
from shared import config as cfg
from shared.generate import __main__ as generate_cli

GQA = cfg.ModelConfig(seq_len=64, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128)
# Float32 logits of size ~1 computed by two different programs (a [S, S] causal attention
# vs a masked [S, T] one over the cache): they agree to rounding, well under 1e-5.
TOL = 1e-5
extend = jax.jit(inference.extend, static_argnames="config")


@pytest.fixture(scope="module")
def params():
    p = model.init(GQA, jax.random.key(0))
    # Random init gives logits within ~0.01 of each other; spread them so greedy argmax is not
    # decided by rounding (what the tests check is the bookkeeping, not near-ties); sampling
    # tests then use a high temperature to flatten them again.
    return {**p, "unembed": p["unembed"] * 50}


def test_cache_holds_kv_heads_only():
    cache = inference.init_cache(GQA, batch=3)
    k, v = [a.shape for a in cache.k], [a.shape for a in cache.v]
    assert k == [(3, 2, 16, 64)] * 2 and v == [(3, 2, 64, 16)] * 2, \
        f"cache: L = 2 buffers each of k [B, K, D, T] = (3, 2, 16, 64) and v [B, K, T, D] = " \
        f"(3, 2, 64, 16) with K = n_kv_heads, got k {k}, v {v}"
    assert inference.kv_bytes_per_token(GQA) == 2 * 2 * 2 * 16 * 4


def test_cached_decoding_equals_full_forward(params):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 256, (3, 40)).astype(np.int32)
    full = np.asarray(jax.jit(model.forward, static_argnums=2)(params, tokens, GQA))  # [B, S, V]
    lengths = np.array([20, 13, 7], np.int32)  # prompts of different lengths, right-padded
    prompt = np.where(np.arange(20) < lengths[:, None], tokens[:, :20], 0)
    logits, cache = extend(params, inference.init_cache(GQA, 3), prompt, lengths, config=GQA)
    for b in range(3):
        np.testing.assert_allclose(logits[b], full[b, lengths[b] - 1], atol=TOL,
                                   err_msg=f"prefill row {b}: last prompt position")
    for i in range(12):
        step = tokens[np.arange(3), lengths + i][:, None]  # [B, 1]: each row's next true token
        logits, cache = extend(params, cache, step, np.ones(3, np.int32), config=GQA)
        for b in range(3):
            np.testing.assert_allclose(logits[b], full[b, lengths[b] + i], atol=TOL,
                                       err_msg=f"decode step {i}, row {b}")
    np.testing.assert_array_equal(cache.length, lengths + 12)


def test_bfloat16_decoding_writes_its_cache_in_bfloat16_on_the_cpu(params):
    """With XLA:CPU's defaults, writing one token's keys and values into a bfloat16 cache would
    convert the whole cache to float32, write, and convert it back (float normalization)."""
    mc = dataclasses.replace(GQA, dtype="bfloat16")
    ints = np.zeros(1, np.int32)
    step = inference._jitted(mc.dtype).lower(
        inference.prepare(params, mc), inference.init_cache(mc, 1), ints[:, None], ints + 1, ints,
        ints, config=mc, temperature=0.0, top_k=None, top_p=None).compile()
    upcast = re.findall(r"= f32\[[^\]]*\]\S* (?:scatter|dynamic-update-slice)\(", step.as_text())
    assert not upcast, (f"inference's step in bfloat16: compile it with shared.compile_options; "
                        f"it writes {len(upcast)} caches in float32")


@pytest.mark.parametrize("opts", [{}, dict(temperature=10.0, top_k=50, top_p=0.95)],
                         ids=["greedy", "sampled"])
def test_a_row_does_not_depend_on_its_batch(params, opts):
    rng = np.random.default_rng(1)
    prompts = [rng.integers(0, 256, n).astype(np.int32) for n in (5, 17, 9)]
    run = lambda ps, new, seeds: inference.generate(params, GQA, ps, new, seeds=seeds, pad_to=32, **opts)
    batched = run(prompts, [8, 3, 6], [7, 8, 9])
    assert [len(x) for x in batched] == [8, 3, 6]
    for p, seed, got in zip(prompts, [7, 8, 9], batched):
        np.testing.assert_array_equal(got, run([p], len(got), [seed])[0],
                                      "a row's tokens must not depend on the other rows")
    if opts:  # sampled: the seed decides the draws
        other = run(prompts[:1], 8, [10])[0]
        assert not np.array_equal(batched[0], other), "a different seed should draw different tokens"
    else:  # greedy: the cache changes the cost, not the answer
        naive = sampling.generate(params, GQA, prompts[0], 8, temperature=0)[5:]
        np.testing.assert_array_equal(batched[0], naive, "greedy cached tokens must equal naive generation")


@pytest.mark.parametrize("impl", cfg.ATTENTIONS)
def test_decoding_with_each_attention_gives_the_full_forward_tokens(params, impl):
    """One model: ModelConfig.attention also picks the attention that reads the cache (the
    reference's where it takes no explicit positions: a pallas- or cudnn-trained checkpoint)."""
    config = dataclasses.replace(GQA, attention=impl)
    rng = np.random.default_rng(2)
    prompts = [rng.integers(0, 256, n).astype(np.int32) for n in (5, 17)]
    cached = inference.generate(params, config, prompts, 10, pad_to=32)
    for p, got in zip(prompts, cached):
        full = sampling.generate(params, GQA, p, 10, temperature=0)[len(p):]  # no cache, reference
        np.testing.assert_array_equal(got, full, f"attention {impl!r}: cached greedy tokens must "
                                                 "equal the full forward pass's")


def test_top_p_keeps_the_nucleus():
    logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
    for top_p, nucleus in ((0.75, {0, 1}), (0.85, {0, 1, 2}), (0.3, {0})):
        keys = jax.random.split(jax.random.key(0), 60)
        draws = set(np.asarray(jax.vmap(lambda k: sampling.sample_logits(logits, k, top_p=top_p))(keys)).ravel().tolist())
        assert draws == nucleus, f"top_p {top_p}: expected draws from {nucleus}, got {draws}"


def test_requests_that_do_not_fit_name_the_numbers(params):
    with pytest.raises(inference.InferenceError, match="needs 70 cache positions; the cache holds 64"):
        inference.generate(params, GQA, [np.ones(60, np.int32)], 11)
    with pytest.raises(inference.InferenceError, match="empty"):
        inference.generate(params, GQA, [np.zeros(0, np.int32)], 3)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    mc = dataclasses.replace(GQA, seq_len=32)
    tc = cfg.TrainConfig(batch_size=2, steps=1)
    path = tmp_path_factory.mktemp("cli") / "run"
    checkpoint.save_config(path, mc, tc)
    mgr = checkpoint.manager(path)
    checkpoint.save(mgr, 1, train.init_state(mc, tc))
    mgr.wait_until_finished()
    return path


def test_cli_prompt_file_kv_cache_equals_naive(run_dir, tmp_path, capsys):
    path = tmp_path / "prompts.txt"
    path.write_text("def a(\n" + "x" * 40 + "\nclass B:\n")
    common = ["--checkpoint", str(run_dir), "--prompt-file", str(path), "--max-new-tokens", "6",
              "--temperature", "0"]
    assert generate_cli.main(common + ["--naive"]) == 1, "a rejected prompt makes the exit status 1"
    naive_out, naive_err = capsys.readouterr()
    assert generate_cli.main(common + ["--kv-cache"]) == 1
    out, err = capsys.readouterr()
    assert out == naive_out, "greedy --kv-cache must print what --naive prints"
    assert out.count("--- prompt") == 3 and "def a(" in out and "class B:" in out, out
    assert err.strip() == "error: prompt 2: the prompt is 40 tokens, longer than the context of 32", err
    assert "prompt 2 is 40 tokens (bytes), longer than the model's context of 32" in naive_err


def test_cli_bad_inputs(run_dir, tmp_path, capsys):
    path = tmp_path / "empty.txt"
    path.write_text("\n\n")
    for argv, message in ((["--prompt-file", str(path)], "holds no prompts"),
                          (["--prompt-file", str(tmp_path / "none.txt")], "does not exist"),
                          (["--prompt", "a", "--top-p", "1.5"], "--top-p must be in (0, 1]"),
                          (["--prompt", "", "--kv-cache"], "the prompt is empty")):
        assert generate_cli.main(["--checkpoint", str(run_dir), *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, f"{argv}: {err!r}"
