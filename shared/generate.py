"""Sample text from a trained run: `python -m shared.generate --checkpoint runs/tiny --prompt 'def '`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared import checkpoint, data, sampling, train


def load_params(run_dir: Path):
    """(model config, parameters) of the latest checkpoint in a run folder."""
    mc, tc, _ = checkpoint.load_config(run_dir)
    mgr = checkpoint.manager(run_dir)
    _, state = checkpoint.restore(mgr, train.init_state(mc, tc))
    return mc, state["params"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.generate",
                                     description="Generate text from a trained checkpoint.")
    parser.add_argument("--checkpoint", required=True, help="a run folder, e.g. runs/tiny")
    parser.add_argument("--prompt", required=True, help="text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=200, help="bytes to generate (default 200)")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="0 for greedy; higher is more random (default 0.8)")
    parser.add_argument("--top-k", type=int, default=40, help="sample among the k likeliest (default 40; 0 for all)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    args = parser.parse_args(argv)
    try:
        run_dir = Path(args.checkpoint)
        if not run_dir.is_dir():
            raise checkpoint.CheckpointError(f"checkpoint folder {run_dir} does not exist")
        if args.temperature < 0 or args.max_new_tokens < 0 or args.top_k < 0:
            raise ValueError("--temperature, --max-new-tokens and --top-k must be >= 0")
        mc, params = load_params(run_dir)
        prompt = data.encode(args.prompt)
        if len(prompt) == 0:
            raise ValueError("the prompt is empty")
        if len(prompt) > mc.seq_len:
            raise ValueError(f"the prompt is {len(prompt)} tokens (bytes), longer than the "
                             f"model's context of {mc.seq_len}")
        out = sampling.generate(params, mc, prompt, args.max_new_tokens,
                                temperature=args.temperature, top_k=args.top_k or None,
                                seed=args.seed)
    except (checkpoint.CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(data.decode(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
