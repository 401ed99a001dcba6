"""python -m shared.bench pytorch: its flags and a missing torch are one line before any JAX
work, and (where an interpreter with torch is named by TORCH_PYTHON; torch is not a course
dependency) its PyTorch model has the core model's parameters and, under the core's weights,
its logits."""

import os
import sys

import jax
import numpy as np
import pytest

from shared import config as cfg
from shared import model
from shared.bench import pytorch


def no_jax_yet(*a, **k):
    raise AssertionError("the benchmark started JAX work before checking its flags and torch")


@pytest.mark.parametrize("argv, words", [
    (["pytorch", "--rounds", "0"], "--rounds must be >= 1"),
    (["pytorch", "--new-tokens", "0"], "--new-tokens must be >= 1"),
    (["pytorch", "--python", "/no/such/python"], "is not a file"),
])
def test_a_bad_flag_is_one_line_before_any_jax_work(argv, words, one_line_error, monkeypatch):
    from shared.bench.__main__ import main
    monkeypatch.setattr(jax, "devices", no_jax_yet)
    assert main(argv) == 2
    one_line_error(words)


def test_a_missing_torch_is_one_line_saying_how_to_install_it(tmp_path, one_line_error, monkeypatch):
    """The worker's interpreter cannot import torch (a torch module that raises shadows any
    installed one): the command says so and how to install it, before any JAX work."""
    (tmp_path / "torch.py").write_text("raise ImportError('No module named torch')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(jax, "devices", no_jax_yet)
    from shared.bench.__main__ import main
    assert main(["pytorch", "--quick", "--python", sys.executable]) == 2
    one_line_error("cannot import torch", "pip install torch", "--python")


needs_torch = pytest.mark.skipif(
    not os.environ.get("TORCH_PYTHON"),
    reason="TORCH_PYTHON names no interpreter with torch (torch is not a course dependency)")


@needs_torch
@pytest.mark.parametrize("name", ["tiny", "small"])
def test_the_pytorch_model_has_the_core_models_parameters(name):
    mc = cfg.preset(name).model
    ours = jax.eval_shape(lambda: model.init(mc, jax.random.key(0)))
    torch = pytorch.Torch(os.environ["TORCH_PYTHON"])
    try:
        theirs = torch.ask({"op": "count", "shape": pytorch.shape_of(mc)})["parameters"]
    finally:
        torch.close()
    core = model.param_count(ours)
    assert theirs == core, f"PyTorch {theirs:,} parameters vs the core's {core:,} at {name}"


@needs_torch
def test_the_pytorch_model_is_the_core_model_under_the_same_weights():
    """The core's random weights loaded into the PyTorch model give the core's logits: the same
    layout of heads, the same rotary pairs, norm, GELU and projections, not merely the same sizes."""
    mc = cfg.ModelConfig(vocab_size=32, seq_len=8, d_model=16, n_layers=2, n_heads=2, d_ff=24)
    # 20 times GPT-2's scale, so that every piece moves the logits (at 0.02 they hardly differ
    # from one position to the next, and a wrong rotary base passes)
    params = jax.tree.map(lambda w: 20 * w, model.init(mc, jax.random.key(1)))
    tokens = np.random.default_rng(0).integers(0, 32, (2, 8))
    torch = pytorch.Torch(os.environ["TORCH_PYTHON"])
    try:
        theirs = torch.ask({"op": "logits", "shape": pytorch.shape_of(mc), "tokens": tokens.tolist(),
                            "weights": jax.tree.map(lambda w: np.asarray(w).tolist(), params)})
    finally:
        torch.close()
    ours = np.asarray(model.forward(params, tokens, mc))
    assert "error" not in theirs, theirs
    np.testing.assert_allclose(np.array(theirs["logits"]), ours, rtol=1e-5, atol=1e-3,
                               err_msg="PyTorch's logits differ from shared.model.forward's")
