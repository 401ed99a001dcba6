"""Serving and benchmarks survive what a new user does: bfloat16 on a CPU at batch > 1, a
generation longer than the context, NaN temperatures, a damaged or read-only checkpoint,
every benchmark's bad flags, sequence lengths the attention blocks do not divide. Each bad
input ends in one line and a non-zero exit, before any long work.

The whole file runs in under a minute on 2 CPU cores: the models are tiny and every command
runs in-process (its main()).
"""

import dataclasses
import time

import jax
import numpy as np
import pytest

from shared import attention as attn
from shared import checkpoint, engine, inference, model, paged
from shared import config as cfg

# ---- 1. bfloat16 decoding on a CPU, grouped-query attention, batch 1, 2, 4 ------------------

F32 = cfg.ModelConfig(seq_len=32, d_model=32, n_layers=1, n_heads=4, n_kv_heads=2, d_ff=64)
BF16 = dataclasses.replace(F32, dtype="bfloat16")
NEW = 8
# Measured (2-core CPU, jax 0.10.2): the bfloat16 runs gave the float32 run's greedy tokens at
# 100% of positions, in generate and in the engine (contiguous and paged) at batch 1, 2 and 4.
# The test asks for 90%: bfloat16 may round a near-tie the other way, and one different token
# changes every later one.
AGREEMENT = 0.9


@pytest.fixture(scope="module")
def spread_params():
    p = model.init(F32, jax.random.key(0))
    # Spread the logits (random init puts them within ~0.01), as tests/test_engine.py does, so
    # greedy argmax is decided by the model rather than by bfloat16's rounding.
    return {**p, "unembed": p["unembed"] * 50}


PROMPTS = [np.random.default_rng(0).integers(0, 256, n).astype(np.int32) for n in (5, 11, 3, 17)]


@pytest.fixture(scope="module")
def f32_tokens(spread_params):
    return inference.generate(spread_params, F32, PROMPTS, NEW)


def _agreement(got, want) -> float:
    return float(np.mean(np.concatenate(got) == np.concatenate(want[:len(got)])))


@pytest.mark.parametrize("batch", [1, 2, 4])
def test_bfloat16_generate_at_batch(batch, spread_params, f32_tokens):
    got = inference.generate(spread_params, BF16, PROMPTS[:batch], NEW)
    assert [len(t) for t in got] == [NEW] * batch
    assert _agreement(got, f32_tokens) >= AGREEMENT


@pytest.mark.parametrize("kv", ["contiguous", "paged"])
@pytest.mark.parametrize("slots", [1, 2, 4])
def test_bfloat16_engine_with_slots(kv, slots, spread_params, f32_tokens):
    store = (engine.ContiguousKV(BF16, slots) if kv == "contiguous"
             else paged.PagedKV(BF16, slots, page=8))
    eng = engine.Engine(spread_params, BF16, kv=store, buckets=(BF16.seq_len,))
    done = {c.id: c for c in eng.run([engine.Request(i, p, NEW) for i, p in enumerate(PROMPTS)])}
    assert all(not c.error for c in done.values()), [c.error for c in done.values()]
    assert _agreement([done[i].tokens for i in range(4)], f32_tokens) >= AGREEMENT


# ---- 2. python -m shared.generate: limits, NaN temperatures, damaged and read-only folders ------

RUN_MC = cfg.ModelConfig(seq_len=32, d_model=32, n_layers=1, n_heads=2, d_ff=64)



