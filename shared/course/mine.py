"""Your model: the pieces of the LLM you wrote in the build exercises, and the real jobs on them.

Each lesson's build exercise writes a piece the core uses through the same interface, so
the real jobs can run on it:

    python -m shared.train --mine         # train on your pieces, where you wrote them
    python -m shared.train --solutions    # the same with the reference answers

Where each piece goes is the table BUILDS below: the model is the `net` the training library
differentiates, your attention is registered under the config's attention name, and every
other piece replaces the core functions its Plugs name while the job runs.

A piece is yours once its file no longer holds the stubs (every function listed below has
a body other than `raise NotImplementedError`); check that it is right with its tests
first, e.g. `python -m pytest exercises/01_llm_from_scratch`.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator

import jax
import numpy as np

from shared import attention, model, roofline, sharding, timing
from shared.train import step
from shared.config import Error, ModelConfig
from shared.course import ROOT
from shared.course.pytest_plugin import load_module


@dataclass(frozen=True)
class Plug:
    """One place a piece goes: while a job runs, the core's `target` ("module:name", or
    "module:Class.method") is replaced by what `adapt(piece)` returns."""
    target: str
    adapt: Callable[[ModuleType], Callable]

    def swap(self, piece: ModuleType) -> Callable[[], None]:
        """Put the piece in; returns the function that puts the core's back."""
        module, _, path = self.target.partition(":")
        owner = importlib.import_module(module)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        old = vars(owner)[name] if isinstance(owner, type) else getattr(owner, name)
        setattr(owner, name, self.adapt(piece))
        return lambda: setattr(owner, name, old)


@dataclass(frozen=True)
class Build:
    piece: str  # what the core calls it, e.g. "model"
    lesson: str  # the exercises/ folder
    topic: str  # the file, without .py
    functions: tuple[str, ...]  # what the core calls on it
    what: str  # for the learner
    commands: tuple[str, ...]  # the commands whose job runs on it (with --mine)
    plugs: tuple[Plug, ...] = ()  # where it goes (model and attention are passed, not swapped)
    example: str = ""  # flags that show it off, after --mine

    def path(self, solutions: bool = False) -> Path:
        return ROOT / ("solutions" if solutions else "exercises") / self.lesson / f"{self.topic}.py"

    @property
    def runs(self) -> str:
        return f"{self.commands[0]} --mine{' ' + self.example if self.example else ''}"


def _rows_get(piece: ModuleType) -> Callable:
    return lambda rows, index: piece.pack_rows(rows.stream.tokens, rows.stream.starts, rows.seq_len,
                                               np.asarray(index))


def _loader_indices(piece: ModuleType) -> Callable:
    return lambda loader, position: np.asarray(
        piece.batch_indices(len(loader.rows), loader.batch_size, loader.seed, position))


def _cost(piece: ModuleType) -> Callable:
    def cost(fn, *args):
        c = piece.cost(fn, *args)
        return roofline.Cost(c.flops, c.bytes)
    return cost


def _timeit(piece: ModuleType) -> Callable:
    return lambda fn, *args, **kw: timing.Timing(*piece.timeit(fn, *args, **kw))


def _verdict(field: str) -> Callable[[ModuleType], property]:
    """A property of roofline.Analysis answered by your roofline_point."""
    return lambda piece: property(lambda a: getattr(
        piece.roofline_point(a.cost, a.chip, a.dtype, a.measured_s), field))


def _by_strategy(name: str) -> Callable[[ModuleType], Callable]:
    """Your param_specs or activation_spec, given the strategy by name as the exercise asks."""
    return lambda piece: lambda first, strategy: getattr(piece, name)(
        tuple(first) if name == "activation_spec" else first, sharding.get_strategy(strategy).name)


def _stack_forward(piece: ModuleType) -> Callable:
    core = sharding.stack_forward  # read before the swap: the core's, for the other strategies
    return lambda x, ws, strategy, mesh: (piece.fsdp_forward(x, ws, mesh) if strategy == "fsdp"
                                          else core(x, ws, strategy, mesh))


