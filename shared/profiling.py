"""Profiles: record what the chip ran, and read the record back without a browser (lesson 02).

    with profiling.trace("runs/profile"):
        for _ in range(3):
            jax.block_until_ready(step(...))   # block inside, or the work lands outside
    profiling.summarize("runs/profile")        # top compiled ops by total time

To browse the same trace (timeline, per-op tables): `xprof --logdir runs/profile
--port 8791` (installed with tensorboard-plugin-profile) and open
http://localhost:8791/, or `pip install tensorboard` and `tensorboard --logdir
runs/profile`. On a CPU only the trace viewer has data; the op-profile tables need a
device plane, which GPUs and TPUs have.
"""

from __future__ import annotations

import collections
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import jax

from shared.config import Error


@contextlib.contextmanager
def trace(logdir: str | os.PathLike) -> Iterator[Path]:
    """Record a profiler trace of the block into logdir/plugins/profile/<run>/<host>.xplane.pb."""
    path = Path(logdir)
    path.mkdir(parents=True, exist_ok=True)
    with jax.profiler.trace(str(path)):
        yield path


def latest_trace(logdir: str | os.PathLike) -> Path:
    """The newest .xplane.pb under logdir."""
    files = sorted(Path(logdir).glob("**/*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no .xplane.pb under {logdir}; record one with shared.profiling.trace")
    return files[-1]


@dataclass(frozen=True)
class OpTime:
    name: str  # the HLO instruction, e.g. "dot.3" or "loop_add_fusion"
    module: str  # the compiled program it belongs to, e.g. "jit_step"
    count: int  # times it ran in the trace
    seconds: float  # summed over those runs


def _op_events(xspace) -> Iterator[tuple[str, str, float]]:
    """(op, module, duration_ns) of compiled ops: events carrying an `hlo_op` stat.

    Device planes (GPU, TPU) list each op once on their "XLA Ops" line (other lines
    repeat the same time as kernels or steps); without a device plane (CPU) the ops
    are on the threads of the host plane. Control flow (a scan's `while`) is itself an
    op event wrapping its body's ops on the same thread; it is skipped, so no time is
    counted twice.
    """
    devices = [p for p in xspace.planes if p.name.startswith("/device:")]
    for plane in devices or xspace.planes:
        lines = list(plane.lines)
        if devices and any(line.name == "XLA Ops" for line in lines):
            lines = [line for line in lines if line.name == "XLA Ops"]
        for line in lines:
            ops = sorted(((e.start_ns, e.end_ns, dict(e.stats)) for e in line.events
                          if any(k == "hlo_op" for k, _ in e.stats)), key=lambda o: o[0])
            for i, (start, end, stats) in enumerate(ops):
                if i + 1 < len(ops) and ops[i + 1][0] < end:
                    continue  # the next op on this thread starts inside this one: a container
                yield stats["hlo_op"], str(stats.get("hlo_module", "")), end - start


def op_times(logdir: str | os.PathLike) -> list[OpTime]:
    """Every compiled op in the newest trace under logdir, longest total time first."""
    xspace = jax.profiler.ProfileData.from_file(str(latest_trace(logdir)))
    totals: dict[tuple[str, str], list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for op, module, duration_ns in _op_events(xspace):
        totals[op, module][0] += 1
        totals[op, module][1] += duration_ns * 1e-9
    ops = [OpTime(op, module, n, s) for (op, module), (n, s) in totals.items()]
    return sorted(ops, key=lambda o: o.seconds, reverse=True)


def summarize(logdir: str | os.PathLike, top: int = 10) -> list[OpTime]:
    """Print the `top` compiled ops of the newest trace by total time, and return them.

    Shares are of the time summed over all ops; on a CPU ops on different threads can
    overlap, so the sum can exceed the wall-clock time.
    """
    ops = op_times(logdir)
    if not ops:
        raise Error(f"{latest_trace(logdir)} holds no compiled ops; was the work inside the trace?")
    total = sum(o.seconds for o in ops)
    width = max(len(o.name) for o in ops[:top])
    print(f"{'op'.ljust(width)}  {'program':<24} {'runs':>5} {'total ms':>9} {'share':>6}")
    for o in ops[:top]:
        print(f"{o.name.ljust(width)}  {o.module[:24]:<24} {o.count:>5} {o.seconds * 1e3:>9.3f} "
              f"{o.seconds / total:>6.1%}")
    print(f"{len(ops)} ops, {total * 1e3:.3f} ms in all")
    return ops[:top]
