"""Training in int8 (shared.qtrain): the int8 matmul and its gradients against the float
matmul, the compiled program's s8 x s8 -> s32 dots, a short run of the tiny model in
int8 against the same run in float32, and `python -m shared.train --int8`."""

import dataclasses
import functools
import json
import re
import string
import textwrap
from json import decoder, encoder
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from shared import checkpoint, data, hardware, model, qtrain
from shared import config as cfg
from shared.figures import lesson09
from shared.train import __main__ as train_cli
from shared.train import loop

SPECS = [("BSE,EHD->BSHD", (4, 32, 64), (64, 4, 16)), ("BSHD,HDE->BSE", (4, 32, 4, 16), (4, 16, 64)),
         ("BSE,EF->BSF", (4, 32, 64), (64, 256)), ("BSF,FE->BSE", (4, 32, 256), (256, 64))]

# Measured (relative Frobenius error against the float32 matmul, Gaussian x and w, int8
# absmax per row/channel): forward 0.0092, dx 0.0092, dw 0.011 at E=128, B·S=1024. One
# int8 rounding has a uniform error of at most half a step (scale / 2, scale = absmax / 127),
# a relative error of about 1% for a Gaussian row; three times that is the tolerance.
REL_TOL = 0.03


def rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def arrays(x_shape, w_shape, seed=0):
    kx, kw, kg = jax.random.split(jax.random.key(seed), 3)
    return jax.random.normal(kx, x_shape), 0.05 * jax.random.normal(kw, w_shape), kg


@pytest.mark.parametrize("spec,x_shape,w_shape", SPECS, ids=[s for s, _, _ in SPECS])
def test_int8_dot_and_its_gradients_match_the_float_matmul(spec, x_shape, w_shape):
    x, w, kg = arrays(x_shape, w_shape)
    want = model.matmul(spec, x, w)
    got = qtrain.int8_dot(x, w, spec)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert rel(got, want) < REL_TOL, f"{spec}: forward off by {rel(got, want):.4f}"
    g = jax.random.normal(kg, want.shape)  # a random cotangent: every output matters
    dx, dw = jax.grad(lambda x, w: jnp.sum(model.matmul(spec, x, w) * g), (0, 1))(x, w)
    qx, qw = jax.grad(lambda x, w: jnp.sum(qtrain.int8_dot(x, w, spec) * g), (0, 1))(x, w)
    assert rel(qx, dx) < REL_TOL, f"{spec}: dx off by {rel(qx, dx):.4f}"
    assert rel(qw, dw) < REL_TOL, f"{spec}: dw off by {rel(qw, dw):.4f}"


def dots(hlo: str) -> list[tuple[str, str, str]]:
    """(result, lhs, rhs) element types of every dot in an HLO module's text."""
    types = dict(re.findall(r"%([\w.\-]+) = (\w+)\[", hlo))
    found = []
    for out, lhs, rhs in re.findall(r"= (\w+)\[[^\]]*\]\S* dot\(%([\w.\-]+), %([\w.\-]+)\)", hlo):
        found.append((out, types[lhs], types[rhs]))
    return found


def test_the_compiled_step_multiplies_int8_into_int32():
    x, w, _ = arrays((8, 64, 128), (128, 512))
    fn = jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(qtrain.int8_dot(x, w, "BSE,EF->BSF") ** 2),
                                    (0, 1)))
    found = dots(fn.lower(x, w).compile().as_text())
    # forward, dx and dw: three dots, every one s8 x s8 -> s32 (no float emulation).
    assert found == [("s32", "s8", "s8")] * 3, found


def test_int8_matmuls_puts_the_float_matmul_back():
    float_matmul = model.matmul
    with pytest.raises(RuntimeError):
        with qtrain.int8_matmuls():
            assert model.matmul is qtrain.matmul
            raise RuntimeError("a failed trace")
    assert model.matmul is float_matmul


# ---- a short run: int8 training against float32 on the same batches ----

TEXT = "".join(Path(m.__file__).read_text() for m in (decoder, encoder, textwrap, string))
MC = dataclasses.replace(cfg.preset("tiny").model, seq_len=64, n_layers=2)  # mlp="manual" too
STEPS = 200
# Measured on this corpus (60,057 bytes), 3 seeds, mean loss of the last 20 steps in nats:
#   seed 0: float32 2.050, int8 2.034 (-0.016)   seed 1: 2.065, 2.053 (-0.012)
#   seed 2: 2.067, 2.090 (+0.023); both start at 5.12-5.18. A margin of 0.1 nats is 4x the
# largest measured gap, still a tenth of the 3 nats the run learns.
MARGIN = 0.1


