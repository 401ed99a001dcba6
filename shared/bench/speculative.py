"""Speculative decoding against plain cached greedy decoding, measured in the same run.

A target and a smaller draft trained on the same corpus (the standard library's source,
as `python -m shared.train`); each is loaded from its run folder when one is there, else
trained briefly into it (about two minutes on a 2-core CPU, once). Then, for k in --ks:
acceptance rate, new tokens per target forward pass, and tokens/s against
inference.generate on the same prompts, with the formula's prediction beside it.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import numpy as np

from shared import config as cfg
from shared import data, hardware, inference, model, speculative
from shared.bench import _flags
from shared.train import load_params, train

HELP = "speculative decoding: acceptance, tokens per target pass, tok/s vs plain greedy"

TARGET = cfg.preset("tiny").model  # 0.85M parameters: 4 layers of width 128
DRAFT = dataclasses.replace(TARGET, d_model=64, n_layers=1, n_heads=2, d_ff=256)  # ~30x fewer matmul params


def add_arguments(parser) -> None:
    parser.add_argument("--target", default="runs/spec-target",
                        help="the target's run folder: loaded if it holds a checkpoint, else trained "
                             "into (default runs/spec-target; runs/tiny is the course's main model)")
    parser.add_argument("--draft", default="runs/spec-draft",
                        help="the draft's run folder, the same way (default runs/spec-draft)")
    parser.add_argument("--target-steps", type=int, default=600,
                        help="steps when training the target (default 600)")
    parser.add_argument("--draft-steps", type=int, default=600,
                        help="steps when training the draft (default 600)")
    parser.add_argument("--ks", default="1,2,4",
                        help="draft tokens per round, comma-separated (default 1,2,4)")
    parser.add_argument("--prompts", type=int, default=4,
                        help="prompts from the validation text (default 4)")
    parser.add_argument("--repeat", type=int, default=10,
                        help="timed runs of each method on each prompt; the best counts (default 10)")
    parser.add_argument("--new-tokens", type=int, default=96, help="tokens generated per prompt (default 96)")


def trained(run_dir: str, mc: cfg.ModelConfig, steps: int, name: str) -> tuple[cfg.ModelConfig, dict]:
    """A run folder's model, training it first if the folder has no checkpoint."""
    path = Path(run_dir)
    if not (path / "config.json").exists():
        tc = dataclasses.replace(cfg.preset("tiny").train, steps=steps, eval_every=steps,
                                 checkpoint_every=steps, eval_batches=2)
        print(f"training the {name} ({model.matmul_param_count(mc) / 1e6:.2f}M matmul params, "
              f"{steps} steps) into {path}")
        start = time.perf_counter()
        train(mc, tc, path, progress=False)
        print(f"   {time.perf_counter() - start:.0f} s")
    mc, params = load_params(path)
    return mc, params


def parse_ks(text: str) -> list[int]:
    try:
        ks = [int(k) for k in text.split(",")]
    except ValueError:
        raise cfg.ConfigError(f"--ks must be comma-separated integers, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise cfg.ConfigError(f"--ks must be >= 1, got {text!r}")
    return ks


def check(args) -> list[int]:
    """Every flag's bad values, one line each, before any JAX work (shared.bench._flags);
    returns the draft lengths of --ks."""
    ks = parse_ks(args.ks)
    _flags.at_least(args, 1, "target_steps", "draft_steps", "prompts", "repeat", "new_tokens")
    for name in ("target", "draft"):
        path = Path(getattr(args, name))
        if path.exists() and not path.is_dir():
            raise cfg.ConfigError(f"--{name} {path} is a file; give a run folder (trained into if new)")
    return ks


def run(args) -> None:
    ks = check(args)
    print(hardware.describe(hardware.detect()))
    tc_, target = trained(args.target, TARGET, args.target_steps, "target")
    dc, draft = trained(args.draft, DRAFT, args.draft_steps, "draft")
    speculative.check_draft(tc_, dc)
    T = tc_.seq_len
    n_prompt = 24
    n = min(args.new_tokens, T - n_prompt - max(ks) + 1)
    val = data.split(data.load_corpus(), T).val
    starts = np.linspace(0, len(val) - n_prompt - 1, args.prompts).astype(int)
    prompts = [val[s:s + n_prompt].astype(np.int32) for s in starts]
    print(f"target {model.matmul_param_count(tc_) / 1e6:.2f}M matmul params, draft "
          f"{model.matmul_param_count(dc) / 1e6:.3f}M; {len(prompts)} prompts of {n_prompt} tokens "
          f"from the validation text, {n} new tokens each, greedy")

    # Each method runs twice before it is timed (a jitted function's second call may compile
    # again: its inputs are now committed device arrays). Then --repeat times over the
    # prompts, the methods taking turns on each prompt so that other load on the machine
    # hits them alike; a method's time on a prompt is its best, and its tok/s is the new
    # tokens over the sum of those times.
    methods = {"target": lambda p: inference.generate(target, tc_, [p], n)[0],
               "draft": lambda p: inference.generate(draft, dc, [p], n)[0]}
    for k in ks:
        methods[k] = functools.partial(speculative.generate, target, tc_, draft, dc, max_new_tokens=n, k=k)
    for fn in methods.values():
        fn(prompts[0]), fn(prompts[0])
    outs = {m: [None] * len(prompts) for m in methods}
    secs = {m: np.full(len(prompts), np.inf) for m in methods}
    for _ in range(max(args.repeat, 1)):
        for i, p in enumerate(prompts):
            for m, fn in methods.items():
                start = time.perf_counter()
                outs[m][i] = fn(p)
                secs[m][i] = min(secs[m][i], time.perf_counter() - start)
    tps = {m: len(prompts) * n / s.sum() for m, s in secs.items()}
    c = tps["target"] / tps["draft"]
    print(f"plain cached greedy decoding, batch 1: target {tps['target']:,.0f} tok/s, draft "
          f"{tps['draft']:,.0f} tok/s (draft cost / target cost c = {c:.2f})\n")
    print(f"{'k':>3}  {'accepted':>8}  {'tokens/target pass':>18}  {'tok/s':>8}  {'speed-up':>8}  "
          f"{'predicted':>9}  same tokens")
    print(f"{'-':>3}  {'-':>8}  {1.0:18.2f}  {tps['target']:8,.0f}  {1.0:7.2f}x  {'-':>9}  (plain greedy)")
    for k in ks:
        stats = speculative.Stats(k)
        for _, st in outs[k]:
            stats.rounds += st.rounds
            stats.accepted += st.accepted
            stats.produced += st.produced
        same = all(np.array_equal(out, want) for (out, _), want in zip(outs[k], outs["target"]))
        predicted = stats.tokens_per_pass / (1 + k * c)
        print(f"{k:3d}  {stats.acceptance:8.1%}  {stats.tokens_per_pass:18.2f}  {tps[k]:8,.0f}  "
              f"{tps[k] / tps['target']:7.2f}x  {predicted:8.2f}x  {'yes' if same else 'NO'}")
    print("\npredicted = tokens per target pass / (1 + k c), as if a verify pass cost one decode step")
