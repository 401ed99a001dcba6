"""Training: loss, optimizer, a jitted step, and the loop behind `python -m shared.train`.

    python -m shared.train                       # tiny preset, stdlib corpus, ~3 min on a CPU
    python -m shared.train --preset small --data input.txt --steps 2000
    python -m shared.train --name tiny --resume  # continue runs/tiny from its last checkpoint
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from shared import checkpoint, data, hardware, model, sampling
from shared import config as cfg


class RunError(ValueError):
    """The run cannot start as asked; the message is one line."""


def loss_fn(params: dict, tokens: jax.Array, targets: jax.Array, config: cfg.ModelConfig) -> jax.Array:
    """Mean cross-entropy in nats of targets [B, S] under the model's logits."""
    logits = model.forward(params, tokens, config)  # [B, S, V] float32
    logprobs = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logprobs, targets[..., None], axis=-1).mean()


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


def init_state(mc: cfg.ModelConfig, tc: cfg.TrainConfig) -> dict:
    """The whole training state as one pytree, so one checkpoint call saves all of it."""
    params = model.init(mc, jax.random.key(tc.seed))
    return {"params": params, "opt_state": optimizer(tc).init(params),
            "step": jnp.zeros((), jnp.int32)}


def make_train_step(mc: cfg.ModelConfig, tc: cfg.TrainConfig):
    """A jitted step(state, tokens, targets) -> (state, loss). The old state is donated:
    its buffers are reused for the new one instead of holding two copies."""
    opt = optimizer(tc)

    def step(state, tokens, targets):
        loss, grads = jax.value_and_grad(loss_fn)(state["params"], tokens, targets, mc)
        updates, opt_state = opt.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        return {"params": params, "opt_state": opt_state, "step": state["step"] + 1}, loss

    return jax.jit(step, donate_argnums=0)


def make_eval(mc: cfg.ModelConfig, tc: cfg.TrainConfig, val: np.ndarray):
    """evaluate(params) -> mean loss over tc.eval_batches fixed validation batches."""
    batches = [data.batch(val, tc.batch_size, mc.seq_len, tc.seed, step=i)
               for i in range(tc.eval_batches)]
    loss = jax.jit(loss_fn, static_argnums=3)
    return lambda params: float(np.mean([loss(params, x, y, mc) for x, y in batches]))


@dataclass
class Result:
    state: dict
    history: list[dict] = field(default_factory=list)  # {"step", "loss"} and {"step", "val_loss"}
    sample: str = ""


def prepare_run_dir(run_dir: Path, resume: bool, force: bool) -> None:
    holds_run = checkpoint.config_path(run_dir).exists()
    if resume and not holds_run:
        raise RunError(f"cannot resume: {run_dir} holds no run")
    if holds_run and not resume:
        if not force:
            raise RunError(f"{run_dir} already holds a run; pass --resume to continue it, "
                           f"--force to delete it and start over, or --name for a new folder")
        shutil.rmtree(run_dir)


def train(mc: cfg.ModelConfig, tc: cfg.TrainConfig, run_dir: Path | str, *,
          data_path: str | None = None, resume: bool = False, force: bool = False,
          stop_after: int | None = None, sample_tokens: int = 0,
          progress: bool = True) -> Result:
    """Train, evaluate, checkpoint; returns the final state and the loss history.

    stop_after ends the run early at that step (after checkpointing it), as if it had
    been interrupted: resuming it later gives the same result as never stopping.
    """
    mc, tc = mc.validate(), tc.validate()
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, resume, force)
    tokens = data.load_corpus(data_path)
    splits = data.split(tokens, mc.seq_len)
    if not resume:
        checkpoint.save_config(run_dir, mc, tc, {"data": data_path})

    state = init_state(mc, tc)
    mgr = checkpoint.manager(run_dir)
    start = 0
    if resume:
        start, state = checkpoint.restore(mgr, state)
    step_fn = make_train_step(mc, tc)
    evaluate = make_eval(mc, tc, splits.val)
    result = Result(state)

    chip = hardware.detect()
    peak = chip.flops(mc.dtype)
    flops_per_step = model.train_flops_per_token(mc) * tc.batch_size * mc.seq_len
    end = min(tc.steps, stop_after or tc.steps)
    bar = tqdm(range(start, end), initial=start, total=tc.steps, disable=not progress,
               desc=run_dir.name, unit="step", dynamic_ncols=True)
    interval_start, interval_steps = None, 0
    try:
        for step in bar:
            x, y = data.batch(splits.train, tc.batch_size, mc.seq_len, tc.seed, step)
            state, loss = step_fn(state, x, y)
            done = step + 1
            if interval_start is None:  # the first step compiled; time from its end
                loss.block_until_ready()
                interval_start, interval_steps = time.perf_counter(), 0
            else:
                interval_steps += 1
            if done % 10 == 0 or done == end:
                loss = float(loss)
                result.history.append({"step": done, "loss": loss})
                postfix = {"loss": f"{loss:.3f}"}
                if interval_steps:
                    seconds = time.perf_counter() - interval_start
                    postfix["tok/s"] = f"{interval_steps * tc.batch_size * mc.seq_len / seconds:,.0f}"
                    if peak:
                        postfix["MFU"] = f"{interval_steps * flops_per_step / seconds / peak:.0%}"
                    interval_start, interval_steps = time.perf_counter(), 0
                bar.set_postfix(postfix)
            if done % tc.eval_every == 0 or done == tc.steps:
                val = evaluate(state["params"])
                result.history.append({"step": done, "val_loss": val})
                bar.write(f"step {done}: validation loss {val:.3f}")
                interval_start = None  # evaluation time is not training throughput
            if done % tc.checkpoint_every == 0 or done == end:
                checkpoint.save(mgr, done, state)
    except KeyboardInterrupt:
        step = int(state["step"])
        bar.close()
        checkpoint.save(mgr, step, state)
        mgr.wait_until_finished()
        raise RunError(f"interrupted at step {step}; saved. Continue with "
                       f"--name {run_dir.name} --out {run_dir.parent} --resume") from None
    finally:
        mgr.wait_until_finished()
        bar.close()
    result.state = state
    if sample_tokens:
        prompt = data.encode("def ")
        out = sampling.generate(state["params"], mc, prompt, sample_tokens,
                                temperature=0.8, top_k=40, seed=tc.seed)
        result.sample = data.decode(out)
    return result