@functools.cache
def losses(net) -> np.ndarray:
    tc = cfg.TrainConfig(batch_size=8, steps=STEPS, lr=2e-3, warmup_steps=10, seed=0)
    return lesson09.losses(MC, tc, data.encode(TEXT), net)[0]


def test_int8_training_learns_and_stays_near_float32():
    q, f = losses(qtrain), losses(model)
    assert np.isfinite(q).all()
    assert q[-20:].mean() < q[:5].mean() - 2.5, f"int8 loss {q[:5].mean():.3f} -> {q[-20:].mean():.3f}"
    gap = q[-20:].mean() - f[-20:].mean()
    assert abs(gap) < MARGIN, f"int8 {q[-20:].mean():.3f} vs float32 {f[-20:].mean():.3f} nats"


# ---- the command line: python -m shared.train --int8 ----

CLI_MC = cfg.ModelConfig(seq_len=32, d_model=32, n_layers=1, n_heads=2, d_ff=64)
CLI_TC = cfg.TrainConfig(batch_size=4, steps=2, warmup_steps=0, eval_every=100, eval_batches=1,
                         checkpoint_every=2)
INT8_DOT = ("s32", "s8", "s8")


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Runs the command (a micro model standing in for the tiny preset, on a small corpus);
    returns (main(*flags) -> exit status, the dots of each step program the loop compiled)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"def f{i % 7}(x):\n    return x * {i % 5}\n" for i in range(200)))
    monkeypatch.setitem(cfg.PRESETS, "tiny", cfg.Preset(CLI_MC, CLI_TC, "a micro model"))
    # the start line's and the meter's peaks: a fixed chip instead of seconds of calibration
    monkeypatch.setattr(hardware, "detect", lambda *_, **__: hardware.Chip("CPU (test)", {"float32": 1e11}, 1e10))
    compiled_dots = []

    def compile_step(run):
        compiled = real_compile(run)
        compiled_dots.append(dots(compiled.as_text()))
        return compiled

    real_compile = loop.compile_step
    monkeypatch.setattr(loop, "compile_step", compile_step)
    flags = ["--out", str(tmp_path), "--data", str(corpus)]
    return lambda *argv: train_cli.main([*flags, *argv]), compiled_dots


def test_the_int8_flag_trains_in_int8_and_a_resumed_run_stays_int8(cli, tmp_path, capsys):
    main, compiled_dots = cli
    assert main("--int8", "--sample-tokens", "2") == 0, "--int8: the run failed"
    assert "with int8 weight matmuls" in capsys.readouterr().out, "--int8: the start line does not say int8"
    config = json.loads(checkpoint.config_path(tmp_path / "tiny").read_text())
    assert config.get("int8") is True, f"--int8: config.json records int8: {config.get('int8')!r}"
    assert INT8_DOT in compiled_dots[0], f"--int8: the step has no s8 x s8 -> s32 dot: {compiled_dots[0]}"
    assert main("--resume", "--steps", "3", "--sample-tokens", "0") == 0, "--resume of an int8 run failed"
    assert INT8_DOT in compiled_dots[1], "--resume without --int8: an int8 run went on in float"
    config = json.loads(checkpoint.config_path(tmp_path / "tiny").read_text())
    assert config["train"]["steps"] == 3 and config.get("int8") is True, \
        f"--resume --steps 3: config.json records steps {config['train']['steps']}, int8 {config.get('int8')!r}"


def test_int8_that_cannot_apply_is_one_line(cli, tmp_path, one_line_error):
    main, compiled_dots = cli
    float_run = tmp_path / "float"
    checkpoint.save_config(float_run, CLI_MC, CLI_TC, {"data": str(tmp_path / "corpus.txt")})
    (float_run / "checkpoints" / "2").mkdir(parents=True)  # a float32 run that saved a step
    assert main("--name", "float", "--resume", "--int8") == 2
    one_line_error("cannot resume", "int8: False -> True")
    assert main("--int8", "--solutions", "--name", "yours") == 2  # the answers' model: own matmuls
    one_line_error("--int8", "01_llm_from_scratch/build_model.py")
    assert not compiled_dots, "a refused --int8 compiled a step"