@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A run folder with checkpoints at steps 2 and 4 (initial weights: no training needed)."""
    from shared.train.step import init_state
    tc = cfg.TrainConfig(batch_size=2, steps=4)
    path = tmp_path_factory.mktemp("gen") / "run"
    checkpoint.save_config(path, RUN_MC, tc)
    mgr = checkpoint.manager(path)
    state = init_state(RUN_MC, tc)
    for step in (2, 4):
        checkpoint.save(mgr, step, state)
    checkpoint.wait(mgr)
    return path


def _copy_run(saved_run, tmp_path, *, delete_manifests=()):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(saved_run, run)
    for step in delete_manifests:
        (run / "checkpoints" / str(step) / "state" / "manifest.ocdbt").unlink()
    return run


@pytest.mark.parametrize("extra, words", [
    ([], ["--max-new-tokens 1000000000", "naive path's limit of 512", "16 contexts of 32"]),
    (["--kv-cache"], ["a prompt of 4 tokens leaves room for 29 new ones", "context of 32",
                      "at most 29"]),
])
def test_generate_refuses_more_tokens_than_the_context_allows(saved_run, one_line_error, extra, words):
    from shared.generate import __main__ as generate_cli
    start = time.perf_counter()
    code = generate_cli.main(["--checkpoint", str(saved_run), "--prompt", "def ",
                              "--max-new-tokens", "1000000000", *extra])
    assert code == 2
    one_line_error(*words)
    assert time.perf_counter() - start < 10, "refused only after work"


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_generate_refuses_a_temperature_that_is_not_a_number_at_least_0(saved_run, one_line_error, value):
    from shared.generate import __main__ as generate_cli
    assert generate_cli.main(["--checkpoint", str(saved_run), "--prompt", "x",
                              "--temperature", value]) == 2
    one_line_error("--temperature must be a number >= 0")


def test_generate_on_a_read_only_folder_with_a_damaged_checkpoint_is_one_line(
        saved_run, tmp_path, capsys, read_only):
    from shared.generate import __main__ as generate_cli
    run = _copy_run(saved_run, tmp_path, delete_manifests=[4])
    with read_only(run):
        code = generate_cli.main(["--checkpoint", str(run), "--prompt", "x", "--max-new-tokens", "2"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot use") and "writable" in err[0], err
    assert (run / "checkpoints" / "4").is_dir(), "nothing may be moved out of a read-only folder"


def test_generate_says_a_damaged_checkpoint_in_one_line_and_uses_the_one_before(saved_run, tmp_path, capsys):
    from shared.generate import __main__ as generate_cli
    run = _copy_run(saved_run, tmp_path, delete_manifests=[4])
    assert generate_cli.main(["--checkpoint", str(run), "--prompt", "x", "--max-new-tokens", "2"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: checkpoint 4 is damaged"), err
    assert (run / "damaged" / "4").is_dir()


def test_generate_with_every_manifest_deleted_ends_in_one_line_and_no_traceback(saved_run, tmp_path):
    """The command line (a subprocess: the tracebacks came from orbax's and tensorstore's
    threads, at the end of the process) prints a warning per damaged step and one error."""
    import subprocess
    import sys
    run = _copy_run(saved_run, tmp_path, delete_manifests=[2, 4])
    proc = subprocess.run([sys.executable, "-m", "shared.generate", "--checkpoint", str(run),
                           "--prompt", "x", "--max-new-tokens", "2"],
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Event loop is closed" not in proc.stderr, proc.stderr
    assert lines[-1].startswith("error: every checkpoint") and \
        all(line.startswith("warning: checkpoint") for line in lines[:-1]), lines


# ---- 3. every benchmark checks its flags before any JAX work ------------------------------------

BAD_BENCH_FLAGS = [
    (["train", "--preset", "huge"], "valid presets: tiny"),
    (["train", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "--steps", "0"], "--steps must be >= 1"),
    (["train", "--attention", "fast"], "is not one of reference"),
    (["train", "--profile", "-1"], "--profile must be >= 0"),
    (["attention", "--runs", "0"], "--runs must be >= 1"),
    (["attention", "--sizes", "128", "0"], "--sizes must be >= 1"),
    (["attention", "--heads", "6", "--kv-heads", "4"], "multiple of --kv-heads 4"),
    (["attention", "--memory-fraction", "nan"], "--memory-fraction must be in (0, 1]"),
    (["sharding", "--devices", "0"], "power of two from 2 to 512"),
    (["sharding", "--devices", "3"], "power of two from 2 to 512 (2, 4, 8"),
    (["sharding", "--model", "16"], "must divide --devices 8"),
    (["sharding", "--runs", "0"], "--runs must be >= 1"),
    (["inference", "--new-tokens", "0"], "--new-tokens must be >= 1"),
    (["inference", "--requests", "0"], "--requests must be >= 1"),
    (["inference", "--checkpoint", "no/such/run"], "no/such/run does not exist"),
    (["serving", "--slots", "0"], "--slots must be >= 1"),
    (["serving", "--max-len", "20"], "multiple of 16"),
    (["serving", "--checkpoint", "."], "not a run folder"),
    (["roofline", "--runs", "0"], "--runs must be >= 1"),
    (["roofline", "--out", "."], "is a folder"),
    (["kernels", "--sizes", "0"], "--sizes must be >= 1"),
    (["speculative", "--prompts", "0"], "--prompts must be >= 1"),
    (["speculative", "--new-tokens", "0"], "--new-tokens must be >= 1"),
]


@pytest.mark.parametrize("argv, words", BAD_BENCH_FLAGS, ids=[" ".join(a) for a, _ in BAD_BENCH_FLAGS])
def test_a_benchmarks_bad_flag_is_one_line_before_any_jax_work(argv, words, one_line_error, monkeypatch):
    from shared.bench import __main__ as bench_cli

    def no_jax_yet(*a, **k):
        raise AssertionError("the benchmark started JAX work before checking its flags")

    monkeypatch.setattr(jax, "devices", no_jax_yet)
    assert bench_cli.main(argv) == 2
    one_line_error(words)


# ---- 4. attention at lengths its blocks do not divide, and segment_ids of the wrong length -------

def test_every_attention_name_is_a_config_name_and_others_are_refused():
    assert set(attn.IMPLEMENTATIONS) == set(cfg.ATTENTIONS)
    with pytest.raises(cfg.ConfigError, match="attention must be one of reference, dense"):
        dataclasses.replace(F32, attention="flash").validate()


@pytest.mark.parametrize("n, preferred, pow2, want", [
    (192, 256, False, (192, 192)), (192, 128, True, (64, 192)), (300, 256, False, (64, 320)),
    (300, 128, True, (64, 320)), (100, 128, True, (128, 128)), (4096, 256, False, (256, 4096))])
def test_tile_divides_or_pads(n, preferred, pow2, want):
    assert attn.tile(n, preferred, pow2=pow2) == want


TILE_MC = cfg.ModelConfig(seq_len=192, d_model=16, n_layers=1, n_heads=2, n_kv_heads=1, d_ff=32)
# Measured (2-core CPU): outputs within 6e-7 and gradients within 6e-6 of the reference's, in
# float32, at S = 192 and 300 with and without segment ids; the test allows 1e-4 and 1e-3.
ATOL_LOSS, ATOL_GRAD = 1e-4, 1e-3


def _loss_and_grads(S: int, impl: str):
    """Loss and gradients of the tiny model on one row of S tokens in three packed documents."""
    tokens = np.random.default_rng(S).integers(0, 256, (1, S + 1)).astype(np.int32)
    seg = np.repeat(np.arange(3), [S // 3, S // 3, S - 2 * (S // 3)])[None].astype(np.int32)
    mc = dataclasses.replace(TILE_MC, seq_len=S, attention=impl).validate()
    params = model.init(mc, jax.random.key(0))
    step = jax.jit(jax.value_and_grad(lambda p: model.loss_fn(p, tokens[:, :-1], tokens[:, 1:], mc,
                                                              segment_ids=seg)))
    return step(params)


_REFERENCE: dict = {}


@pytest.mark.parametrize("S", [192, 300])
@pytest.mark.parametrize("impl", sorted(set(cfg.ATTENTIONS) - {"reference", *attn.GPU_ONLY}))
def test_training_through_every_attention_at_lengths_no_block_divides(impl, S):
    """S = 192: pallas's 128-query block does not divide it; S = 300 = 4 x 75: no power of two
    >= 16 divides it, so blockwise and pallas pad and mask. Loss and gradients are the reference's."""
    if S not in _REFERENCE:
        _REFERENCE[S] = _loss_and_grads(S, "reference")
    (want_loss, want), (loss, got) = _REFERENCE[S], _loss_and_grads(S, impl)
    assert abs(float(loss) - float(want_loss)) < ATOL_LOSS
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, atol=ATOL_GRAD)


@pytest.mark.parametrize("impl", sorted(cfg.ATTENTIONS))
def test_segment_ids_of_the_wrong_length_is_one_line_naming_both_shapes(impl):
    q = np.zeros((2, 64, 4, 8), np.float32)
    k = np.zeros((2, 64, 2, 8), np.float32)
    seg = np.zeros((2, 60), np.int32)
    for call in (lambda: attn.attention(q, k, k, segment_ids=seg, impl=impl),
                 lambda: attn.implementation(impl)(q, k, k, segment_ids=seg)):  # called directly
        with pytest.raises(attn.AttentionError) as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message and "(2, 60)" in message and "64" in message, message
