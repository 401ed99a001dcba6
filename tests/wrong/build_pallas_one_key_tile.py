"""Wrong build (lesson 10): each program scores its queries against all T keys at once (a row
softmax, exercise 10.3's), not tile by tile: right values, a [bq, T] array in the kernel."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_kernel", "a whole row of scores")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/10_pallas_aot/build_pallas.py")


def flash_forward(q, k, v, *, block_k=None, **kw):
    return _m.flash_forward(q, k, v, block_k=k.shape[1], **kw)  # one key tile: all T keys