def _make_step(piece: ModuleType) -> Callable:
    core = step.make_step
    return lambda mc, tc, placement=step.Placement(), net=model: (
        piece.make_step(mc, tc, net) if placement.mesh is None  # the exercise's step is one device's
        else core(mc, tc, placement, net))


def _given(name: str) -> Callable[[ModuleType], Callable]:
    return lambda piece: getattr(piece, name)


TRAIN, GENERATE = "python -m shared.train", "python -m shared.generate"
BUILDS = (
    Build("model", "01_llm_from_scratch", "build_model", ("init", "forward", "loss_sums"),
          "the model and its loss, from einsums", (TRAIN,)),
    Build("roofline", "02_single_chip_performance", "build_roofline",
          ("cost", "timeit", "roofline_point"), "a roofline point: compiled cost, timing, verdict",
          ("python -m shared.bench roofline",),
          (Plug("shared.roofline:cost", _cost), Plug("shared.roofline:timeit", _timeit),
           *(Plug(f"shared.roofline:Analysis.{f}", _verdict(f))
             for f in ("intensity", "ridge", "bound", "bound_s", "fraction")))),
    Build("specs", "03_sharding_collectives", "build_specs", ("param_specs", "activation_spec"),
          "how every weight and activation is split over the devices", (TRAIN,),
          (Plug("shared.sharding:param_specs", _by_strategy("param_specs")),
           Plug("shared.sharding:activation_spec", _by_strategy("activation_spec"))),
          "--devices 8 --strategy fsdp"),
    Build("fsdp", "04_sharding_strategies", "build_fsdp", ("fsdp_matmul", "fsdp_forward"),
          "FSDP by hand in shard_map: gather before use, reduce-scatter the gradient",
          ("python -m shared.bench sharding",),
          (Plug("shared.sharding:stack_forward", _stack_forward),)),
    Build("attention", "05_attention", "build_flash", ("flash_attention",),
          "flash attention, forward and backward", (TRAIN,)),
    Build("step", "06_optimised_training", "build_step", ("make_step", "remat"),
          "the training step: mixed precision, remat, donation, accumulation", (TRAIN,),
          (Plug("shared.train.loop:make_step", _make_step),
           Plug("shared.backward:remat", _given("remat"))),
          "--dtype bfloat16 --remat full"),
    Build("loader", "07_training_end_to_end", "build_loader", ("pack_rows", "batch_indices"),
          "packed rows and a resumable batch order", (TRAIN,),
          (Plug("shared.data:Rows.get", _rows_get),
           Plug("shared.pipeline:Loader.indices", _loader_indices))),
    Build("profile", "08_profiling_naive_inference", "build_profile",
          ("op_times", "categorize", "breakdown", "summarize"),
          "the profile reader: time per op and per kind of work", ("python -m shared.bench train",),
          tuple(Plug(f"shared.profiling:{f}", _given(f))
                for f in ("op_times", "categorize", "breakdown", "summarize")),
          "--preset tiny --profile 3"),
    Build("decode", "09_efficient_inference", "build_decode", ("extend",),
          "the KV-cached forward for prefill and decode", (GENERATE, "python -m shared.bench serving"),
          (Plug("shared.inference:extend", _given("extend")),),
          "--checkpoint runs/tiny --kv-cache"),
    Build("scheduler", "09_efficient_inference", "build_decode", ("admit", "retire"),
          "continuous batching: who starts, who finishes", ("python -m shared.bench serving",),
          (Plug("shared.engine:admit", _given("admit")), Plug("shared.engine:retire", _given("retire")))),
    Build("kernel", "10_pallas_aot", "build_pallas", ("flash_forward",),
          "flash attention's forward pass as a Pallas kernel",
          (TRAIN, "python -m shared.bench attention"),
          (Plug("shared.flash_pallas:flash_forward", _given("flash_forward")),),
          "--attention pallas"),
)


