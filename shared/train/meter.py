"""Training throughput over an interval of steps: tokens/s and MFU (shared.roofline.mfu), and
whether other programs share the cores (shared.timing.Load)."""

from __future__ import annotations

import time
from typing import NamedTuple

from shared import hardware, roofline, timing
from shared.hardware import Chip, busy_note

LOAD_EVERY_S = 5.0  # the cores' load is read at most this often


def chip_for(dtype: str) -> Chip:
    """The chip a run's MFU divides by. On a CPU only the compute dtype's matmul peak is
    calibrated (about a second; hardware.detect), not every dtype and the memory."""
    return hardware.detect((dtype,), memory=False)


class Rate(NamedTuple):
    tokens_per_s: float
    mfu: float | None  # None where the chip's peak for the compute dtype is unknown
    busy: timing.Load | None = None  # other programs' load when it is busy (CPU peaks only)


class Throughput:
    """Tokens/s and MFU of the steps counted since the interval started.

    start() opens an interval: call it when the device has finished a step, so the
    time of the steps before is not counted. count() adds a dispatched step; read()
    (after waiting for the last counted step) returns the interval's rate and opens
    the next one. pause() drops the open interval: evaluation is not training.
    MFU is the model's FLOPs per device over the chip's peak for `dtype`.

    Against a calibrated (CPU) peak it also watches the cores, reading their load at most
    every LOAD_EVERY_S: a rate carries the latest reading when other programs were busy, and
    note() sums up the whole run (shared.hardware.busy_note).
    """

    def __init__(self, tokens_per_step: int, flops_per_step: float, chip: Chip | None = None,
                 dtype: str = "float32", devices: int = 1):
        self.tokens_per_step, self.flops_per_step = tokens_per_step, flops_per_step
        self.chip = chip if chip is not None and chip.flops(dtype) else None
        self.dtype, self.devices = dtype, devices
        self._start: float | None = None
        self._steps = 0
        watch = self.chip is not None and self.chip.measured
        self._run, self._interval = (timing.LoadWatch(), timing.LoadWatch()) if watch else (None, None)
        self._load: timing.Load | None = None

    @property
    def running(self) -> bool:
        return self._start is not None

    def start(self) -> None:
        self._start, self._steps = time.perf_counter(), 0

    def pause(self) -> None:
        self._start = None

    def count(self, steps: int = 1) -> None:
        self._steps += steps

    def read(self) -> Rate | None:
        """The open interval's rate (None if it holds no step); the next interval starts now."""
        if self._start is None or not self._steps:
            return None
        seconds = time.perf_counter() - self._start
        mfu = (roofline.mfu(self._steps * self.flops_per_step / self.devices, seconds, self.chip, self.dtype)
               if self.chip else None)
        rate = Rate(self._steps * self.tokens_per_step / seconds, mfu, self._busy())
        self.start()
        return rate

    def _busy(self) -> timing.Load | None:
        since = self._interval.since if self._interval else None
        if since is not None and time.monotonic() - since.wall >= LOAD_EVERY_S:
            self._load = self._interval.read(restart=True)
        return self._load if self._load is not None and self._load.busy else None

    def note(self) -> str | None:
        """One line if other programs were busy while the peak was calibrated or the run trained."""
        return busy_note(self.chip, self._run.read(), "training ran") if self._run else None
