"""Exercises 8.7-8.10, answered: the profile reader, op by op and kind by kind.

op_times and summarize are drop-ins for shared.profiling's; categorize and breakdown say what
kind of work each op is and how much of a step each kind took. Each step is a small helper
(_newest_trace, _op_lines, _op_events, _words_of_name, _words_in_hlo, _category, ...) so that
it reads on its own; tests/wrong/ replaces one of them at a time with a classic mistake.
"""

import collections
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import jax

from shared.config import Error

CATEGORIES = ("matmul", "attention", "elementwise", "collective", "copy", "other")


# No `from __future__ import annotations` in this file: the course loads it by its path, and a
# dataclass in such a module cannot resolve annotations written as strings.
@dataclass(frozen=True)
class OpTime:
    name: str  # the HLO instruction, e.g. "dot.3" or "loop_add_fusion"
    module: str  # the compiled program it belongs to, e.g. "jit_step"
    count: int  # times it ran in the trace
    seconds: float  # summed over those runs


# ---- 8.7: the op events of a trace ----

def _newest_trace(logdir: str | os.PathLike) -> Path:
    files = sorted(Path(logdir).glob("**/*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no .xplane.pb under {logdir}; record one with jax.profiler.trace")
    return files[-1]


def _op_lines(xspace) -> Iterator:
    """The lines that hold each compiled op once: a device plane's "XLA Ops" line (its other
    lines show the same time again, as kernels or steps), or, with no device plane (a CPU),
    the threads of the host planes."""
    devices = [p for p in xspace.planes if p.name.startswith("/device:")]
    for plane in devices or xspace.planes:
        lines = list(plane.lines)
        ops_lines = [line for line in lines if line.name == "XLA Ops"]
        yield from (ops_lines if devices and ops_lines else lines)


def _op_events(line) -> Iterator[tuple[str, str, float]]:
    """(op, module, nanoseconds) of the compiled ops on one line, leaving out containers."""
    ops = sorted(((e.start_ns, e.end_ns, dict(e.stats)) for e in line.events
                  if any(key == "hlo_op" for key, _ in e.stats)),  # host events carry no hlo_op
                 key=lambda op: op[0])
    for (start, end, stats), after in zip(ops, ops[1:] + [None]):
        if after is not None and after[0] < end:
            continue  # the next op starts inside this one (a while around its body): a container
        yield stats["hlo_op"], str(stats.get("hlo_module", "")), end - start


def op_times(logdir: str | os.PathLike) -> list[OpTime]:
    """Exercise 8.7: every compiled op in the newest trace under logdir, longest total first."""
    xspace = jax.profiler.ProfileData.from_file(str(_newest_trace(logdir)))
    runs: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for line in _op_lines(xspace):
        for op, module, ns in _op_events(line):
            runs[op, module].append(ns)
    ops = [OpTime(op, module, len(ns), sum(ns) * 1e-9) for (op, module), ns in runs.items()]
    return sorted(ops, key=lambda o: o.seconds, reverse=True)


# ---- 8.8: what kind of work an op is ----

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
    """Exercise 8.8: the kind of work op `name` does, one of CATEGORIES."""
    words = _words_in_hlo(name, hlo) if hlo else None
    return _category(words if words is not None else _words_of_name(name))


# ---- 8.9: seconds per step, kind by kind ----

def _programs(hlo: str) -> dict[str, str]:
    """Module name -> its compiled text, from texts joined one after another."""
    parts = re.split(r"^(?=HloModule )", hlo, flags=re.MULTILINE)
    return {m[1]: part for part in parts if (m := re.match(r"HloModule ([^\s,]+)", part))}


def breakdown(ops: list[OpTime], steps: int = 1, hlo: str = "") -> dict[str, float]:
    """Exercise 8.9: seconds per step of each category, in CATEGORIES order."""
    if steps < 1:
        raise ValueError(f"breakdown: steps must be at least 1, got {steps}")
    programs = _programs(hlo)
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    for op in ops:
        seconds[categorize(op.name, programs.get(op.module, ""))] += op.seconds
    # The totals hold every run of the trace: per step is over the steps, not over an op's runs.
    return {category: total / steps for category, total in seconds.items()}


# ---- 8.10: the report ----

def summarize(logdir: str | os.PathLike, top: int = 10, steps: int = 1, hlo: str = "") -> list[OpTime]:
    """Exercise 8.10: print the time per category and the top ops per step; return the top ops."""
    ops = op_times(logdir)
    if not ops:
        raise Error(f"{_newest_trace(logdir)} holds no compiled ops; was the work inside the trace?")
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
