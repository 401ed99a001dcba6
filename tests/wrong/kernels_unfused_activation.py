"""Wrong answer (exercise 10.2): the activation applied to the finished Pallas matmul, outside its
kernel: right values, but a second pass over the output instead of a fused epilogue."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_matmul_activation_fused", "the activation (tanh) runs outside the kernel")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/10_pallas_aot/kernels.py")


def matmul_activation(x, y, bm, bn, bk, activation):
    return activation(_m.matmul_kgrid(x, y, bm, bn, bk))
