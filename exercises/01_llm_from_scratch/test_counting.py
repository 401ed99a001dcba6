"""Checks for exercise 1.5 against the parameters shared.model.init really creates."""

import jax
import pytest

from shared import model
from shared.config import PRESETS, ModelConfig

CONFIGS = {
    **{name: p.model for name, p in PRESETS.items()},
    "gqa": ModelConfig(vocab_size=100, seq_len=16, d_model=48, n_layers=3, n_heads=6, n_kv_heads=2,
                       d_ff=100),
    "mqa": ModelConfig(vocab_size=300, seq_len=8, d_model=64, n_layers=2, n_heads=4, n_kv_heads=1,
                       d_ff=96),
    "one_layer": ModelConfig(vocab_size=7, seq_len=4, d_model=8, n_layers=1, n_heads=2, d_ff=5),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_param_count(answers, name):
    config = CONFIGS[name]
    # eval_shape traces init without allocating: the 1b preset costs nothing to count.
    shapes = jax.eval_shape(lambda key: model.init(config, key), jax.random.key(0))
    want = model.param_count(shapes)
    got = answers.param_count(config)
    assert isinstance(got, int), f"expected a Python int, got {type(got).__name__}"
    assert got == want, (f"{name} (L={config.n_layers}, E={config.d_model}, H={config.n_heads}, "
                         f"K={config.kv_heads}, F={config.d_ff}, V={config.vocab_size}): expected "
                         f"{want:,} parameters (from shared.model.init), got {got:,} (off by {got - want:+,})")
