"""Where a run's wall-clock time went, and how much of it trained the model (lesson 07).

Goodput is the share of wall time spent in productive training steps. The rest is
badput: starting up (loading data, building the model, restoring a checkpoint),
compiling, waiting for data, checkpointing and evaluating (and, across a job's
life, restarts, which redo the steps since the last checkpoint).

    clock = Goodput()
    with clock("compile"):
        compiled = step.lower(state, batch).compile()
    ...
    clock.stop()            # everything not inside a category counts as "step"
    print(clock.report())
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from shared.config import Error

CATEGORIES = ("startup", "compile", "data", "checkpoint", "eval")


class Goodput:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.end: float | None = None
        self.seconds = {c: 0.0 for c in CATEGORIES}

    @contextlib.contextmanager
    def __call__(self, category: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(category, time.perf_counter() - t)

    def add(self, category: str, seconds: float) -> None:
        if category not in self.seconds:
            raise Error(f"unknown goodput category {category!r}; valid: {', '.join(CATEGORIES)}")
        self.seconds[category] += seconds

    def stop(self) -> None:
        self.end = time.perf_counter()

    def breakdown(self) -> dict[str, float]:
        """Seconds per category, "step" being wall time not in any other category."""
        total = (self.end or time.perf_counter()) - self.start
        return {"step": max(total - sum(self.seconds.values()), 0.0), **self.seconds}

    def goodput(self) -> float:
        parts = self.breakdown()
        return parts["step"] / max(sum(parts.values()), 1e-12)

    def report(self) -> str:
        parts = self.breakdown()
        total = sum(parts.values())
        shares = ", ".join(f"{k} {v:.1f} s ({v / total:.0%})" for k, v in parts.items() if v > 0)
        return f"goodput {self.goodput():.0%} of {total:.1f} s: {shares}"
