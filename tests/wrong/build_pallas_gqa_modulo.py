"""Wrong build (lesson 10): query head h reads key/value head h % K instead of h // G."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_gqa", "which key/value head each query head reads")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/10_pallas_aot/build_pallas.py")
_m._kv_head = lambda h, H, K: h % K
flash_forward = _m.flash_forward
