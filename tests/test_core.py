"""The core: config, tokenizer and corpus, model, training, checkpoints, sampling, CLIs."""

import dataclasses
import math
import subprocess
import sys
import sysconfig
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import checkpoint, data, hardware, model, sampling, train
from shared import config as cfg
from shared.course.jaxprs import sub_jaxprs
from shared.generate import __main__ as generate_cli
from shared.train import __main__ as train_cli

MICRO = cfg.ModelConfig(seq_len=32, d_model=64, n_layers=2, n_heads=4, d_ff=256)
MICRO_TRAIN = cfg.TrainConfig(batch_size=8, steps=12, lr=3e-3, warmup_steps=2, eval_every=6,
                              eval_batches=2, checkpoint_every=3)
TEXT = "".join(f"def f{i % 7}(x):\n    return x * {i % 5} + {i % 3}\n" for i in range(400))


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    return str(path)


# ---- config ----

@pytest.mark.parametrize("change, field", [
    (dict(d_model=100, n_heads=6), "d_model"), (dict(seq_len=0), "seq_len"),
    (dict(n_kv_heads=4, n_heads=6, d_model=384), "n_kv_heads"), (dict(dtype="float16"), "dtype")])
def test_config_validation_names_the_field(change, field):
    with pytest.raises(cfg.ConfigError, match=field):
        dataclasses.replace(MICRO, **change).validate()


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(cfg.ConfigError, match="tiny, small"):
        cfg.preset("huge")


def test_presets_have_their_stated_sizes():
    params = jax.eval_shape(lambda: model.init(cfg.preset("small").model, jax.random.key(0)))
    small = model.param_count(params)
    assert 10e6 < small < 11e6, f"small preset should be ~10.8M parameters like nanoGPT's, got {small:,}"
    for name, low, high in (("125m", 100e6, 150e6), ("1b", 0.8e9, 1.3e9)):
        n = model.param_count(jax.eval_shape(lambda: model.init(cfg.preset(name).model, jax.random.key(0))))
        assert low < n < high, f"{name} preset has {n:,} parameters, expected {low:,.0f}..{high:,.0f}"


# ---- tokenizer and corpus ----

@pytest.mark.parametrize("text", ["", "hello", "naïve café — 漢字 🙂\n\t\x00"])
def test_tokenizer_round_trip(text):
    tokens = data.encode(text)
    assert tokens.dtype == np.uint8 and data.decode(tokens) == text


def test_default_corpus_is_stdlib_without_tests():
    files = data.stdlib_files()
    assert files == sorted(files), "corpus files must be in sorted order for determinism"
    assert not any({"test", "tests", "site-packages"} & set(f.parts) for f in files)
    assert any(f.name == "functools.py" for f in files)
    root = Path(sysconfig.get_paths()["stdlib"])  # every .py below it, filtered after the walk
    skip = {"test", "tests", "idle_test", "site-packages", "dist-packages"}
    expected = sorted(p for p in root.rglob("*.py") if not skip & set(p.relative_to(root).parts[:-1]))
    assert files == expected, f"{len(files)} corpus files, expected {len(expected)}"


def test_bad_corpus_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "bin.dat").write_bytes(b"abc\0def")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    (tmp_path / "short.txt").write_text("abc")
    cases = [(tmp_path / "missing", "does not exist"), (tmp_path / "empty.txt", "empty"),
             (tmp_path / "bin.dat", "binary"), (tmp_path / "latin1.txt", "not UTF-8")]
    for path, message in cases:
        with pytest.raises(data.DataError, match=message):
            data.load_corpus(path)
    with pytest.raises(data.DataError, match="too few"):
        data.split(data.load_corpus(tmp_path / "short.txt"), seq_len=32)


def test_batches_are_shifted_and_deterministic():
    tokens = np.arange(1000, dtype=np.uint16) % 256
    x, y = data.batch(tokens, 4, 16, seed=3, step=7)
    assert x.shape == y.shape == (4, 16) and x.dtype == np.int32
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    np.testing.assert_array_equal(x, data.batch(tokens, 4, 16, seed=3, step=7)[0])
    assert not np.array_equal(x, data.batch(tokens, 4, 16, seed=3, step=8)[0])


