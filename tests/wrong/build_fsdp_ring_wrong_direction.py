"""Wrong build (lesson 04): the partial sums go left around the ring while each device adds the block of a right-going ring."""

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_matmul_reduce_scatter_values", "not the sums over all devices")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/04_sharding_strategies/build_fsdp.py")
_m._ring_to_right = lambda n: [(i, (i - 1) % n) for i in range(n)]
fsdp_matmul, fsdp_forward, matmul_reduce_scatter = _m.fsdp_matmul, _m.fsdp_forward, _m.matmul_reduce_scatter
