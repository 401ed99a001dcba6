"""Training: loss, optimizer, a jitted (and optionally sharded) step, and the loop behind
`python -m shared.train`.

    python -m shared.train                       # tiny preset, stdlib corpus, ~3 min on a CPU
    python -m shared.train --preset small --data input.txt --steps 2000
    python -m shared.train --name tiny --resume  # continue runs/tiny from its last checkpoint
    python -m shared.train --devices 8 --strategy fsdp   # 8 simulated CPU devices, FSDP
    python -m shared.train --dtype bfloat16 --remat full --grad-accum 4

The loop trains on packed rows (shared.data.Rows: documents end to end, segment ids
keep attention and the loss inside each document), prefetched in a background
thread (shared.pipeline), checkpoints asynchronously with the loader's position
(shared.checkpoint), stops at the first non-finite loss naming the first
non-finite gradient, and ends with the goodput breakdown (shared.goodput).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from shared import checkpoint, data, devices, goodput, hardware, host_memory, model, pipeline, sampling, sharding
from shared import config as cfg


class RunError(ValueError):
    """The run cannot start (or go on) as asked; the message is one line."""


class NonFiniteError(RunError):
    """The loss or a gradient became NaN or infinite."""


def learning_rate(tc: cfg.TrainConfig) -> optax.Schedule:
    """Linear warmup to tc.lr, then cosine decay to tc.lr * tc.min_lr_ratio at tc.steps."""
    return optax.warmup_cosine_decay_schedule(
        0.0, tc.lr, tc.warmup_steps, max(tc.steps, tc.warmup_steps + 1), tc.lr * tc.min_lr_ratio)


def optimizer(tc: cfg.TrainConfig) -> optax.GradientTransformation:
    """AdamW with global-norm clipping; weight decay on matrices only (not norms' scales)."""
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2 and p.shape[-1] > 1, params)
    return optax.chain(
        optax.clip_by_global_norm(tc.grad_clip),
        optax.adamw(learning_rate(tc), b1=0.9, b2=0.95, weight_decay=tc.weight_decay,
                    mask=decay_mask))


# ---- where the state lives ----

@dataclass(frozen=True)
class Placement:
    """A mesh and a strategy (shared.sharding), or neither for one device."""
    mesh: Mesh | None = None
    strategy: str | None = None

    def state(self, abstract_state: dict, tc: cfg.TrainConfig):
        """Shardings of the training state: parameters by the strategy's rules, the
        optimizer's moments like their parameters, counters replicated."""
        if self.mesh is None:
            return None
        params = sharding.param_shardings(abstract_state["params"], self.strategy, self.mesh)
        replicated = NamedSharding(self.mesh, P())
        opt_state = optax.tree_map_params(optimizer(tc), lambda _, s: s,
                                          abstract_state["opt_state"], params,
                                          transform_non_params=lambda _: replicated)
        return {"params": params, "opt_state": opt_state, "step": replicated}

    def batch(self):
        """Sharding of [B, S] batch arrays: B split over the data axis."""
        if self.mesh is None:
            return None
        return sharding.activation_sharding(("batch", "sequence"), self.strategy, self.mesh)

    def constraint(self):
        if self.mesh is None:
            return None
        return lambda x, logical: sharding.constrain(x, logical, self.strategy, self.mesh)


def init_state(mc: cfg.ModelConfig, tc: cfg.TrainConfig, placement: Placement = Placement()) -> dict:
    """The whole training state as one pytree, so one checkpoint call saves all of it.
    With a mesh, every array is created already split across the devices."""
    return _initializer(mc, tc, placement)()


@functools.cache  # one compilation per config and placement in a process (tests, notebooks)
def _initializer(mc: cfg.ModelConfig, tc: cfg.TrainConfig, placement: Placement):
    def make():
        params = model.init(mc, jax.random.key(tc.seed))
        return {"params": params, "opt_state": optimizer(tc).init(params),
                "step": jnp.zeros((), jnp.int32)}

    return jax.jit(make, out_shardings=placement.state(jax.eval_shape(make), tc))


