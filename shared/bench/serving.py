"""Replay a workload of mixed-length requests: static batching vs the continuous engine,
whose KV cache is a contiguous reservation per slot or a pool of pages (both run).

    python -m shared.bench serving                    # random weights, a small model, --max-len 256
    python -m shared.bench serving --checkpoint runs/tiny --requests 128 --slots 8

Prints useful tokens/s (tokens that were asked for, not padding), request latency
percentiles and KV memory. All requests arrive at time 0, so latency includes queueing.
--max-len (cache positions per slot) defaults to the model's context: 128 for runs/tiny.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import jax
import numpy as np

from shared import engine, inference, model, paged
from shared.bench import _flags
from shared.config import FAST, ConfigError, ModelConfig
from shared.course import mine
from shared.train import load_params

COMMAND = "python -m shared.bench serving"  # its pieces: shared.course.mine.BUILDS
HELP = "static vs continuous batching, contiguous vs paged KV cache, on a replayed workload"


def workload(n: int, max_len: int, seed: int = 0, long_fraction: float = 0.2) -> list[engine.Request]:
    """n requests: prompts of 8..max_len/4 tokens; most want few tokens, a fifth want many
    (a mix like chat traffic, where static batching waits for the long ones)."""
    rng = np.random.default_rng(seed)
    requests = []
    for i in range(n):
        prompt = rng.integers(0, 256, int(rng.integers(8, max_len // 4 + 1))).astype(np.int32)
        room = max_len - len(prompt) + 1
        new = int(rng.integers(room // 2, room + 1)) if rng.random() < long_fraction else int(rng.integers(4, 17))
        requests.append(engine.Request(i, prompt, min(new, room), seed=i))
    return requests


@dataclass(frozen=True)
class Replay:
    name: str
    seconds: float
    tokens: int  # generated tokens that were asked for
    latencies: np.ndarray  # seconds per request, submit to last token

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    def row(self) -> str:
        p50, p90, p99 = np.percentile(self.latencies, [50, 90, 99])
        return (f"{self.name:<26} {self.tokens_per_s:>9,.0f} tok/s   latency p50 {p50:6.2f} s  "
                f"p90 {p90:6.2f} s  p99 {p99:6.2f} s")


def replay_static(params, config: ModelConfig, requests, slots: int, max_len: int) -> Replay:
    """Batches of `slots` requests in arrival order; each batch runs until its longest is done."""
    start = time.perf_counter()
    latencies = []
    for i in range(0, len(requests), slots):
        batch = requests[i:i + slots]
        inference.generate(params, config, [r.prompt for r in batch], [r.max_new_tokens for r in batch],
                           seeds=[r.seed for r in batch], max_len=max_len, pad_to=max_len)
        latencies += [time.perf_counter() - start] * len(batch)
    return Replay(f"static batching ({slots})", time.perf_counter() - start,
                  sum(r.max_new_tokens for r in requests), np.array(latencies))


def replay_engine(eng: engine.Engine, requests, name: str) -> Replay:
    start = time.perf_counter()
    done = eng.run(requests)
    seconds = time.perf_counter() - start
    assert sorted(c.id for c in done) == [r.id for r in requests], "every request exactly once"
    return Replay(name, seconds, sum(len(c.tokens) for c in done), np.array([c.latency for c in done]))


def warm_static(params, config, slots, max_len) -> None:
    """Compile static batching's two programs outside the timed replay, as the engine does."""
    prompt = np.ones(4, np.int32)
    inference.generate(params, config, [prompt] * slots, 2, max_len=max_len, pad_to=max_len)
    if slots > 1:
        inference.generate(params, config, [prompt], 2, max_len=max_len, pad_to=max_len)


def compare(params, config: ModelConfig, requests, slots: int, max_len: int,
            page: int = 8) -> tuple[Replay, Replay, Replay, engine.Engine, engine.Engine]:
    """(static, continuous contiguous, continuous paged) replays and the two engines.

    A sequence wastes half a page on average; with requests of tens of tokens, pages of 8
    keep that under a tenth of what they use (vLLM's 16 suits its longer sequences)."""
    warm_static(params, config, slots, max_len)
    static = replay_static(params, config, requests, slots, max_len)
    contiguous = engine.Engine(params, config, slots=slots, max_len=max_len)
    cont = replay_engine(contiguous, requests, f"continuous ({slots} slots)")
    paged_engine = engine.Engine(params, config, kv=paged.PagedKV(config, slots, max_len, page=page))
    pag = replay_engine(paged_engine, requests, f"continuous, paged ({page})")
    return static, cont, pag, contiguous, paged_engine


def memory_row(name: str, allocated: float, used: float) -> str:
    return (f"{name:<26} allocated {allocated / 1e6:8.2f} MB  used {used / 1e6:8.2f} MB  "
            f"waste {1 - used / allocated:6.1%}")


def add_arguments(parser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--checkpoint", help="a run folder (default: random weights)")
    parser.add_argument("--requests", type=int, default=48, help="requests in the workload (default 48)")
    parser.add_argument("--slots", type=int, default=8, help="decode slots / static batch size (default 8)")
    parser.add_argument("--max-len", type=int, help="cache positions per slot, a multiple of 16 "
                        "(default: the model's context; 256 with random weights)")
    parser.add_argument("--seed", type=int, default=0)
    mine.add_switch(parser)


def load(args) -> tuple[ModelConfig, dict]:
    """The model to serve: a trained run's, or random weights of a small one."""
    if args.checkpoint:
        return load_params(args.checkpoint)
    config = ModelConfig(seq_len=args.max_len or 256, d_model=256, n_layers=4, n_heads=4, d_ff=1024,
                         **FAST)
    return config, model.init(config, jax.random.key(0))


def check(args) -> None:
    """Every flag's bad values, one line each, before any JAX work (shared.bench._flags)."""
    _flags.at_least(args, 1, "requests", "slots")
    _flags.at_least(args, 0, "seed")
    if args.max_len is not None and (args.max_len < 16 or args.max_len % 16):
        raise ConfigError(f"--max-len must be a multiple of 16 (16, 32, ...), got {args.max_len}")
    _flags.run_folder(args, "checkpoint")


def run(args) -> None:
    check(args)
    config, params = load(args)
    max_len = args.max_len or config.seq_len
    if max_len > config.seq_len or max_len % 16:
        raise ConfigError(f"--max-len {max_len} must be a multiple of 16 and at most the "
                          f"model's context {config.seq_len}")
    requests = workload(args.requests, max_len, args.seed)
    pieces = mine.chosen(args, COMMAND)
    if args.mine or args.solutions:
        print("your pieces: " + mine.describe(pieces, args.solutions, COMMAND)
              + " (the paged engine keeps the core's cached forward: yours takes a contiguous cache)")
    with mine.plugged_in(pieces, config):
        static, cont, pag, ce, pe = compare(params, config, requests, args.slots, max_len)
    for r in (static, cont, pag):
        print(r.row())
    print(memory_row("contiguous reservation", *ce.mean_memory))
    print(memory_row("paged", *pe.mean_memory))
