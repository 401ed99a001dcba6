"""The training run: start (folder, data, state, resume), compile_step, run_steps.

The loop trains on packed rows (shared.data.Rows: documents end to end, segment ids
keep attention and the loss inside each document), prefetched in a background
thread (shared.pipeline), checkpoints asynchronously with the loader's position
(shared.checkpoint), stops at the first non-finite loss naming the first
non-finite gradient, and ends with the goodput breakdown (shared.goodput).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from shared import checkpoint, data, goodput, model, pipeline, sharding
from shared import config as cfg
from shared.train.errors import RunError
from shared.train.evaluation import loader, make_eval
from shared.train.meter import Throughput, chip_for
from shared.train.runs import locked, prepare_run_dir
from shared.train.step import (Placement, check_finite, compiler_options, init_state, make_step,
                               memory_report, param_names)


@dataclass
class Result:
    state: dict
    history: list[dict] = field(default_factory=list)  # {"step", "loss"} and {"step", "val_loss"}
    goodput: dict[str, float] = field(default_factory=dict)  # seconds per category
    memory: dict[str, float] = field(default_factory=dict)  # bytes per device


@dataclass
class Run:
    """What start() makes ready: the configs, the state at the first step, the loaders."""
    mc: cfg.ModelConfig
    tc: cfg.TrainConfig
    run_dir: Path
    placement: Placement
    state: dict
    mgr: object  # the orbax CheckpointManager of run_dir
    first: int  # the step the loop starts from (0, or the resumed checkpoint's)
    position: int  # the loader's batch number at step `first`
    loader: pipeline.Loader
    evaluate: Callable[[dict], float]  # params -> validation loss
    net: ModuleType  # the model's init and loss_sums: shared.model, or the learner's


def train(mc: cfg.ModelConfig, tc: cfg.TrainConfig, run_dir: Path | str, *,
          data_path: str | None = None, resume: bool = False, force: bool = False,
          stop_after: int | None = None, progress: bool = True,
          placement: Placement = Placement(), net: ModuleType = model) -> Result:
    """Train, evaluate, checkpoint; returns the final state, the loss history, the
    goodput breakdown and the memory per device.

    stop_after ends the run early at that step (after checkpointing it), as if it had
    been interrupted: resuming it later gives the same result as never stopping.
    Only process 0 prints and writes the config; every process takes part in saves.
    net: the model's init and loss_sums (shared.model, or the learner's build exercise).
    """
    clock = goodput.Goodput()
    show = progress and jax.process_index() == 0
    run_dir = Path(run_dir)
    lock = locked(run_dir) if jax.process_index() == 0 else contextlib.nullcontext()
    with lock, stop_requests() as asked:  # a SIGTERM while compiling stops after one step
        with clock("startup"):
            run = start(mc.validate(), tc.validate(), run_dir, data_path=data_path,
                        resume=resume, force=force, placement=placement, net=net)
        with clock("compile"):
            step_fn = compile_step(run)
        result = Result(run.state, memory=memory_report(step_fn, run.state))
        if show:
            print("memory per device: " + ", ".join(f"{k} {v / 2**20:,.1f} MiB" for k, v in result.memory.items()))
        result.state = run_steps(run, step_fn, result.history, clock, stop_after=stop_after,
                                 show=show, asked=asked)
    clock.stop()
    result.goodput = clock.breakdown()
    if show:
        print(clock.report())
    return result


def start(mc: cfg.ModelConfig, tc: cfg.TrainConfig, run_dir: Path, *, data_path: str | None,
          resume: bool, force: bool, placement: Placement, net: ModuleType = model) -> Run:
    """Make the run folder ready, split the corpus, and build or restore the state."""
    prepare_run_dir(run_dir, resume, force)
    train_rows, val_rows = (data.Rows(part, mc.seq_len) for part in
                            data.Stream.of(data.load_documents(data_path)).split(mc.seq_len))
    if jax.process_index() == 0 and (not resume or checkpoint.load_config(run_dir)[:2] != (mc, tc)):
        # a resumed run that goes further (--steps) or recomputes differently (--remat) says
        # so in its folder, so that the next --resume continues what this one started
        checkpoint.save_config(run_dir, mc, tc, {"data": data_path, **getattr(net, "RUN_CONFIG", {})})
    _sync("run folder ready")
    if placement.mesh is not None:
        for name, size in (("batch_size", tc.batch_size),
                           ("batch_size / grad_accum", tc.batch_size // tc.grad_accum)):
            sharding.check_divisible(name, (size,), P(placement.batch().spec[0]), placement.mesh)
    state = init_state(mc, tc, placement, net)
    mgr = checkpoint.manager(run_dir, tc.keep_checkpoints)
    first, position = 0, 0
    if resume:
        first, state, saved = checkpoint.restore_run(mgr, state)
        position = saved.get("position", first)
    return Run(mc, tc, run_dir, placement, state, mgr, first, position,
               loader(train_rows, tc.batch_size, tc.seed, position),
               make_eval(mc, tc, val_rows, placement, net), net)


def compile_step(run: Run):
    """The loop's step compiled ahead of time for the run's state and batch shapes."""
    shapes = {k: jax.ShapeDtypeStruct((run.tc.batch_size, run.mc.seq_len),
                                      jnp.float32 if k == "weights" else jnp.int32,
                                      sharding=run.placement.batch())
              for k in ("inputs", "targets", "positions", "segment_ids", "weights")}
    # The step's XLA options here too, not only in make_step: a plugged-in step (build exercise
    # 6.6) is jitted without them, and the loop compiles whichever step it runs.
    lowered = make_step(run.mc, run.tc, run.placement, run.net).lower(run.state, shapes)
    return lowered.compile(compiler_options=compiler_options(run.mc, run.net))


def run_steps(run: Run, step_fn, history: list[dict], clock: goodput.Goodput, *,
              stop_after: int | None = None, show: bool = True,
              asked: list[str] | None = None) -> dict:
    """Run the steps from run.first to the end (or stop_after); returns the last state.

    Losses and validation losses go to `history`; time to `clock`'s categories.
    Each step's metrics are checked while the next step already runs, so the host
    never stalls the device except to log, evaluate or save. `asked`: stop_requests()'s list,
    when the caller took the signals already (train does, from its start).
    """
    tc = run.tc
    end = min(tc.steps, stop_after or tc.steps)
    bar = tqdm(range(run.first, end), initial=run.first, total=tc.steps, disable=not show,
               desc=run.run_dir.name, unit="step", dynamic_ncols=True)
    meter = _meter(run) if show else None
    feed = pipeline.Prefetch(lambda i: pipeline.place(run.loader, i, run.placement.batch()),
                             run.position)
    names, state, previous = param_names(run.state["params"]), run.state, None
    hint = f"Continue with --name {run.run_dir.name} --out {run.run_dir.parent} --resume"
    with contextlib.nullcontext(asked) if asked is not None else stop_requests() as asked:
        try:
            for step in bar:
                batch, waited = feed.next()
                clock.add("data", waited)
                state, metrics = step_fn(state, batch)
                if previous is not None:  # check the step before: this one is already queued
                    check_finite(*previous)
                done = step + 1
                previous = (metrics, names, done)
                if meter and not meter.running:  # time throughput from the end of the first step
                    metrics["loss"].block_until_ready()
                    meter.start()
                elif meter:
                    meter.count()
                if done % 10 == 0 or done == end:
                    _log_loss(metrics, done, history, bar, meter)
                if done % tc.eval_every == 0 or done == tc.steps:
                    check_finite(*previous)
                    _validate(run, state, done, history, bar, clock, show)
                    if meter:
                        meter.pause()  # evaluation time is not training throughput
                if done % tc.checkpoint_every == 0 or done == end:
                    check_finite(*previous)  # never save a broken state
                    _save(run, state, done, clock)
                if asked and done < end:  # SIGTERM or Ctrl-C: stop here, between two steps
                    check_finite(*previous)
                    bar.close()
                    _save(run, state, done, clock)
                    checkpoint.wait(run.mgr)
                    raise RunError(f"stopped by {asked[0]} after step {done}; saved. {hint}")
        except KeyboardInterrupt:  # a second Ctrl-C: out now, saving the last whole step
            bar.close()
            try:
                _save(run, state, int(state["step"]), clock)
                checkpoint.wait(run.mgr)
            except Exception:  # noqa: BLE001: caught mid-step, the state was given to the step
                raise RunError(f"interrupted in the middle of a step; the last checkpoint is "
                               f"step {max(run.mgr.all_steps(), default=0)}. {hint}") from None
            raise RunError(f"interrupted at step {int(state['step'])}; saved. {hint}") from None
        finally:
            feed.close()
            bar.close()
            with clock("checkpoint"):
                finishing = sys.exc_info()[1]
                try:
                    checkpoint.wait(run.mgr)
                except checkpoint.CheckpointError:
                    if finishing is None:  # else the error already on its way says more
                        raise
    if previous is not None:
        check_finite(*previous)
    if meter and (note := meter.note()):
        print(note)
    return state


@contextlib.contextmanager
def stop_requests() -> Iterator[list[str]]:
    """SIGTERM (what `timeout` and cluster schedulers send) and a first Ctrl-C ask the loop to
    save and stop at the next step boundary; a second Ctrl-C interrupts at once. Yields the
    list the signals' names are added to. Only the main thread can take signals: elsewhere
    the list stays empty and the signals keep their usual handling."""
    asked: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield asked
        return

    def ask(signum, frame):
        if signum == signal.SIGINT and "SIGINT" in asked:
            raise KeyboardInterrupt
        asked.append(signal.Signals(signum).name)

    before = {sig: signal.signal(sig, ask) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield asked
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _meter(run: Run) -> Throughput:
    """The run's throughput meter. On a CPU chip_for() calibrates the peak of the compute
    dtype (bf16 compute, bf16 peak), which takes a second: only when shown."""
    tokens = run.tc.batch_size * run.mc.seq_len
    return Throughput(tokens, model.train_flops_per_token(run.mc) * tokens, chip_for(run.mc.dtype),
                      run.mc.dtype, run.placement.devices)


def _log_loss(metrics: dict, done: int, history: list[dict], bar, meter: Throughput | None) -> None:
    loss = float(metrics["loss"])  # waits for the step
    history.append({"step": done, "loss": loss})
    postfix = {"loss": f"{loss:.3f}"}
    rate = meter.read() if meter else None
    if rate:
        postfix["tok/s"] = f"{rate.tokens_per_s:,.0f}"
        if rate.mfu is not None:
            postfix["MFU"] = f"{rate.mfu:.0%}"
        if rate.busy:  # other programs share the cores: tok/s and MFU mislead (meter.note)
            postfix["busy"] = str(rate.busy)
    bar.set_postfix(postfix)


def _validate(run: Run, state: dict, done: int, history: list[dict], bar, clock, show: bool) -> None:
    with clock("eval"):
        val = run.evaluate(state["params"])
    history.append({"step": done, "val_loss": val})
    if show:
        bar.write(f"step {done}: validation loss {val:.3f}")


def _save(run: Run, state: dict, done: int, clock: goodput.Goodput) -> None:
    """Start saving the state after `done` steps, unless a checkpoint of it is there already."""
    if done not in run.mgr.all_steps():  # never overwrite a checkpoint already there
        with clock("checkpoint"):
            checkpoint.save(run.mgr, done, state, {"seed": run.tc.seed,
                                                   "position": run.position + done - run.first})


def _sync(name: str) -> None:
    """Wait for every process (a no-op with one)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)
