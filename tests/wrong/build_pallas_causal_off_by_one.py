"""Wrong build (lesson 10): the causal mask lets the query at position p read the key at p + 1."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_causal", "off by one")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/10_pallas_aot/build_pallas.py")
_m._causal = lambda q_pos, k_pos: k_pos <= q_pos + 1
flash_forward = _m.flash_forward
