"""Timing JAX code honestly (lessons 01-02): warm up, block until the result is ready, repeat,
and notice other programs sharing the cores."""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax


@dataclass(frozen=True)
class Timing:
    median: float  # seconds
    min: float
    max: float
    runs: int

    def __str__(self) -> str:
        return f"{self.median * 1e3:.3f} ms (min {self.min * 1e3:.3f}, max {self.max * 1e3:.3f}, {self.runs} runs)"


def timeit(fn: Callable, *args, warmup: int = 1, runs: int = 5, min_time: float = 0.0,
           trace_dir: str | os.PathLike | None = None, **kwargs) -> Timing:
    """Time fn(*args, **kwargs) after `warmup` untimed calls (compilation happens there).

    JAX dispatch is asynchronous: fn returns as soon as the work is queued, so each
    run ends with jax.block_until_ready on the result. Runs repeat until both `runs`
    calls and `min_time` seconds are done. With `trace_dir`, the timed runs (not the
    warm-up) are also recorded as a profiler trace there (see shared.profiling); the
    profiler adds a little overhead to each run.
    """
    for _ in range(warmup):
        jax.block_until_ready(fn(*args, **kwargs))
    times: list[float] = []
    recording = jax.profiler.trace(str(trace_dir)) if trace_dir else contextlib.nullcontext()
    with recording:
        start_all = time.perf_counter()
        while len(times) < runs or time.perf_counter() - start_all < min_time:
            start = time.perf_counter()
            jax.block_until_ready(fn(*args, **kwargs))
            times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), min(times), max(times), len(times))


def in_place(fn: Callable, x: jax.Array) -> Callable:
    """A call of jit(fn)(x, *rest) that donates x's buffer and keeps the result as the next x.

    fn(x, *rest) must return an array like x. Each call writes over the previous
    result instead of into newly allocated memory, as a training step with donated
    parameters does; timeit(in_place(fn, x), *rest) then times the streaming alone,
    not the cost of touching fresh pages. x itself is copied first and left intact.
    """
    step = jax.jit(fn, donate_argnums=0)
    state = [x.copy()]

    def call(*rest):
        state[0] = step(state[0], *rest)
        return state[0]

    return call


class Pending:
    """A stand-in for a jax.Array fresh from dispatch: returned at once, ready `seconds` later.

    Lets a test or a lesson show what a timer that does not wait would measure; threading
    timers never fire early, so a correct timer reads at least `seconds`.
    """

    def __init__(self, seconds: float):
        self._done = threading.Event()
        threading.Timer(seconds, self._done.set).start()

    def block_until_ready(self):
        self._done.wait()
        return self


BUSY = 0.1  # other programs keeping this share of the cores busy make a CPU measurement suspect


class CpuTimes(NamedTuple):
    """A snapshot of the CPU time spent on the cores this process may run on."""
    wall: float  # seconds (time.monotonic)
    busy: float  # CPU-seconds those cores have been busy since boot, every program's together
    ours: float  # CPU-seconds this process has used, all its threads
    cores: int


@dataclass(frozen=True)
class Load:
    """Other programs' use of the cores over an interval: busy cores that were not ours."""
    others: float  # cores, on average (on a VM, time the host gave to other machines counts too)
    cores: int

    @property
    def busy(self) -> bool:
        return self.others >= BUSY * self.cores

    def __str__(self) -> str:
        return f"{self.others:.1f} of {self.cores} cores"


def cpu_times(also: tuple[int, ...] = ()) -> CpuTimes | None:
    """Now, read from /proc/stat (Linux, WSL); None where the system does not publish it.
    also: processes whose CPU time counts as ours (a benchmark's worker process)."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    busy, cores = 0, 0
    for name, *ticks in (line.split() for line in lines if line.strip()):
        if name[:3] == "cpu" and name[3:].isdigit() and (allowed is None or int(name[3:]) in allowed):
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, ticks[:8])
            busy += user + nice + system + irq + softirq + steal  # guest time is inside user
            cores += 1
    own = os.times()
    tick = os.sysconf("SC_CLK_TCK")
    ours = own.user + own.system + sum(map(_process_ticks, also)) / tick
    return CpuTimes(time.monotonic(), busy / tick, ours, cores)


def _process_ticks(pid: int) -> int:
    """Clock ticks process pid has used (user + system, /proc/<pid>/stat); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after "pid (name)", which may hold spaces
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime: the stat file's fields 14 and 15


def load_between(start: CpuTimes | None, end: CpuTimes | None) -> Load | None:
    """Other programs' load from one snapshot to a later one (None without both)."""
    if start is None or end is None or end.wall <= start.wall or not end.cores:
        return None
    others = ((end.busy - start.busy) - (end.ours - start.ours)) / (end.wall - start.wall)
    return Load(max(others, 0.0), end.cores)  # clock ticks round: never below zero


class LoadWatch:
    """Other programs' load from when the watch started (or last restarted) to each read().
    also: processes that are not other programs (cpu_times)."""

    def __init__(self, also: tuple[int, ...] = ()):
        self.also = also
        self.since = cpu_times(also)

    def read(self, restart: bool = False) -> Load | None:
        now = cpu_times(self.also)
        load = load_between(self.since, now)
        if restart:
            self.since = now
        return load