# ---- model ----

def test_causality():
    params = model.init(MICRO, jax.random.key(0))
    tokens = jax.random.randint(jax.random.key(1), (2, MICRO.seq_len), 0, 256)
    changed = tokens.at[:, 20].set((tokens[:, 20] + 1) % 256)
    a, b = model.forward(params, tokens, MICRO), model.forward(params, changed, MICRO)
    np.testing.assert_array_equal(a[:, :20], b[:, :20], "positions before 20 must not see token 20")
    assert not np.allclose(a[:, 20:], b[:, 20:]), "positions from 20 on must see token 20"


def test_loss_at_init_is_near_uniform():
    params = model.init(MICRO, jax.random.key(0))
    x = jax.random.randint(jax.random.key(1), (4, MICRO.seq_len), 0, 256)
    loss = float(model.loss_fn(params, x, jnp.roll(x, -1, axis=1), MICRO))
    # Small init makes logits near 0, so the loss is near ln(256) = 5.545; 0.1 allows their spread.
    assert abs(loss - math.log(256)) < 0.1, f"loss at init {loss:.3f}, expected ln 256 = 5.545 +- 0.1"


def test_matmul_param_count_matches_the_parameters():
    params = model.init(MICRO, jax.random.key(0))
    non_matmul = params["embed"].size + params["final_norm"].size + \
        params["blocks"]["attn_norm"].size + params["blocks"]["mlp_norm"].size
    assert model.matmul_param_count(MICRO) == model.param_count(params) - non_matmul


@pytest.mark.parametrize("spec, x_shape, w_shape", [
    ("BSE,EHD->BSHD", (2, 8, 16), (16, 4, 8)), ("BSHD,HDE->BSE", (2, 8, 4, 8), (4, 8, 16))])
def test_bfloat16_matmul_backward_multiplies_bfloat16_on_the_cpu(spec, x_shape, w_shape):
    """The gradients of a bfloat16 weight matmul are the float32 einsum's, and on the CPU
    all three matmuls take bfloat16 operands (autodiff's backward would take float32 ones)."""
    x = jax.random.normal(jax.random.key(0), x_shape, jnp.bfloat16)
    w = jax.random.normal(jax.random.key(1), w_shape, jnp.bfloat16)
    loss = lambda mm: lambda x, w: jnp.sum(mm(spec, x, w).astype(jnp.float32) ** 2)
    got = jax.grad(loss(model.matmul), (0, 1))(x, w)
    want = jax.grad(loss(jnp.einsum), (0, 1))(x.astype(jnp.float32), w.astype(jnp.float32))
    for g, r in zip(got, want):
        assert g.dtype == jnp.bfloat16
        assert float(jnp.max(jnp.abs(g - r)) / jnp.max(jnp.abs(r))) < 0.02
    jaxpr = jax.make_jaxpr(jax.grad(loss(model.matmul), (0, 1)))(x, w).jaxpr
    dots = [e for j in [jaxpr, *(s for e in jaxpr.eqns for s in sub_jaxprs(e))] for e in j.eqns
            if e.primitive.name == "dot_general"]
    assert len(dots) >= 3, "the forward matmul and its two backward matmuls"
    assert all(v.aval.dtype == jnp.bfloat16 for e in dots for v in e.invars), \
        [[v.aval.dtype for v in e.invars] for e in dots]


@pytest.mark.parametrize("spec, x_shape, w_shape", [
    ("BSE,EHD->BSHD", (1, 1, 16), (16, 4, 8)), ("BSHD,HDE->BSE", (1, 1, 4, 8), (4, 8, 16))])