def is_stub(function: ast.FunctionDef) -> bool:
    body = [s for s in function.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return len(body) == 1 and isinstance(body[0], ast.Raise) and "NotImplementedError" in ast.unparse(body[0])


def written(build: Build, solutions: bool = False) -> bool:
    """True when every function the core calls exists in the file and is not a stub."""
    path = build.path(solutions)
    if not path.exists():
        return False
    try:
        tree = ast.parse(path.read_text())
    except SyntaxError as e:
        raise Error(f"{path.relative_to(ROOT)} line {e.lineno}: {e.msg}; fix it, or run "
                    f"without --mine") from None
    found = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    return all(name in found and not is_stub(found[name]) for name in build.functions)


def load(build: Build, solutions: bool = False) -> ModuleType:
    """The build exercise's module; a file that fails to import is a one-line Error."""
    try:
        return load_module(build.path(solutions))
    except Exception as e:
        raise Error(f"{build.path(solutions).relative_to(ROOT)} cannot be imported: "
                    f"{type(e).__name__}: {e}") from None


def pieces(solutions: bool = False, command: str | None = None) -> dict[str, ModuleType]:
    """The written build exercises, loaded: piece name -> module (yours, or the answers);
    with `command` (e.g. "python -m shared.train"), only the pieces that command runs."""
    return {b.piece: load(b, solutions) for b in _for(command) if written(b, solutions)}


def _for(command: str | None) -> list[Build]:
    return [b for b in BUILDS if command is None or command in b.commands]


def add_switch(parser: argparse.ArgumentParser) -> None:
    """--mine and --solutions, for every command that can run on the learner's pieces."""
    yours = parser.add_mutually_exclusive_group()
    yours.add_argument("--mine", action="store_true",
                       help="run on the pieces you wrote in the build exercises (shared.course.mine)")
    yours.add_argument("--solutions", action="store_true",
                       help="run on the build exercises' reference answers")


def chosen(args: argparse.Namespace, command: str) -> dict[str, ModuleType]:
    """The pieces add_switch's flags ask `command` to run on (none without a flag)."""
    return pieces(args.solutions, command) if args.mine or args.solutions else {}


@contextlib.contextmanager
def plugged_in(loaded: dict[str, ModuleType], config: ModelConfig | None = None) -> Iterator[ModuleType]:
    """Put the loaded pieces where the core calls them while the block runs: your attention
    wherever config.attention is asked for (shared.attention.plug), the others at their
    Plugs' targets. Yields the model's functions for the train library's `net`: yours, or
    shared.model. Programs traced before or during the block are dropped at both ends, so
    neither the core nor a later job runs a stale one."""
    restore = [plug.swap(loaded[b.piece]) for b in BUILDS if b.piece in loaded for plug in b.plugs]
    if "attention" in loaded:
        attention.plug(config.attention, loaded["attention"].flash_attention)
    if loaded:
        _forget()
    try:
        yield loaded.get("model", model)
    finally:
        for put_back in reversed(restore):
            put_back()
        if "attention" in loaded:
            attention.plug(config.attention, None)
        if loaded:
            _forget()


def _forget() -> None:
    """Drop every traced program and cached builder, so that no job runs a stale piece."""
    jax.clear_caches()
    step.forget()


def describe(loaded: dict[str, ModuleType], solutions: bool = False,
             command: str | None = None) -> str:
    """One line saying whose each piece `command` runs is, for the start of a job."""
    whose = "the reference answers'" if solutions else "yours"
    parts = [f"{b.piece}: {whose} ({b.path(solutions).relative_to(ROOT)})" if b.piece in loaded
             else f"{b.piece}: the core's (exercises/{b.lesson}/{b.topic}.py is not written yet)"
             for b in _for(command)]
    if {"model", "attention"} <= loaded.keys():
        parts.append("the attention piece is not used: the model piece computes its own attention")
    return "; ".join(parts)


def report() -> list[str]:
    """'Your model' for python -m shared.check: each piece, whose it is, and the command whose
    real job runs on it (the core's pieces stand in for the ones not written yet)."""
    yours = [b for b in BUILDS if written(b)]
    lines = [f"your model: {len(yours)} of {len(BUILDS)} pieces are yours"]
    for b in BUILDS:
        state = "yours" if b in yours else "not written yet"
        lines.append(f"    {b.piece:10s} {state:16s} exercises/{b.lesson}/{b.topic}.py")
        lines.append(f"    {'':10s} {b.what}; runs in: {b.runs}")
    return lines
