"""Wrong build (lesson 05): query head h reads key/value head h % K instead of h // G."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_gqa", "which key/value head each query head reads")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/05_attention/build_flash.py")


def _split_heads_modulo(x, K):  # [B, S, H, D] -> [B, S, K, G, D] with head h = g K + k
    B, S, H, D = x.shape
    return x.reshape(B, S, H // K, K, D).swapaxes(2, 3)


def _merge_heads_modulo(x):
    B, S, K, G, D = x.shape
    return x.swapaxes(2, 3).reshape(B, S, G * K, D)


_m._split_heads, _m._merge_heads = _split_heads_modulo, _merge_heads_modulo
flash_attention = _m.flash_attention
