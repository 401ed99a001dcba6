"""Wrong build (lesson 05): the causal mask lets query s read key s + 1."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_causal", "off by one")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/05_attention/build_flash.py")
_m._causal = lambda q_pos, k_pos: k_pos[None, :] <= q_pos[:, None] + 1
flash_attention = _m.flash_attention