def test_bfloat16_matmul_of_one_row_runs_as_two_on_the_cpu(spec, x_shape, w_shape):
    """A batch-1 decode step's bfloat16 matmul: the float32 einsum's value, computed by a dot
    of two rows (XLA:CPU's one-row bfloat16 dot is a loop ~10x slower than its matmul)."""
    x = jax.random.normal(jax.random.key(0), x_shape, jnp.bfloat16)
    w = jax.random.normal(jax.random.key(1), w_shape, jnp.bfloat16)
    got = model.matmul(spec, x, w)
    want = jnp.einsum(spec, x.astype(jnp.float32), w.astype(jnp.float32))
    assert got.shape == want.shape and got.dtype == jnp.bfloat16
    assert float(jnp.max(jnp.abs(got - want)) / jnp.max(jnp.abs(want))) < 0.01
    jaxpr = jax.make_jaxpr(lambda x, w: model.matmul(spec, x, w))(x, w).jaxpr
    dots = [e for j in [jaxpr, *(s for e in jaxpr.eqns for s in sub_jaxprs(e))] for e in j.eqns
            if e.primitive.name == "dot_general"]
    assert [e.invars[0].aval.shape[0] for e in dots] == [2], "one dot, of two rows"


def test_training_beats_unigram_entropy(tmp_path, corpus):
    tc = dataclasses.replace(MICRO_TRAIN, steps=150, eval_every=150, checkpoint_every=150)
    result = train.train(MICRO, tc, tmp_path / "run", data_path=corpus, progress=False)
    val = result.history[-1]["val_loss"]
    unigram = data.unigram_entropy(data.load_corpus(corpus))
    # The corpus is highly predictable from context, so a model that uses context must get
    # well under the best context-free loss.
    assert val < 0.5 * unigram, f"validation loss {val:.3f} should be < half the unigram entropy {unigram:.3f}"


# ---- checkpoints and resume ----

def test_checkpoint_round_trip_is_exact(tmp_path):
    state = train.init_state(MICRO, MICRO_TRAIN)
    mgr = checkpoint.manager(tmp_path)
    checkpoint.save(mgr, 5, state)
    mgr.wait_until_finished()
    step, restored = checkpoint.restore(mgr, train.init_state(MICRO, dataclasses.replace(MICRO_TRAIN, seed=1)))
    assert step == 5
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
        np.testing.assert_array_equal(a, b)


def test_load_params_reads_the_parameters_alone(tmp_path):
    state = train.init_state(MICRO, MICRO_TRAIN)
    checkpoint.save_config(tmp_path, MICRO, MICRO_TRAIN)
    mgr = checkpoint.manager(tmp_path)
    checkpoint.save(mgr, 3, state)
    mgr.wait_until_finished()
    mc, params = train.load_params(tmp_path)
    assert mc == MICRO
    assert jax.tree.structure(params) == jax.tree.structure(state["params"]), "the parameters, nothing else"
    for a, b in zip(jax.tree.leaves(state["params"]), jax.tree.leaves(params)):
        assert isinstance(b, jax.Array)
        np.testing.assert_array_equal(a, b)


def test_throughput_meter_counts_tokens_and_mfu_over_an_interval():
    chip = hardware.Chip(name="test chip", peak_flops={"float32": 1e12}, memory_bw=1e11)
    meter = train.Throughput(tokens_per_step=100, flops_per_step=4e9, chip=chip, dtype="float32", devices=2)
    assert meter.read() is None, "no interval started"
    meter.start()
    assert meter.read() is None, "an interval without steps has no rate"
    meter.count(3)
    rate = meter.read()
    steps_per_s = rate.tokens_per_s / 100
    # 3 steps of 4 GFLOP over 2 devices of 1 TFLOP/s each: MFU = steps/s * 4e9 / 2e12.
    assert rate.mfu == pytest.approx(steps_per_s * 4e9 / 2e12)
    assert meter.running and meter.read() is None, "read() opens the next interval"
    meter.count()
    meter.pause()
    assert meter.read() is None, "a paused interval is dropped"
    unknown = train.Throughput(100, 4e9, chip, dtype="bfloat16")  # no bfloat16 peak: no MFU
    unknown.start()
    unknown.count()
    assert unknown.read().mfu is None


