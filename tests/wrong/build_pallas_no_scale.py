"""Wrong build (lesson 10): scores without the default 1/sqrt(D) scale."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_scale", "1/sqrt(D) scale is missing")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/10_pallas_aot/build_pallas.py")
_m._scale = lambda D, scale: 1.0 if scale is None else scale
flash_forward = _m.flash_forward
