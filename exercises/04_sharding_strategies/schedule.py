"""Lesson 04 exercise 4.9: how long FSDP's forward pass takes when each gather is prefetched.

The stack is L layers x = relu(x @ W_l), x [B, E] split by rows over n devices, each W_l [E, E]
split by rows. Before layer l's matmul a device must all-gather W_l (a ring over n devices on
one link of `link` bytes/s, lesson 03's cost model). A device has two streams that run at the
same time, compute and communication, each doing one thing at a time. With prefetching, the
gather of W_(l+1) runs while layer l computes; memory holds at most two gathered weights, so
the gather of W_(l+1) may start only once layer l-1's matmul has ended. Nothing else waits.
Check with `python -m pytest exercises/04_sharding_strategies/test_schedule.py`; lesson 04,
section 5 draws the schedule.
"""

from __future__ import annotations


def fsdp_forward_overlapped(B: int, E: int, L: int, n: int, peak: float, link: float,
                            itemsize: int) -> float:
    """Exercise 4.9: seconds from the first gather's start to the last matmul's end.

    B tokens in the global batch, E the width, L layers, n devices of `peak` FLOP/s, each
    sending over one link of `link` bytes/s, `itemsize` bytes per weight. Returns the
    forward pass's time in closed form, valid whether the gathers or the matmuls are slower.
    """
    raise NotImplementedError("Exercise 4.9: the overlapped FSDP forward pass's time in closed form")
