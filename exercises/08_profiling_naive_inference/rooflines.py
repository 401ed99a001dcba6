"""Lesson 08 exercises: utilisation, decode-time bounds, and the cost of naive generation."""

from __future__ import annotations


def mfu(flops: float, seconds: float, peak_flops: float) -> float:
    """Exercise 8.1: model FLOPs utilisation, the fraction of the peak FLOP/s achieved.

    flops: FLOPs the work needs; seconds: measured time; peak_flops: the chip's FLOP/s.
    Returns a float (1.0 = running at peak).
    """
    raise NotImplementedError("Exercise 8.1: the model FLOPs utilisation (MFU) of a measured run")


def mbu(nbytes: float, seconds: float, peak_bw: float) -> float:
    """Exercise 8.2: memory bandwidth utilisation, the fraction of the memory bandwidth achieved.

    nbytes: bytes the work must move to or from main memory; peak_bw: bytes/s. Returns a float.
    """
    raise NotImplementedError("Exercise 8.2: the memory bandwidth utilisation (MBU) of a measured run")


def decode_step_lower_bound(weight_bytes: float, cache_bytes: float, memory_bw: float) -> float:
    """Exercise 8.3: the least seconds one decode step can take when it is memory-bound.

    Every weight and every cached key/value is read once per step (whatever the batch).
    Returns seconds.
    """
    raise NotImplementedError("Exercise 8.3: the time bound of a memory-bound decode step")


def generation_flops(n_params: int, n_layers: int, d_model: int, prompt_len: int,
                     new_tokens: int, cached: bool) -> float:
    """Exercise 8.4: FLOPs to generate new_tokens after a prompt of prompt_len tokens.

    Cost model: processing one token at position j (0-based) against j + 1 keys costs
    2 * n_params (matmuls) + 4 * n_layers * d_model * (j + 1) (scores and weighted sum).
    Naive (cached=False): new token i (0-based) reruns the whole context of
    prompt_len + i tokens from scratch. Cached: the prompt is processed once, then each
    further token processes only the one token fed back (the last new token is never
    fed back). Returns FLOPs as a float.
    """
    raise NotImplementedError("Exercise 8.4: FLOPs to generate new_tokens after a prompt of prompt_len tokens")


def decode_intensity(batch: int, bytes_per_param: float) -> float:
    """Exercise 8.5: arithmetic intensity (FLOPs per byte) of a decode step's weight matmuls.

    Each of N weights is read once (bytes_per_param bytes) and used in one multiply-add
    (2 FLOPs) per row of the batch. Returns FLOPs / bytes, independent of N.
    """
    raise NotImplementedError("Exercise 8.5: the arithmetic intensity of a decode step's weight matmuls")


def which_bound(workloads: list[tuple[float, float]], peak_flops: float, memory_bw: float) -> list[str]:
    """Exercise 8.6: "compute" or "memory" for each workload (flops, bytes) on a chip.

    A workload is compute-bound when flops / peak_flops >= bytes / memory_bw (its
    intensity is at or above the ridge point). Returns a list of the same length.
    """
    raise NotImplementedError("Exercise 8.6: compute or memory for each workload (flops, bytes) on a chip")