def resolve_config(args) -> tuple[cfg.ModelConfig, cfg.TrainConfig, str | None]:
    """(model config, train config, data path) from --preset and overrides; on --resume,
    the saved ones, which explicit flags may only change where it is safe (steps)."""
    run_dir = Path(args.out) / args.name
    overrides = {k: v for k, v in (("steps", args.steps), ("seed", args.seed),
                                   ("batch_size", args.batch_size)) if v is not None}
    if args.resume and checkpoint.config_path(run_dir).exists():
        mc, tc, saved = checkpoint.load_config(run_dir)
        asked = cfg.preset(args.preset) if args.preset else cfg.Preset(mc, tc)
        asked_tc = dataclasses.replace(asked.train, **overrides)
        diffs = cfg.differences(mc, asked.model) + cfg.differences(tc, asked_tc, ignore=("steps",))
        data_path = saved.get("data")
        if args.data is not None and args.data != data_path:
            diffs.append(f"data: {data_path!r} -> {args.data!r}")
        if diffs:
            raise RunError(f"cannot resume {run_dir}: its config differs in {'; '.join(diffs)}")
        return mc, dataclasses.replace(tc, steps=asked_tc.steps), data_path
    p = cfg.preset(args.preset or "tiny")
    return p.model, dataclasses.replace(p.train, **overrides), args.data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.train", description="Train the course's language model.",
        epilog="Presets: " + "; ".join(f"{k}: {v.about}" for k, v in cfg.PRESETS.items()))
    parser.add_argument("--preset", help="model and training preset (default tiny)")
    parser.add_argument("--data", help="a text file or a folder of text files "
                        "(default: the Python standard library's sources)")
    parser.add_argument("--steps", type=int, help="total optimizer steps (default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="sequences per step (default: the preset's)")
    parser.add_argument("--seed", type=int, help="initialisation and data order (default 0)")
    parser.add_argument("--out", default="runs", help="folder for run folders (default runs)")
    parser.add_argument("--name", help="run folder name under --out (default: the preset name)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the folder")
    parser.add_argument("--force", action="store_true", help="delete an existing run in the folder first")
    parser.add_argument("--sample-tokens", type=int, default=300,
                        help="tokens to generate at the end (default 300; 0 for none)")
    args = parser.parse_args(argv)
    args.name = args.name or args.preset or "tiny"
    try:
        mc, tc, data_path = resolve_config(args)
        run_dir = Path(args.out) / args.name
        print(f"{hardware.describe(hardware.detect())}")
        print(f"model: {model.matmul_param_count(mc):,} matmul parameters, "
              f"{model.train_flops_per_token(mc):,} training FLOPs per token; run folder {run_dir}")
        result = train(mc, tc, run_dir, data_path=data_path, resume=args.resume,
                       force=args.force, sample_tokens=args.sample_tokens)
    except (cfg.ConfigError, data.DataError, checkpoint.CheckpointError, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result.sample:
        print("sample (temperature 0.8, top-k 40):\n" + result.sample)
    print(f"checkpoint saved in {run_dir}; generate with: "
          f"python -m shared.generate --checkpoint {run_dir} --prompt 'def '")
    return 0


if __name__ == "__main__":
    sys.exit(main())
