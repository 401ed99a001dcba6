"""Wrong build (lesson 05): the causal mask lets query s read key s + 1."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/05_attention/build_flash.py")
_m._causal = lambda q_pos, k_pos: k_pos[None, :] <= q_pos[:, None] + 1
flash_attention = _m.flash_attention
