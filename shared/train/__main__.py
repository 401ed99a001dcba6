"""`python -m shared.train`: train the course's model from the command line.

    python -m shared.train                       # tiny preset, stdlib corpus (a few minutes on a CPU)
    python -m shared.train --preset small --data input.txt --steps 2000
    python -m shared.train --name tiny --resume  # continue runs/tiny from its last checkpoint
    python -m shared.train --devices 8 --strategy fsdp   # 8 simulated CPU devices, FSDP
    python -m shared.train --dtype bfloat16 --remat full --grad-accum 4
    python -m shared.train --int8                # every weight matmul in int8 (lesson 09)

Around the library's train(): the flags and presets, what may change on --resume,
the devices (simulated, or a jax.distributed job), and a sample of text at the end.
"""

from __future__ import annotations

from shared import host_memory

if __name__ == "__main__":  # first, before JAX loads below: a relaunch would load it again (0.7 s)
    host_memory.relaunch_with_huge_pages()  # the step's fresh temporaries fault 512x less often

# The imports below come after the relaunch on purpose.
import argparse
import dataclasses
import os
import sys
from pathlib import Path

import jax

from shared import attention, checkpoint, data, devices, hardware, model, sampling, sharding
from shared import qtrain
from shared import config as cfg
from shared.course import mine
from shared.train import Placement, RunError, chip_for, train

MODEL_FLAGS = ("dtype", "remat", "attention")  # flags that override the model config
TRAIN_FLAGS = ("steps", "seed", "batch_size", "grad_accum")  # ... and the training config
SAFE_ON_RESUME = ("steps", "keep_checkpoints")  # may change when a run is resumed
SAFE_MODEL_ON_RESUME = ("remat", "mlp", "attention")  # how it is computed: the same maths
SAMPLE = dict(temperature=0.8, top_k=40)  # the end-of-run sample's settings
COMMAND = "python -m shared.train"  # its pieces: shared.course.mine.BUILDS
INT8 = " with int8 weight matmuls, forward and backward (shared.qtrain)"  # --int8, on the start line


def resolve_config(args) -> tuple[cfg.ModelConfig, cfg.TrainConfig, str | None, bool]:
    """(model config, train config, data path, int8) from --preset and overrides; on --resume,
    the saved ones, which explicit flags may only change where it is safe (steps, remat, mlp):
    a run trained in int8 (its config.json says "int8": true) continues in int8."""
    run_dir = Path(args.out) / args.name
    model_over = {k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k) is not None}
    train_over = {k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k) is not None}
    if args.resume and checkpoint.config_path(run_dir).exists():
        mc, tc, saved = checkpoint.load_config(run_dir)
        asked = cfg.preset(args.preset) if args.preset else cfg.Preset(mc, tc)
        asked_mc = dataclasses.replace(asked.model, **model_over)
        asked_tc = dataclasses.replace(asked.train, **train_over)
        diffs = (cfg.differences(mc, asked_mc, ignore=SAFE_MODEL_ON_RESUME)
                 + cfg.differences(tc, asked_tc, ignore=SAFE_ON_RESUME))
        data_path, int8 = saved.get("data"), saved.get("int8", False)
        if args.data is not None and args.data != data_path:
            diffs.append(f"data: {data_path!r} -> {args.data!r}")
        if args.int8 is not None and args.int8 != int8:
            diffs.append(f"int8: {int8} -> {args.int8}")
        if diffs:
            raise RunError(f"cannot resume {run_dir}: its config differs in {'; '.join(diffs)}")
        return (dataclasses.replace(mc, **{k: getattr(asked_mc, k) for k in SAFE_MODEL_ON_RESUME}),
                dataclasses.replace(tc, steps=asked_tc.steps), data_path, int8)
    p = cfg.preset(args.preset or "tiny")
    return (dataclasses.replace(p.model, **model_over), dataclasses.replace(p.train, **train_over),
            args.data, bool(args.int8))


def check_int8(pieces: dict, solutions: bool) -> None:
    """--int8 swaps int8 matmuls into shared.model (shared.qtrain); a model piece of the
    learner's has matmuls of its own that the swap cannot reach: refused, not run in float."""
    if "model" in pieces:
        path = next(b for b in mine.BUILDS if b.piece == "model").path(solutions)
        raise cfg.Error(f"--int8 puts int8 matmuls into the core's model, and the model piece "
                        f"{path.relative_to(mine.ROOT)} has its own; run it without --int8")


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


