"""Sample text from a trained run.

    python -m shared.generate --checkpoint runs/tiny --prompt 'def '
    python -m shared.generate --checkpoint runs/tiny --prompt-file prompts.txt --kv-cache --int8

--naive (the default) reruns the whole window for every token (shared.sampling) and
can run past the context by sliding it; --kv-cache serves every prompt through the
continuous-batching engine (shared.engine), whose cache holds the model's context: a
prompt of n tokens leaves room for seq_len - n + 1 new ones. --max-new-tokens beyond what
the chosen path allows (shared.generate.max_new_tokens_allowed), a temperature that is
not a number >= 0, and a checkpoint that cannot be read are one-line errors (exit 2)
before any generation.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

from shared import checkpoint, data, quant
from shared.config import Error
from shared.course import mine
from shared.generate import NAIVE_WINDOWS, check_length, generate_all
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
    p.add_argument("--max-new-tokens", type=int, default=200, help="bytes to generate (default 200); with --kv-cache at most context - prompt + 1, "
                        f"naive at most {NAIVE_WINDOWS} contexts")
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


def check_args(args) -> None:
    """Every flag's bad values, as a one-line Error, before anything is read or compiled."""
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise Error(f"--temperature must be a number >= 0 (0 for greedy), got {args.temperature}")
    if args.top_k < 0:
        raise Error(f"--top-k must be >= 0 (0 for all), got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:  # NaN fails this too
        raise Error(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.max_new_tokens < 1:
        raise Error(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    if not 0 <= args.seed < 2**31 - 2**16:  # prompt i samples with seed + i, an int32
        raise Error(f"--seed must be in [0, {2**31 - 2**16}), got {args.seed}")


def load(run_dir: Path):
    """(config, parameters) of the run's latest readable checkpoint. Each damaged checkpoint
    set aside on the way is said in one line ("warning: ..."); a folder that cannot be read,
    or written when a damaged checkpoint must be moved aside, is a one-line Error."""
    if not run_dir.is_dir():
        raise checkpoint.CheckpointError(f"checkpoint folder {run_dir} does not exist")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return load_params(run_dir)
        except OSError as e:  # e.g. moving a damaged checkpoint to damaged/ in a read-only folder
            why = e.strerror or type(e).__name__
            where = f" ({e.filename})" if e.filename else ""
            raise checkpoint.CheckpointError(
                f"cannot use {run_dir}: {why}{where}; its latest checkpoint may be damaged, and "
                f"setting it aside in damaged/ needs the folder to be writable") from None
        finally:
            for w in caught:
                print(f"warning: {str(w.message).splitlines()[0]}", file=sys.stderr)


def main(argv: list[str] | None = None, leave_on_error: bool = False) -> int:
    """The command; returns its exit status. leave_on_error: exit at once after saying an
    error (checkpoint.leave_now), as the command line does, so that orbax's background
    threads of a failed restore print nothing at exit; callers in-process (tests) get the
    status back."""
    args = parser().parse_args(argv)
    checkpoint.quiet_background_errors(command_line=leave_on_error)
    try:
        check_args(args)
        texts = read_prompts(args)
        if len(texts) == 1 and not texts[0]:
            raise Error("the prompt is empty")
        prompts = [data.encode(t) for t in texts]
        run_dir = Path(args.checkpoint)
        if not run_dir.is_dir():
            raise checkpoint.CheckpointError(f"checkpoint folder {run_dir} does not exist")
        mc, _, _ = checkpoint.load_config(run_dir)  # config.json alone: the limits, before the weights
        check_length(mc, [len(p) for p in prompts], args.max_new_tokens, args.kv_cache)
        pieces = mine.chosen(args, COMMAND)
        if (args.mine or args.solutions) and not args.kv_cache:
            raise Error("--mine runs your cached forward: add --kv-cache")
        mc, params = load(run_dir)
        if args.int8:
            params = quant.quantize_params(params)
            if not args.kv_cache:
                params = quant.dequantize_params(params)
        if args.mine or args.solutions:
            print("your pieces: " + mine.describe(pieces, args.solutions, COMMAND), file=sys.stderr)
        with mine.plugged_in(pieces, mc):
            results = generate_all(params, mc, prompts,
                                   max_new_tokens=args.max_new_tokens, kv_cache=args.kv_cache,
                                   temperature=args.temperature, top_k=args.top_k or None,
                                   top_p=args.top_p, seed=args.seed)
        if len(results) == 1 and results[0][1]:
            raise Error(results[0][1].replace("prompt 1 is", "the prompt is"))
    except Error as e:
        print(f"error: {e}", file=sys.stderr)
        if leave_on_error:
            checkpoint.leave_now(2)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        if leave_on_error:
            checkpoint.leave_now(130)
        return 130
    for i, (text, error) in enumerate(results):
        if len(results) > 1:
            print(f"--- prompt {i + 1} ---")
        if error:
            print(f"error: {error}", file=sys.stderr)
        else:
            print(text)
    return 1 if any(error for _, error in results) else 0


if __name__ == "__main__":
    # Leave through checkpoint.leave_now whatever the outcome: after a restore that met a
    # damaged checkpoint, orbax's and tensorstore's background threads print "Event loop is
    # closed" tracebacks at interpreter exit, even when the text was generated.
    checkpoint.leave_now(main(leave_on_error=True))