def test_resumed_run_is_bitwise_equal(tmp_path, corpus):
    whole = train.train(MICRO, MICRO_TRAIN, tmp_path / "whole", data_path=corpus, progress=False)
    train.train(MICRO, MICRO_TRAIN, tmp_path / "split", data_path=corpus, stop_after=6, progress=False)
    resumed = train.train(MICRO, MICRO_TRAIN, tmp_path / "split", data_path=corpus, resume=True,
                          progress=False)
    for a, b in zip(jax.tree.leaves(whole.state), jax.tree.leaves(resumed.state)):
        np.testing.assert_array_equal(a, b, "resumed run must end bitwise equal on the CPU")


# ---- sampling ----

def test_sampling_rules():
    logits = jnp.log(jnp.array([[0.1, 0.5, 0.3, 0.1]]))
    assert int(sampling.sample_logits(logits, jax.random.key(0), temperature=0)[0]) == 1
    draws = [int(sampling.sample_logits(logits, jax.random.key(i), top_k=2)[0]) for i in range(50)]
    assert set(draws) <= {1, 2}, f"top-2 sampling drew {set(draws)}, outside the two likeliest"
    cold = [int(sampling.sample_logits(logits, jax.random.key(i), temperature=0.05)[0]) for i in range(20)]
    assert cold.count(1) == 20, "near-zero temperature should always pick the likeliest"


def test_generate_extends_the_prompt_greedily():
    params = model.init(MICRO, jax.random.key(0))
    prompt = data.encode("def f(")
    out = sampling.generate(params, MICRO, prompt, 5, temperature=0)
    assert len(out) == len(prompt) + 5 and list(out[:len(prompt)]) == list(prompt)
    logits = model.forward(params, jnp.array(out[None, :-1]), MICRO)
    assert int(jnp.argmax(logits[0, -1])) == out[-1], "greedy token must be the argmax of the full forward"


# ---- command lines ----

def run_train_cli(capsys, *argv):
    code = train_cli.main(list(argv))
    return code, capsys.readouterr().err


def test_train_cli_bad_inputs(tmp_path, corpus, capsys):
    out = str(tmp_path)
    code, err = run_train_cli(capsys, "--preset", "huge", "--out", out)
    assert code == 2 and "valid presets: tiny" in err
    code, err = run_train_cli(capsys, "--data", str(tmp_path / "nope.txt"), "--out", out)
    assert code == 2 and "does not exist" in err
    code, err = run_train_cli(capsys, "--resume", "--name", "none", "--out", out)
    assert code == 2 and "holds no saved step of a run" in err
    (tmp_path / "held").mkdir()
    checkpoint.save_config(tmp_path / "held", MICRO, MICRO_TRAIN, {"data": corpus})
    (tmp_path / "held" / "checkpoints" / "1").mkdir(parents=True)  # a run that saved a step
    code, err = run_train_cli(capsys, "--name", "held", "--out", out, "--data", corpus)
    assert code == 2 and "already holds a run" in err
    assert (tmp_path / "held" / "config.json").exists(), "a refused run must not touch the old one"
    code, err = run_train_cli(capsys, "--name", "held", "--out", out, "--resume", "--preset", "tiny")
    assert code == 2 and "differs in" in err and "d_model: 64 -> 128" in err
    assert len(err.strip().splitlines()) == 1, f"errors are one line, got {err!r}"


def test_generate_cli_errors_and_sample(tmp_path, corpus, capsys):
    tc = dataclasses.replace(MICRO_TRAIN, steps=3)
    train.train(MICRO, tc, tmp_path / "run", data_path=corpus, progress=False)
    assert generate_cli.main(["--checkpoint", str(tmp_path / "run"), "--prompt", "x" * 33]) == 2
    assert "longer than the model's context of 32" in capsys.readouterr().err
    assert generate_cli.main(["--checkpoint", str(tmp_path / "missing"), "--prompt", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert generate_cli.main(["--checkpoint", str(tmp_path / "run"), "--prompt", "def",
                          "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.startswith("def")


def test_cli_error_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "shared.train", "--preset", "huge"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: unknown preset 'huge'; valid presets: tiny, small, 125m, 1b"
