"""Sample text from a trained run.

    python -m shared.generate --checkpoint runs/tiny --prompt 'def '
    python -m shared.generate --checkpoint runs/tiny --prompt-file prompts.txt --kv-cache --int8

--naive (the default) reruns the whole window for every token (shared.sampling) and
can run past the context by sliding it; --kv-cache serves every prompt through the
continuous-batching engine (shared.engine), which stops a request at the context.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared import checkpoint, data, quant
from shared.config import Error
from shared.course import mine
from shared.generate import generate_all
from shared.train import load_params


COMMAND = "python -m shared.generate"  # its pieces: shared.course.mine.BUILDS


def read_prompts(args) -> list[str]:
    if args.prompt is not None:
        return [args.prompt]
    path = Path(args.prompt_file)
    if not path.is_file():
        raise Error(f"prompt file {path} does not exist")
    prompts = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise Error(f"prompt file {path} holds no prompts (one per line)")
    return prompts


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m shared.generate",
                                description="Generate text from a trained checkpoint.")
    p.add_argument("--checkpoint", required=True, help="a run folder, e.g. runs/tiny")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help="text to continue")
    source.add_argument("--prompt-file", help="a text file with one prompt per line")
    p.add_argument("--max-new-tokens", type=int, default=200, help="bytes to generate (default 200)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="0 for greedy; higher is more random (default 0.8)")
    p.add_argument("--top-k", type=int, default=40, help="sample among the k likeliest (default 40; 0 for all)")
    p.add_argument("--top-p", type=float, default=None,
                   help="sample among the likeliest tokens whose probabilities sum to p (default: off)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed; prompt i uses seed + i (default 0)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--kv-cache", action="store_true",
                      help="KV cache and continuous batching (stops at the model's context)")
    mode.add_argument("--naive", action="store_true",
                      help="recompute the whole window per token (the default)")
    p.add_argument("--int8", action="store_true",
                   help="int8 weights (per-channel absmax); with --naive, their float values")
    mine.add_switch(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        run_dir = Path(args.checkpoint)
        if not run_dir.is_dir():
            raise checkpoint.CheckpointError(f"checkpoint folder {run_dir} does not exist")
        if args.temperature < 0 or args.max_new_tokens < 0 or args.top_k < 0:
            raise Error("--temperature, --max-new-tokens and --top-k must be >= 0")
        if args.top_p is not None and not 0 < args.top_p <= 1:
            raise Error(f"--top-p must be in (0, 1], got {args.top_p}")
        texts = read_prompts(args)
        if len(texts) == 1 and not texts[0]:
            raise Error("the prompt is empty")
        mc, params = load_params(run_dir)
        if args.int8:
            params = quant.quantize_params(params)
            if not args.kv_cache:
                params = quant.dequantize_params(params)
        pieces = mine.chosen(args, COMMAND)
        if (args.mine or args.solutions) and not args.kv_cache:
            raise Error("--mine runs your cached forward: add --kv-cache")
        if args.mine or args.solutions:
            print("your pieces: " + mine.describe(pieces, args.solutions, COMMAND), file=sys.stderr)
        with mine.plugged_in(pieces, mc):
            results = generate_all(params, mc, [data.encode(t) for t in texts],
                                   max_new_tokens=args.max_new_tokens, kv_cache=args.kv_cache,
                                   temperature=args.temperature, top_k=args.top_k or None,
                                   top_p=args.top_p, seed=args.seed)
        if len(results) == 1 and results[0][1]:
            raise Error(results[0][1].replace("prompt 1 is", "the prompt is"))
    except Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for i, (text, error) in enumerate(results):
        if len(results) > 1:
            print(f"--- prompt {i + 1} ---")
        if error:
            print(f"error: {error}", file=sys.stderr)
        else:
            print(text)
    return 1 if any(error for _, error in results) else 0


if __name__ == "__main__":
    sys.exit(main())
