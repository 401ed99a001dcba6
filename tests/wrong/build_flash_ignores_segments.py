"""Wrong build (lesson 05): segment_ids ignored, so attention crosses packed documents."""

import jax.numpy as jnp

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_segments", "its own segment")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/05_attention/build_flash.py")
_m._same_segment = lambda q_seg, k_seg: jnp.ones((1, q_seg.shape[1], k_seg.shape[1]), bool)
flash_attention = _m.flash_attention