def param_names(params: dict) -> list[str]:
    """Names of the parameter arrays in tree order, e.g. "blocks/w_up"."""
    return ["/".join(str(k.key) for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def _step_fn(mc: cfg.ModelConfig, tc: cfg.TrainConfig, placement: Placement):
    """step(state, batch) -> (state, metrics), not jitted. batch: dict of [B, S] arrays.

    With tc.grad_accum = k the batch is split into k micro-batches (row i goes to
    micro-batch i mod k, so each device keeps its own rows) whose gradient sums a
    scan adds up: only one micro-batch's activations are alive at a time.
    """
    opt = optimizer(tc)
    grad_sums = jax.value_and_grad(model.loss_sums, has_aux=True)  # ((sum, count), grads of sum)
    constraint = placement.constraint()

    def gradients(params, batch):
        k = tc.grad_accum
        if k == 1:
            return grad_sums(params, batch, mc)
        micro = jax.tree.map(  # [B, S] -> [B/k, k, S] -> [k, B/k, S]
            lambda a: jnp.swapaxes(a.reshape(a.shape[0] // k, k, *a.shape[1:]), 0, 1), batch)
        add = lambda acc, mb: (jax.tree.map(jnp.add, acc, grad_sums(params, mb, mc)), None)
        zeros = ((jnp.zeros(()), jnp.zeros(())), jax.tree.map(jnp.zeros_like, params))
        return jax.lax.scan(add, zeros, micro)[0]

    def step(state, batch):
        params = state["params"]
        with model.sharding_constraints(constraint) if constraint else contextlib.nullcontext():
            (total, count), grads = gradients(params, batch)
        grads = jax.tree.map(lambda g: g / count, grads)
        updates, opt_state = opt.update(grads, state["opt_state"], params)
        new = {"params": optax.apply_updates(params, updates), "opt_state": opt_state,
               "step": state["step"] + 1}
        sq = jnp.stack([jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)])  # [n_arrays]
        return new, {"loss": total / count, "grad_norm": jnp.sqrt(sq.sum()), "grad_sq": sq}

    return step


@functools.cache  # the same jitted function, so compiled once, for each config and placement
def make_step(mc: cfg.ModelConfig, tc: cfg.TrainConfig, placement: Placement = Placement()):
    """The loop's jitted step(state, batch) -> (state, metrics): loss, grad_norm and
    grad_sq (each gradient array's squared norm, to name the first non-finite one).

    The old state is donated: its buffers are reused for the new one instead of
    holding two copies. On a mesh, state and batch keep the placement's shardings.
    """
    step = _step_fn(mc, tc, placement)
    if placement.mesh is None:
        return jax.jit(step, donate_argnums=0)
    state_sh = placement.state(jax.eval_shape(lambda: init_state(mc, tc)), tc)
    replicated = NamedSharding(placement.mesh, P())
    return jax.jit(step, donate_argnums=0, in_shardings=(state_sh, placement.batch()),
                   out_shardings=(state_sh, replicated))


def make_train_step(mc: cfg.ModelConfig, tc: cfg.TrainConfig):
    """Lesson 01's form of the step: step(state, tokens, targets) -> (state, loss), every
    row one document. The loop uses make_step, which this wraps."""
    step = _step_fn(mc, tc, Placement())

    def simple(state, tokens, targets):
        state, metrics = step(state, {"inputs": tokens, "targets": targets})
        return state, metrics["loss"]

    return jax.jit(simple, donate_argnums=0)


def check_finite(metrics: dict, names: list[str], step: int) -> None:
    """Raise NonFiniteError naming the step and the first gradient array (tree order)
    that holds a NaN or an infinity. Reading the metrics waits for that step."""
    loss, norm = float(metrics["loss"]), float(metrics["grad_norm"])
    if np.isfinite(loss) and np.isfinite(norm):
        return
    bad = np.flatnonzero(~np.isfinite(np.asarray(metrics["grad_sq"])))
    first = f"first non-finite gradient: {names[bad[0]]}" if len(bad) else "gradients finite"
    raise NonFiniteError(f"step {step}: loss {loss}, gradient norm {norm}; {first}")


def make_eval(mc: cfg.ModelConfig, tc: cfg.TrainConfig, val, placement: Placement = Placement()):
    """evaluate(params) -> mean loss over tc.eval_batches fixed validation batches.

    val: packed rows (data.Rows), or a token array (lesson 01) cut into random windows.
    """
    if isinstance(val, data.Rows):
        loader = _loader(val, tc.batch_size, tc.seed)
        batches = [pipeline.place(loader, i, placement.batch()) for i in range(tc.eval_batches)]
    else:
        batches = [dict(zip(("inputs", "targets"), data.batch(val, tc.batch_size, mc.seq_len,
                                                              tc.seed, step=i)))
                   for i in range(tc.eval_batches)]
    sums = jax.jit(model.loss_sums, static_argnums=2)

    def evaluate(params) -> float:
        parts = [sums(params, b, mc) for b in batches]
        return float(sum(t for t, _ in parts) / sum(c for _, c in parts))

    return evaluate


def _loader(rows: data.Rows, batch_size: int, seed: int, position: int = 0) -> pipeline.Loader:
    try:
        return pipeline.Loader(rows, batch_size, seed, position)
    except ValueError as e:
        raise data.DataError(str(e)) from None


def memory_report(compiled, state: dict) -> dict[str, float]:
    """Bytes per device: parameters and optimizer state (their shards on device 0), and
    the compiled step's temporaries (activations kept for the backward pass, gradients)."""
    def on_first_device(tree) -> int:
        return sum(x.addressable_shards[0].data.nbytes for x in jax.tree.leaves(tree))

    analysis = compiled.memory_analysis()
    return {"parameters": on_first_device(state["params"]),
            "optimizer state": on_first_device(state["opt_state"]),
            "activations and temporaries": getattr(analysis, "temp_size_in_bytes", 0)}


@dataclass
class Result:
    state: dict
    history: list[dict] = field(default_factory=list)  # {"step", "loss"} and {"step", "val_loss"}
    sample: str = ""
    goodput: dict[str, float] = field(default_factory=dict)  # seconds per category
    memory: dict[str, float] = field(default_factory=dict)  # bytes per device


def prepare_run_dir(run_dir: Path, resume: bool, force: bool) -> None:
    holds_run = checkpoint.config_path(run_dir).exists()
    if resume and not holds_run:
        raise RunError(f"cannot resume: {run_dir} holds no run")
    if holds_run and not resume:
        if not force:
            raise RunError(f"{run_dir} already holds a run; pass --resume to continue it, "
                           f"--force to delete it and start over, or --name for a new folder")
        if jax.process_index() == 0:
            shutil.rmtree(run_dir)


def _sync(name: str) -> None:
    """Wait for every process (a no-op with one)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def train(mc: cfg.ModelConfig, tc: cfg.TrainConfig, run_dir: Path | str, *,
          data_path: str | None = None, resume: bool = False, force: bool = False,
          stop_after: int | None = None, sample_tokens: int = 0, progress: bool = True,
          placement: Placement = Placement()) -> Result:
    """Train, evaluate, checkpoint; returns the final state, the loss history, the
    goodput breakdown and the memory per device.

    stop_after ends the run early at that step (after checkpointing it), as if it had
    been interrupted: resuming it later gives the same result as never stopping.
    Only process 0 prints and writes the config; every process takes part in saves.
    """
    clock = goodput.Goodput()
    mc, tc = mc.validate(), tc.validate()
    run_dir = Path(run_dir)
    main_process = jax.process_index() == 0
    log = print if progress and main_process else (lambda *a, **k: None)
    with clock("startup"):
        prepare_run_dir(run_dir, resume, force)
        train_rows, val_rows = (data.Rows(part, mc.seq_len) for part in
                                data.Stream.of(data.load_documents(data_path)).split(mc.seq_len))
        if not resume and main_process:
            checkpoint.save_config(run_dir, mc, tc, {"data": data_path})
        _sync("run folder ready")
        if placement.mesh is not None:
            for name, size in (("batch_size", tc.batch_size),
                               ("batch_size / grad_accum", tc.batch_size // tc.grad_accum)):
                sharding.check_divisible(name, (size,), P(placement.batch().spec[0]), placement.mesh)
        state = init_state(mc, tc, placement)
        mgr = checkpoint.manager(run_dir, tc.keep_checkpoints)
        start, position = 0, 0
        if resume:
            start, state = checkpoint.restore(mgr, state)
            position = checkpoint.restore_data(mgr, start).get("position", start)
        loader = _loader(train_rows, tc.batch_size, tc.seed, position)
        evaluate = make_eval(mc, tc, val_rows, placement)
    with clock("compile"):
        shapes = {k: jax.ShapeDtypeStruct((tc.batch_size, mc.seq_len),
                                          jnp.float32 if k == "weights" else jnp.int32,
                                          sharding=placement.batch())
                  for k in ("inputs", "targets", "positions", "segment_ids", "weights")}
        step_fn = make_step(mc, tc, placement).lower(state, shapes).compile()
    result = Result(state, memory=memory_report(step_fn, state))
    log("memory per device: " + ", ".join(f"{k} {v / 2**20:,.1f} MiB" for k, v in result.memory.items()))

    show = progress and main_process
    # The peak of the compute dtype (bf16 compute, bf16 peak); on a CPU detect() calibrates
    # it, which takes seconds, so only when MFU is shown.
    peak = hardware.detect().flops(mc.dtype) if show else None
    n_devices = 1 if placement.mesh is None else placement.mesh.size
    flops_per_step = model.train_flops_per_token(mc) * tc.batch_size * mc.seq_len
    names = param_names(state["params"])
    end = min(tc.steps, stop_after or tc.steps)
    bar = tqdm(range(start, end), initial=start, total=tc.steps, disable=not show,
               desc=run_dir.name, unit="step", dynamic_ncols=True)
    feed = pipeline.Prefetch(lambda i: pipeline.place(loader, i, placement.batch()), loader.position)
    interval_start, interval_steps, previous = None, 0, None

    def save(done: int) -> None:
        if done not in mgr.all_steps():  # never overwrite a checkpoint already there
            with clock("checkpoint"):
                checkpoint.save(mgr, done, state, {"seed": tc.seed, "position": position + done - start})

    try:
        for step in bar:
            batch, waited = feed.next()
            clock.add("data", waited)
            state, metrics = step_fn(state, batch)
            if previous is not None:  # check the step before: this one is already queued
                check_finite(*previous)
            previous = (metrics, names, step + 1)
            done = step + 1
            if interval_start is None:  # time throughput from the end of the first step
                metrics["loss"].block_until_ready()
                interval_start, interval_steps = time.perf_counter(), 0
            else:
                interval_steps += 1
            if done % 10 == 0 or done == end:
                loss = float(metrics["loss"])
                result.history.append({"step": done, "loss": loss})
                postfix = {"loss": f"{loss:.3f}"}
                if interval_steps:
                    seconds = time.perf_counter() - interval_start
                    postfix["tok/s"] = f"{interval_steps * tc.batch_size * mc.seq_len / seconds:,.0f}"
                    if peak:
                        mfu = interval_steps * flops_per_step / seconds / (peak * n_devices)
                        postfix["MFU"] = f"{mfu:.0%}"
                    interval_start, interval_steps = time.perf_counter(), 0
                bar.set_postfix(postfix)
            if done % tc.eval_every == 0 or done == tc.steps:
                check_finite(*previous)
                with clock("eval"):
                    val = evaluate(state["params"])
                result.history.append({"step": done, "val_loss": val})
                if show:
                    bar.write(f"step {done}: validation loss {val:.3f}")
                interval_start = None  # evaluation time is not training throughput
            if done % tc.checkpoint_every == 0 or done == end:
                check_finite(*previous)  # never save a broken state
                save(done)
    except KeyboardInterrupt:
        bar.close()
        save(int(state["step"]))
        mgr.wait_until_finished()
        raise RunError(f"interrupted at step {int(state['step'])}; saved. Continue with "
                       f"--name {run_dir.name} --out {run_dir.parent} --resume") from None
    finally:
        feed.close()
        with clock("checkpoint"):
            mgr.wait_until_finished()
        bar.close()
    if previous is not None:
        check_finite(*previous)
    clock.stop()
    result.state, result.goodput = state, clock.breakdown()
    log(clock.report())
    if sample_tokens:
        prompt = data.encode("def ")
        out = sampling.generate(state["params"], mc, prompt, sample_tokens,
                                temperature=0.8, top_k=40, seed=tc.seed)
        result.sample = data.decode(out)
    return result


MODEL_FLAGS = ("dtype", "remat")  # flags that override the model config
TRAIN_FLAGS = ("steps", "seed", "batch_size", "grad_accum")  # ... and the training config
SAFE_ON_RESUME = ("steps", "keep_checkpoints")  # may change when a run is resumed; remat too


def resolve_config(args) -> tuple[cfg.ModelConfig, cfg.TrainConfig, str | None]:
    """(model config, train config, data path) from --preset and overrides; on --resume,
    the saved ones, which explicit flags may only change where it is safe (steps, remat)."""
    run_dir = Path(args.out) / args.name
    model_over = {k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k) is not None}
    train_over = {k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k) is not None}
    if args.resume and checkpoint.config_path(run_dir).exists():
        mc, tc, saved = checkpoint.load_config(run_dir)
        asked = cfg.preset(args.preset) if args.preset else cfg.Preset(mc, tc)
        asked_mc = dataclasses.replace(asked.model, **model_over)
        asked_tc = dataclasses.replace(asked.train, **train_over)
        diffs = (cfg.differences(mc, asked_mc, ignore=("remat",))
                 + cfg.differences(tc, asked_tc, ignore=SAFE_ON_RESUME))
        data_path = saved.get("data")
        if args.data is not None and args.data != data_path:
            diffs.append(f"data: {data_path!r} -> {args.data!r}")
        if diffs:
            raise RunError(f"cannot resume {run_dir}: its config differs in {'; '.join(diffs)}")
        return (dataclasses.replace(mc, remat=asked_mc.remat),
                dataclasses.replace(tc, steps=asked_tc.steps), data_path)
    p = cfg.preset(args.preset or "tiny")
    return (dataclasses.replace(p.model, **model_over), dataclasses.replace(p.train, **train_over),
            args.data)


def setup_devices(args) -> Placement:
    """Simulated CPU devices and jax.distributed as the flags say, then the mesh.
    Must run before anything else touches JAX."""
    if args.devices:
        devices.simulate_cpu_devices(args.devices)
    if args.coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS"):
        devices.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    if not args.strategy:
        if jax.device_count() > 1 and jax.process_count() > 1:
            raise RunError("several processes need a --strategy to split the work (e.g. dp)")
        return Placement()
    mesh = sharding.strategy_mesh(args.strategy, jax.devices(), args.model_axis)
    return Placement(mesh, args.strategy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.train", description="Train the course's language model.",
        epilog="Presets: " + "; ".join(f"{k}: {v.about}" for k, v in cfg.PRESETS.items()))
    parser.add_argument("--preset", help="model and training preset (default tiny)")
    parser.add_argument("--data", help="a text file or a folder of text files "
                        "(default: the Python standard library's sources)")
    parser.add_argument("--steps", type=int, help="total optimizer steps (default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="sequences per step (default: the preset's)")
    parser.add_argument("--grad-accum", type=int, help="micro-batches per step (default 1)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"],
                        help="compute dtype; weights and optimizer state stay float32 (default: the preset's)")
    parser.add_argument("--remat", choices=cfg.REMAT, help="what the backward pass recomputes (default none)")
    parser.add_argument("--seed", type=int, help="initialisation and data order (default 0)")
    parser.add_argument("--out", default="runs", help="folder for run folders (default runs)")
    parser.add_argument("--name", help="run folder name under --out (default: the preset name)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the folder")
    parser.add_argument("--force", action="store_true", help="delete an existing run in the folder first")
    parser.add_argument("--sample-tokens", type=int, default=300,
                        help="tokens to generate at the end (default 300; 0 for none)")
    parser.add_argument("--strategy", choices=list(sharding.STRATEGIES),
                        help="split the work over all devices (default: one device)")
    parser.add_argument("--model-axis", type=int, help="devices on the model axis for fsdp_tp (default 2)")
    parser.add_argument("--devices", type=int, help="simulate this many CPU devices (CPU only)")
    devices.add_distributed_arguments(parser)
    args = parser.parse_args(argv)
    args.name = args.name or args.preset or "tiny"
    errors = (cfg.ConfigError, data.DataError, checkpoint.CheckpointError, RunError,
              sharding.ShardingError, devices.DeviceSetupError)
    try:
        placement = setup_devices(args)
        mc, tc, data_path = resolve_config(args)
        run_dir = Path(args.out) / args.name
        main_process = jax.process_index() == 0
        if main_process:
            print(f"{hardware.describe(hardware.detect())}")
            where = (f"{placement.strategy} on mesh {dict(placement.mesh.shape)}"
                     if placement.mesh is not None else f"one {jax.devices()[0].platform} device")
            print(f"model: {model.matmul_param_count(mc):,} matmul parameters, "
                  f"{model.train_flops_per_token(mc):,} training FLOPs per token, {mc.dtype} "
                  f"compute, remat {mc.remat}; {where}; run folder {run_dir}")
        result = train(mc, tc, run_dir, data_path=data_path, resume=args.resume,
                       force=args.force, sample_tokens=args.sample_tokens, placement=placement)
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if main_process:
        if result.sample:
            print("sample (temperature 0.8, top-k 40):\n" + result.sample)
        print(f"checkpoint saved in {run_dir}; generate with: "
              f"python -m shared.generate --checkpoint {run_dir} --prompt 'def '")
    if jax.process_count() > 1:
        jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    host_memory.relaunch_with_huge_pages()  # the step's fresh temporaries fault 512x less often
    sys.exit(main())
