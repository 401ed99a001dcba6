"""Wrong build (lesson 01): RoPE rotates the queries but not the keys."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_relative_positions", "rotate queries and keys alike")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/01_llm_from_scratch/build_model.py")
_qkv = _m._qkv


def _qkv_k_unrotated(x, p, positions, config):
    q, _, v = _qkv(x, p, positions, config)
    return q, _m._matmul("BTE,EKD->BTKD", x, p["wk"]), v


_m._qkv = _qkv_k_unrotated
init, forward, loss_sums = _m.init, _m.forward, _m.loss_sums
