"""Lesson 02 exercises: FLOPs, bytes, fusion and rooflines as closed forms.

Conventions: a matmul [M, K] @ [K, N] does 2*M*K*N FLOPs (a multiply and an add per
term); an elementwise op does one FLOP per output element; "bytes" are the bytes read
from and written to main memory, each operand once, `itemsize` bytes per element
(all operands and results share one dtype unless said otherwise). Check with
`python -m pytest exercises/02_single_chip_performance`.
"""

from __future__ import annotations


def add_cost(shape: tuple[int, ...], itemsize: int) -> tuple[int, int]:
    """Exercise 2.1a: FLOPs and bytes of A + B for A, B of `shape`.

    Returns (flops, bytes): reading A and B, writing the sum.
    """
    raise NotImplementedError("Exercise 2.1a: FLOPs and bytes of an elementwise add")


def matmul_cost(m: int, k: int, n: int, itemsize: int) -> tuple[int, int]:
    """Exercise 2.1b: FLOPs and bytes of A @ B for A: [m, k], B: [k, n].

    Returns (flops, bytes): reading A and B once, writing the [m, n] result once.
    """
    raise NotImplementedError("Exercise 2.1b: FLOPs and bytes of a matmul")


def relu_matmul_cost(m: int, k: int, n: int, itemsize: int, fused: bool) -> tuple[int, int]:
    """Exercise 2.1c: FLOPs and bytes of relu(A @ B) for A: [m, k], B: [k, n].

    fused=True: the relu is applied as the matmul writes its output (one kernel).
    fused=False: the [m, n] product is written to memory, then a second kernel reads
    it and writes relu of it. Returns (flops, bytes), relu counting one FLOP per element.
    """
    raise NotImplementedError("Exercise 2.1c: FLOPs and bytes of relu(A @ B), fused or not")


def fusion_speedup(n: int) -> float:
    """Exercise 2.2: predicted speed-up of jit(relu(A @ B)) over running it op by op.

    A, B: [n, n] bf16. Assume both versions are memory-bound (time proportional to bytes
    moved) and that jit fuses the relu into the matmul. Returns unfused time / fused time.
    (Does your answer depend on n?)
    """
    raise NotImplementedError("Exercise 2.2: speed-up of fusing relu into a memory-bound matmul")


def attention_chain_intensity(s: int, d: int, itemsize: int) -> tuple[float, float]:
    """Exercise 2.3a: arithmetic intensity of C @ relu(A @ B), A: [s, d], B: [d, s], C: [d, s].

    Count the FLOPs of the two matmuls only (relu's s*s is small beside them). Returns
    (ideal, materialised): ideal if the [s, s] intermediate never leaves fast memory
    (only A, B, C and the [d, s] result move), materialised if the intermediate is
    written to memory once and read back once.
    """
    raise NotImplementedError("Exercise 2.3a: intensity of an attention-like chain, ideal and materialised")


def regime(intensity: float, peak_flops: float, bandwidth: float) -> str:
    """Exercise 2.3b: "compute" if a program of this intensity (FLOPs/byte) is compute-bound
    on a chip with this peak (FLOP/s) and memory bandwidth (bytes/s), else "memory".
    At exactly the ridge point, say "compute".
    """
    raise NotImplementedError("Exercise 2.3b: compute- or memory-bound on a chip")


def matmul_mfu_mbu(n: int, seconds: float, peak_flops: float, bandwidth: float,
                   itemsize: int) -> tuple[float, float]:
    """Exercise 2.4: MFU and MBU of one [n, n] @ [n, n] matmul that took `seconds`.

    MFU: FLOP/s achieved over peak_flops. MBU: bytes/s moved (operands read once, result
    written once) over bandwidth. Returns (mfu, mbu) as fractions (1.0 = the peak).
    """
    raise NotImplementedError("Exercise 2.4: MFU and MBU of a square matmul")


def smallest_compute_bound_matmul(peak_flops: float, bandwidth: float, itemsize: int) -> int:
    """Exercise 2.5: the smallest n for which an [n, n] @ [n, n] matmul is compute-bound.

    Compute-bound means its arithmetic intensity is at least the ridge point
    peak_flops / bandwidth. Returns n.
    """
    raise NotImplementedError("Exercise 2.5: the smallest compute-bound square matmul on a chip")
