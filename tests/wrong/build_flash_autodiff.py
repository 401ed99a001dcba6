"""Wrong build (lesson 05): no custom_vjp; autodiff differentiates through the block loops."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_custom_vjp", "no jax.custom_vjp")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/05_attention/build_flash.py")
_m._flash = lambda q, k, v, seg, causal, scale, bq, bk: _m._forward(q, k, v, seg, causal, scale, bq, bk)[0]
flash_attention = _m.flash_attention
