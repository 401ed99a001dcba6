"""Wrong build (lesson 05): scores without the default 1/sqrt(D) scale."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_scale", "1/sqrt(D) scale is missing")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/05_attention/build_flash.py")
_m._scale = lambda D, scale: 1.0 if scale is None else scale
flash_attention = _m.flash_attention
