"""Profiles: record what the chip ran, and read the record back without a browser (lesson 02).

    with profiling.trace("runs/profile"):
        for _ in range(3):
            jax.block_until_ready(step(...))   # block inside, or the work lands outside
    profiling.summarize("runs/profile", steps=3)   # time per kind of work, and the top ops

To browse the same trace (timeline, per-op tables): `xprof --logdir runs/profile
--port 8791` (installed with tensorboard-plugin-profile) and open
http://localhost:8791/, or `pip install tensorboard` and `tensorboard --logdir
runs/profile`. On a CPU only the trace viewer has data; the op-profile tables need a
device plane, which GPUs and TPUs have.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import re
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


def summarize(logdir: str | os.PathLike, top: int = 10, steps: int = 1, hlo: str = "") -> list[OpTime]:
    """Print the time per category and the `top` compiled ops of the newest trace, per step
    over `steps` traced steps, and return those ops. `hlo`: the compiled programs' text
    (compiled.as_text()), which categorizes ops better than their names.

    Shares are of the time summed over all ops; on a CPU ops on different threads can
    overlap, so the sum can exceed the wall-clock time.
    """
    ops = op_times(logdir)
    if not ops:
        raise Error(f"{latest_trace(logdir)} holds no compiled ops; was the work inside the trace?")
    total = sum(o.seconds for o in ops) / steps
    print(f"{'category':<12} {'ms/step':>9} {'share':>6}")
    for category, seconds in breakdown(ops, steps, hlo).items():
        print(f"{category:<12} {seconds * 1e3:>9.3f} {seconds / total:>6.1%}")
    programs = _programs(hlo)
    width = max(len(o.name) for o in ops[:top])
    print(f"\n{'op'.ljust(width)}  {'program':<24} {'category':<12} {'runs':>5} {'ms/step':>9} {'share':>6}")
    for o in ops[:top]:
        kind = categorize(o.name, programs.get(o.module, ""))
        print(f"{o.name.ljust(width)}  {o.module[:24]:<24} {kind:<12} {o.count:>5} "
              f"{o.seconds / steps * 1e3:>9.3f} {o.seconds / steps / total:>6.1%}")
    print(f"{len(ops)} ops, {total * 1e3:.3f} ms per step over {steps} step(s)")
    return ops[:top]


# ---- what kind of work each op is ----

CATEGORIES = ("matmul", "attention", "elementwise", "collective", "copy", "other")
COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute",
               "collective-broadcast", "ragged-all-to-all")  # and their -start / -done halves
ATTENTION_WORDS = ("attention", "flash", "fmha")
MATMUL_OPS = {"dot", "convolution"}
MATMUL_WORDS = ("gemm", "matmul")  # cuBLAS custom calls, Triton's gemm fusions
LAYOUT_OPS = {"copy", "copy-start", "copy-done", "transpose", "bitcast", "bitcast-convert",
              "reshape", "broadcast", "slice", "dynamic-slice", "dynamic-update-slice",
              "concatenate", "pad", "reverse", "gather", "iota"}
OTHER_OPS = {"while", "conditional", "call", "custom-call", "infeed", "outfeed", "send",
             "send-done", "recv", "recv-done"}
# Words that say how an op is packaged or wired, not what it computes.
PACKAGING = {"fusion", "wrapped", "loop", "input", "parameter", "constant", "tuple",
             "get-tuple-element"}

INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%(?P<name>[^\s=]+)\s*=\s*(?P<shape>.*?)\s"
                         r"(?P<opcode>[a-z][a-z0-9-]*)\(")
COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%(?P<name>\S+)\s.*\{\s*$")
SCALAR = re.compile(r"^\w+\[\]$")  # e.g. s32[]: index arithmetic, a loop counter
METADATA = re.compile(r"metadata=\{[^}]*\}")


def _words_of_name(name: str) -> set[str]:
    """"bitcast_dynamic-update-slice_fusion.14" -> {"bitcast", "dynamic-update-slice", "fusion"}."""
    return set(re.sub(r"\.\d+$", "", name).split("_"))


@functools.lru_cache(maxsize=16)
def _parse(hlo: str) -> tuple[dict[str, list[str]], dict[str, tuple[str, str, str]]]:
    """(computation -> its instructions' names, instruction -> (opcode, shape, line)) of one program."""
    computations: dict[str, list[str]] = {}
    instructions: dict[str, tuple[str, str, str]] = {}
    body = None
    for line in hlo.splitlines():
        if header := COMPUTATION.match(line):  # instructions are indented, headers are not
            body = computations.setdefault(header["name"], [])
        elif line.strip() == "}":
            body = None
        elif body is not None and (inst := INSTRUCTION.match(line)):
            body.append(inst["name"])
            instructions[inst["name"]] = (inst["opcode"], inst["shape"], line)
    return computations, instructions


def _words_in_hlo(name: str, hlo: str) -> set[str] | None:
    """The op's opcode; for a fusion, with the opcodes of the arrays computed in the
    computations it calls (scalars are index arithmetic); for a custom call, with its target
    and backend config, which name the kernel. None when the program has no such op."""
    computations, instructions = _parse(hlo)
    if name not in instructions:
        return None
    opcode, _, line = instructions[name]
    line = METADATA.sub("", line)  # op_name's named scopes say where an op came from, not what it is
    words = {opcode}
    if opcode == "custom-call":
        words |= set(re.findall(r'custom_call_target="([^"]*)"', line))
        words |= set(re.findall(r"backend_config=(.*)", line))
    for called in re.findall(r"calls=%([\w.\-]+)", line):
        for inner in computations.get(called, []):
            if not SCALAR.match(instructions[inner][1]):
                words |= _words_in_hlo(inner, hlo)
    return words


def _category(words: set[str]) -> str:
    """The first kind of work the words name, most specific first: moving data between chips,
    a fused attention kernel, a matrix product, pure data movement, control flow, compute."""
    if any(w.startswith(COLLECTIVES) for w in words):
        return "collective"
    if any(a in w.lower() for w in words for a in ATTENTION_WORDS):
        return "attention"
    if words & MATMUL_OPS or any(m in w.lower() for w in words for m in MATMUL_WORDS):
        return "matmul"
    work = words - PACKAGING
    if work and work <= LAYOUT_OPS:
        return "copy"
    if words & OTHER_OPS:
        return "other"
    return "elementwise"


def categorize(name: str, hlo: str = "") -> str:
    """The kind of work op `name` does, one of CATEGORIES: from the compiled HLO text
    when given (the op's opcode, what its fusion computes, a custom call's target; never its
    metadata, which says where it came from), else from the words of its name."""
    words = _words_in_hlo(name, hlo) if hlo else None
    return _category(words if words is not None else _words_of_name(name))


def _programs(hlo: str) -> dict[str, str]:
    """Module name -> its compiled text, from texts joined one after another."""
    parts = re.split(r"^(?=HloModule )", hlo, flags=re.MULTILINE)
    return {m[1]: part for part in parts if (m := re.match(r"HloModule ([^\s,]+)", part))}


def breakdown(ops: list[OpTime], steps: int = 1, hlo: str = "") -> dict[str, float]:
    """Seconds per step of each category, in CATEGORIES order; each op is looked up in its
    own program's text (`hlo` may hold several compiled programs, one after another)."""
    if steps < 1:
        raise ValueError(f"breakdown: steps must be at least 1, got {steps}")
    programs = _programs(hlo)
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    for op in ops:
        seconds[categorize(op.name, programs.get(op.module, ""))] += op.seconds
    # The totals hold every run of the trace: per step is over the steps, not over an op's runs.
    return {category: total / steps for category, total in seconds.items()}
