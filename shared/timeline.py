"""Overlap you can see: one training step of lesson 04's stack as two streams of events (lesson 04).

The stack is L layers x = relu(x @ W_l), x [B, E], W [E, E], on n devices. A device has two
streams that run at the same time: compute (its matmuls) and communication (its collectives).
Each stream runs its tasks one after another in the order they were issued, and a task starts
only when every task it needs has ended. That is all the simulator knows; the durations come
from the course's cost models:

    forward matmul of one layer   2 (B/n) E^2 FLOPs / peak        (every strategy splits it evenly)
    backward of one layer         twice that: dx = dy W^T and dW = x^T dy
    a collective                  shared.collectives.collective_seconds (ring over one link)

Strategies (what each layer's matmuls wait for):

    fsdp   W_l is all-gathered before its forward and again before its backward (weights are
           dropped after use); its gradient is reduce-scattered after its backward.
    dp     no forward traffic; each gradient is all-reduced after its layer's backward.
    tp     Megatron pairs: after every second layer's forward, and after every first layer's
           backward, an all-reduce of the [B, E] activations; the next matmul needs its result.

overlap="off": every task waits for the one issued before it, on either stream, as a program
that calls each collective and waits for it. overlap="on": only the real dependencies, plus
the memory limit on prefetching: the gather for a matmul may start once the matmul two before
it has ended, so at most two gathered weights are held (the one in use, the next). For TP the
dependencies are all real, so "on" changes nothing; overlap="split" cuts each TP matmul and its
all-reduce into n pieces along the batch (rows are independent), so a piece's all-reduce runs
while the next piece is computed and the next layer starts on the rows that have arrived:
the idea of section 4's collective matmul, with the same bytes.

Left out: the latency of each collective (a fixed start-up cost, which splitting multiplies),
contention between collectives sharing a link, several links used at once, and the
optimizer's update. `Step.exposed` is the time the compute stream waits: step time minus the
compute it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from shared import collectives, hardware
from shared.config import Error

STRATEGIES = ("fsdp", "dp", "tp")
OVERLAP = ("off", "on", "split")
COMPUTE, COMM = "compute", "comm"


@dataclass(frozen=True)
class Task:
    """A piece of work on one stream that may start once the tasks named in `after` have ended."""
    stream: str  # COMPUTE or COMM
    label: str  # unique within a step, e.g. "F3" (forward of layer 3), "G3" (gather W_3)
    seconds: float
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Event:
    """A task as it ran: on which stream, from when to when (seconds from the step's start)."""
    stream: str
    label: str
    start: float
    end: float


@dataclass(frozen=True)
class Step:
    """One simulated training step."""
    events: tuple[Event, ...]
    compute: float = field(init=False)  # seconds of compute (sum of the compute events)
    comm: float = field(init=False)  # seconds of communication (sum of the comm events)
    time: float = field(init=False)  # when the last event ends
    exposed: float = field(init=False)  # time the compute stream waits: time - compute

    def __post_init__(self):
        total = lambda stream: sum(e.end - e.start for e in self.events if e.stream == stream)
        object.__setattr__(self, "compute", total(COMPUTE))
        object.__setattr__(self, "comm", total(COMM))
        object.__setattr__(self, "time", max((e.end for e in self.events), default=0.0))
        object.__setattr__(self, "exposed", self.time - self.compute)


def schedule(tasks: Sequence[Task]) -> list[Event]:
    """Run the tasks: each stream in its issue order (the order in `tasks`), each task starting
    at max(its stream is free, every task it needs has ended). Raises on an unknown dependency
    and on a deadlock (a stream's next task needs a task queued behind it)."""
    labels = [t.label for t in tasks]
    if len(set(labels)) != len(labels):
        raise Error("task labels must be unique within a step")
    for t in tasks:
        missing = [a for a in t.after if a not in labels]
        if missing:
            raise Error(f"task {t.label} needs unknown task(s) {missing}")
    queues = {s: [t for t in tasks if t.stream == s] for s in dict.fromkeys(t.stream for t in tasks)}
    free = {s: 0.0 for s in queues}
    ended: dict[str, float] = {}
    events = []
    while any(queues.values()):
        ready = [s for s, q in queues.items() if q and all(a in ended for a in q[0].after)]
        if not ready:
            heads = {s: q[0].label for s, q in queues.items() if q}
            raise Error(f"impossible schedule: every stream's next task waits for one not run yet {heads}")
        for s in ready:
            task = queues[s].pop(0)
            start = max([free[s]] + [ended[a] for a in task.after])
            free[s] = ended[task.label] = start + task.seconds
            events.append(Event(s, task.label, start, free[s]))
    return sorted(events, key=lambda e: (e.start, e.stream))


@dataclass(frozen=True)
class Stack:
    """Lesson 04's stack on n devices of one chip: the sizes, and the chip's peak and link."""
    B: float  # tokens in the global batch
    E: int  # width
    L: int  # layers
    n: int  # devices
    peak: float  # FLOP/s of one device
    link: float  # bytes/s one way over one link
    itemsize: int = 2  # bytes per element (bf16)

    @classmethod
    def on(cls, chip: str, B: int, E: int, L: int, n: int, dtype: str = "bfloat16") -> "Stack":
        """The stack on a chip of shared.hardware.CHIPS (its datasheet peak and one link)."""
        spec = hardware.CHIPS[chip]
        itemsize = {"bfloat16": 2, "float16": 2, "float32": 4, "int8": 1}[dtype]
        return cls(B, E, L, n, spec.flops(dtype), spec.link_bw, itemsize)

    @property
    def forward_seconds(self) -> float:
        """One layer's forward matmul on one device: 2 (B/n) E^2 FLOPs at peak."""
        return 2 * (self.B / self.n) * self.E ** 2 / self.peak

    def collective_seconds(self, kind: str, elements: float) -> float:
        """A ring collective over all n devices of an array of `elements` (the cost model of lesson 03)."""
        return collectives.collective_seconds(kind, elements * self.itemsize, self.n, self.link)


def _serial(compute: list[Task], comm: list[Task], order: list[str]) -> list[Task]:
    """overlap off: the same tasks, each also waiting for the one issued before it in `order`."""
    by_label = {t.label: t for t in compute + comm}
    out = []
    for prev, label in zip([None] + order, order):
        t = by_label[label]
        out.append(Task(t.stream, t.label, t.seconds, t.after + ((prev,) if prev else ())))
    return out


def _fsdp(s: Stack, overlap: str, backward: bool) -> list[Task]:
    tf, tg = s.forward_seconds, s.collective_seconds("all-gather", s.E ** 2)
    trs = s.collective_seconds("reduce-scatter", s.E ** 2)
    # the matmuls in order: forward 0..L-1, then backward L-1..0, each needing its gathered W
    runs = [(f"F{l}", f"G{l}", tf) for l in range(s.L)] + \
           [(f"B{l}", f"G{l}b", 2 * tf) for l in reversed(range(s.L)) if backward]
    compute, gathers = [], []
    for k, (mm, gather, seconds) in enumerate(runs):
        # prefetch at most one ahead: this gather waits until the matmul two before ends
        gathers.append(Task(COMM, gather, tg, (runs[k - 2][0],) if k >= 2 else ()))
        compute.append(Task(COMPUTE, mm, seconds, (gather,)))
    reduces = {l: Task(COMM, f"R{l}", trs, (f"B{l}",)) for l in range(s.L)}
    # comm issue order: gathers as above; each reduce-scatter right after the gather issued
    # when its backward ends (so the next gather is not stuck behind it)
    comm = []
    for k, g in enumerate(gathers):
        comm.append(g)
        if k - 2 >= s.L:  # runs[k - 2] is a backward: its gradient is ready by now
            comm.append(reduces[int(runs[k - 2][0][1:])])
    comm += [reduces[int(runs[k][0][1:])] for k in range(max(s.L, len(runs) - 2), len(runs))]
    if overlap == "on":
        return compute + comm
    order = []
    for mm, gather, _ in runs:
        order += [gather, mm] + ([f"R{mm[1:]}"] if mm.startswith("B") else [])
    return _serial(compute, comm, order)


def _dp(s: Stack, overlap: str, backward: bool) -> list[Task]:
    tf, tar = s.forward_seconds, s.collective_seconds("all-reduce", s.E ** 2)
    back = list(reversed(range(s.L))) if backward else []
    compute = [Task(COMPUTE, f"F{l}", tf) for l in range(s.L)] + [Task(COMPUTE, f"B{l}", 2 * tf) for l in back]
    comm = [Task(COMM, f"A{l}", tar, (f"B{l}",)) for l in back]
    if overlap == "on":
        return compute + comm
    order = [f"F{l}" for l in range(s.L)] + [x for l in back for x in (f"B{l}", f"A{l}")]
    return _serial(compute, comm, order)


def _tp(s: Stack, overlap: str, backward: bool) -> list[Task]:
    """Megatron pairs: the all-reduce follows the forward of odd layers, the backward of even ones."""
    pieces = s.n if overlap == "split" else 1
    tf = s.forward_seconds / pieces
    tar = s.collective_seconds("all-reduce", s.B * s.E / pieces)
    runs = [(f"F{l}", tf, l % 2 == 1) for l in range(s.L)] + \
           [(f"B{l}", 2 * tf, l % 2 == 0 and l > 0) for l in reversed(range(s.L)) if backward]
    compute, comm, order, pending = [], [], [], {}
    for mm, seconds, reduces in runs:
        for p in range(pieces):  # piece p of this matmul needs piece p of the last all-reduce
            name = f"{mm}.{p}" if pieces > 1 else mm
            compute.append(Task(COMPUTE, name, seconds, (pending[p],) if p in pending else ()))
            order.append(name)
            if reduces:
                ar = f"A{mm}.{p}" if pieces > 1 else f"A{mm}"
                comm.append(Task(COMM, ar, tar, (name,)))
                pending[p] = ar
        if reduces and pieces == 1:
            order.append(comm[-1].label)
        elif reduces:
            order += [t.label for t in comm[-pieces:]]
    if overlap == "off":
        return _serial(compute, comm, order)
    return compute + comm


def tasks(strategy: str, stack: Stack, overlap: str = "on", backward: bool = True) -> list[Task]:
    """The tasks of one training step of `strategy` on `stack` (backward=False: the forward pass)."""
    if strategy not in STRATEGIES:
        raise Error(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    if overlap not in OVERLAP or (overlap == "split" and strategy != "tp"):
        raise Error(f"overlap must be 'off' or 'on' (or 'split' for tp), not {overlap!r}")
    return {"fsdp": _fsdp, "dp": _dp, "tp": _tp}[strategy](stack, overlap, backward)


def step(strategy: str, stack: Stack, overlap: str = "on", backward: bool = True) -> Step:
    """One simulated training step (or its forward pass): events, step time, exposed communication."""
    return Step(tuple(schedule(tasks(strategy, stack, overlap, backward))))


def summary(strategy: str, stack: Stack, modes: Sequence[str] = ("off", "on")) -> list[str]:
    """One printable line per overlap mode: step, compute, communication and exposed time in ms."""
    out = []
    for mode in modes:
        st = step(strategy, stack, mode)
        out.append(f"{strategy:5s} overlap {mode:5s}  step {st.time * 1e3:7.2f} ms  compute "
                   f"{st.compute * 1e3:7.2f}  comm {st.comm * 1e3:7.2f}  exposed {st.exposed * 1e3:7.2f}")
    return out