def sample(params, mc: cfg.ModelConfig, tokens: int, seed: int, prompt: str = "def ",
           net=model) -> str:
    """Text the trained model writes after `prompt` (SAMPLE's temperature and top-k)."""
    out = sampling.generate(params, mc, data.encode(prompt), tokens, seed=seed,
                            forward=net.forward, **SAMPLE)
    return data.decode(out)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m shared.train", description="Train the course's language model.",
        epilog="Presets: " + "; ".join(f"{k}: {v.about}" for k, v in cfg.PRESETS.items()))
    p.add_argument("--preset", help="model and training preset (default tiny)")
    p.add_argument("--data", help="a text file or a folder of text files "
                   "(default: the Python standard library's sources)")
    p.add_argument("--steps", type=int, help="total optimizer steps (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="sequences per step (default: the preset's)")
    p.add_argument("--grad-accum", type=int, help="micro-batches per step (default 1)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"],
                   help="compute dtype; weights and optimizer state stay float32 (default: the preset's)")
    p.add_argument("--remat", choices=cfg.REMAT, help="what the backward pass recomputes (default none)")
    p.add_argument("--attention", choices=list(attention.IMPLEMENTATIONS),
                   help="attention implementation (default: the preset's, dense)")
    p.add_argument("--int8", action="store_true", default=None,
                   help="every weight matmul, forward and backward, as int8 x int8 -> int32 "
                   "(shared.qtrain, lesson 09 section 5); slower than float32 on a CPU, where "
                   "quantizing costs more than the small int8 dots save. A resumed run keeps "
                   "what it was trained with")
    p.add_argument("--seed", type=int, help="initialisation and data order (default 0)")
    p.add_argument("--out", default="runs", help="folder for run folders (default runs)")
    p.add_argument("--name", help="run folder name under --out (default: the preset name)")
    p.add_argument("--resume", action="store_true", help="continue the run in the folder")
    p.add_argument("--force", action="store_true", help="delete an existing run in the folder first")
    p.add_argument("--sample-tokens", type=int, default=300,
                   help="tokens to generate at the end (default 300; 0 for none)")
    p.add_argument("--strategy", choices=list(sharding.STRATEGIES),
                   help="split the work over all devices (default: one device)")
    p.add_argument("--model-axis", type=int, help="devices on the model axis for fsdp_tp (default 2)")
    p.add_argument("--devices", type=int, help="simulate this many CPU devices (CPU only)")
    mine.add_switch(p)
    devices.add_distributed_arguments(p)
    return p


def main(argv: list[str] | None = None, leave_on_error: bool = False) -> int:
    """The command; returns its exit status. leave_on_error: exit at once after saying an
    error (checkpoint.leave_now), as the command line does, so that no background writer
    of a failed save prints at exit; callers in-process (tests) get the status back."""
    args = parser().parse_args(argv)
    checkpoint.quiet_background_errors(command_line=leave_on_error)
    args.name = args.name or args.preset or "tiny"
    try:
        placement = setup_devices(args)
        mc, tc, data_path, int8 = resolve_config(args)
        run_dir = Path(args.out) / args.name
        main_process = jax.process_index() == 0
        pieces = mine.chosen(args, COMMAND)
        if int8:
            check_int8(pieces, args.solutions)
        if main_process:
            if args.mine or args.solutions:
                print("your model: " + mine.describe(pieces, args.solutions, COMMAND))
            print(hardware.describe(chip_for(mc.dtype)))
            where = (f"{placement.strategy} on mesh {dict(placement.mesh.shape)}"
                     if placement.mesh is not None else f"one {jax.devices()[0].platform} device")
            print(f"model: {model.matmul_param_count(mc):,} matmul parameters, "
                  f"{model.train_flops_per_token(mc):,} training FLOPs per token, {mc.dtype} "
                  f"compute{INT8 if int8 else ''}, remat {mc.remat}; {where}; run folder {run_dir}")
        with mine.plugged_in(pieces, mc) as net:
            net = qtrain if int8 else net
            result = train(mc, tc, run_dir, data_path=data_path, resume=args.resume,
                           force=args.force, placement=placement, net=net)
            if args.sample_tokens:  # every process samples: the parameters may be split across them
                text = sample(result.state["params"], mc, args.sample_tokens, tc.seed, net=net)
    except cfg.Error as e:
        print(f"error: {e}", file=sys.stderr)
        if leave_on_error:
            checkpoint.leave_now(2)
        return 2
    except KeyboardInterrupt:  # before the first step or while sampling: nothing to save then
        print("error: interrupted; the run folder keeps its last saved step", file=sys.stderr)
        return 130
    if main_process:
        if args.sample_tokens:
            print(f"sample (temperature {SAMPLE['temperature']}, top-k {SAMPLE['top_k']}):\n" + text)
        print(f"checkpoint saved in {run_dir}; generate with: "
              f"python -m shared.generate --checkpoint {run_dir} --prompt 'def '")
    if jax.process_count() > 1:
        jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(leave_on_error=True))
