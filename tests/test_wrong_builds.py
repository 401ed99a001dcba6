"""The build exercises reject the classic mistakes: every kept wrong build in tests/wrong/
fails the exercise check about its mistake, with a one-line reason that names it, while the
reference answer passes that same check."""

import functools
from pathlib import Path

import pytest

from shared.course.pytest_plugin import load_module

ROOT = Path(__file__).resolve().parents[1]
WRONG_DIR = ROOT / "tests" / "wrong"

# tests/wrong/<build>_*.py are wrong answers to the build exercise <build>: its checks, its answer
BUILDS = {
    "build_model": ("exercises/01_llm_from_scratch/test_build_model.py",
                    "solutions/01_llm_from_scratch/build_model.py"),
    "build_flash": ("exercises/05_attention/test_build_flash.py", "solutions/05_attention/build_flash.py"),
}


@functools.cache
def _loaded(build: str):
    """(the exercise's check module, its reference answer), loaded once."""
    checks, solution = BUILDS[build]
    return load_module(ROOT / checks), load_module(ROOT / solution)


# tests/wrong/<name>.py: (the check that must reject it, words its one-line reason must contain)
WRONG = {
    "build_model_softmax_axis": ("check_forward_weights_sum_to_one", "softmax's axis"),
    "build_model_no_scale": ("check_forward_scale", "1/sqrt(D) scale is missing"),
    "build_model_no_causal_mask": ("check_forward_causal", "causal mask"),
    "build_model_crosses_segments": ("check_forward_segments", "its own segment"),
    "build_model_rope_not_on_k": ("check_forward_relative_positions", "rotate queries and keys alike"),
    "build_model_rope_on_v": ("check_forward_relative_positions", "rotate queries and keys alike"),
    "build_model_gqa_modulo": ("check_forward_gqa", "which key/value head each query head reads"),
    "build_model_loss_mean": ("check_loss_sums_adds_up", "not a mean"),
    "build_model_imports_core": ("check_imports", "imports shared.model: this exercise writes the model"),
    "build_model_float32_only": ("check_forward_bfloat16", "no matmul takes bfloat16 inputs"),
    "build_model_init_no_residual_scale": ("check_init_statistics", "0.02 / sqrt(2 L)"),
    "build_model_init_one_key": ("check_init_statistics", "same draw"),
    "build_model_python_if": ("check_forward_jit", "fails under jax.jit"),
    "build_flash_no_rescale": ("check_forward_online_softmax", "must be rescaled to the new max"),
    "build_flash_no_scale": ("check_forward_scale", "1/sqrt(D) scale is missing"),
    "build_flash_causal_off_by_one": ("check_forward_causal", "off by one"),
    "build_flash_ignores_segments": ("check_forward_segments", "its own segment"),
    "build_flash_gqa_modulo": ("check_forward_gqa", "which key/value head each query head reads"),
    "build_flash_naive": ("check_no_scores_forward", "score matrix appears in the forward pass"),
    "build_flash_autodiff": ("check_custom_vjp", "no jax.custom_vjp"),
    "build_flash_no_delta": ("check_backward_matches_reference", "rowsum(dO * O)"),
    "build_flash_imports_core": ("check_imports", "imports shared.attention: this exercise writes attention"),
}


def test_every_wrong_build_is_listed():
    on_disk = {p.stem for build in BUILDS for p in WRONG_DIR.glob(f"{build}_*.py")}
    assert on_disk == set(WRONG), (f"tests/wrong/ and WRONG disagree: unlisted "
                                   f"{sorted(on_disk - set(WRONG))}, missing {sorted(set(WRONG) - on_disk)}")


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_build_is_rejected(name):
    check_name, words = WRONG[name]
    checks, solution = _loaded(next(b for b in BUILDS if name.startswith(b + "_")))
    check = getattr(checks, check_name)
    check(solution)  # the reference answer passes: the rejection below is the mistake's
    with pytest.raises(AssertionError) as caught:
        check(load_module(WRONG_DIR / f"{name}.py"))
    reason = str(caught.value)
    assert reason.strip() and "\n" not in reason.strip(), \
        f"{name}: {check_name}'s reason is not one line: {reason!r}"
    assert words in reason, \
        f"{name}: rejected by {check_name}, but the reason does not say {words!r}: {reason}"
