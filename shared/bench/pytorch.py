"""PyTorch beside the core (lesson 06): the same model trained and decoded in eager PyTorch and
in JAX, in alternating rounds of one run, tokens/s of each and the ratio JAX / PyTorch per row.

    python -m shared.bench pytorch --python /path/to/venv/bin/python   # an interpreter with torch
    python -m shared.bench pytorch --quick                             # tiny preset, short rounds
    python -m shared.bench pytorch --compile                           # and torch.compile's column

PyTorch is not a course dependency: only this comparison uses it, and in a separate process
(--python, default this interpreter), so the two frameworks never share a process or a thread
pool. This file is that process's script too: run with --worker it reads jobs as JSON lines on
stdin and answers each with one JSON line, importing nothing but torch and the standard
library (the torch interpreter need not have JAX or the course).

The PyTorch model is the course model written the way nanoGPT writes GPT-2: embedding, L pre-norm
blocks (RMSNorm with a scale, q/k/v/o projections without biases, rotary positions on q and k
rotating the pairs (x[i], x[i + D/2]), causal scaled_dot_product_attention, a tanh-GELU MLP of
width F), a final RMSNorm and an untied unembedding: the same weights and the same matmul FLOPs
(shared.model.train_flops_per_token). Training is AdamW (betas 0.9, 0.95, weight decay 0.1 on
matrices) after global-norm clipping at 1.0, as shared.train.optim; bfloat16 is torch.autocast
over float32 weights, as the core casts float32 weights to a bfloat16 compute dtype. Decoding is
batch-1 greedy with a preallocated KV cache; each PyTorch step attends to the filled positions
only (eager shapes are free), the JAX step to the whole fixed-shape cache, masked.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HELP = ("the same model trained and decoded in eager PyTorch and in JAX, alternating rounds, "
        "tokens/s and JAX/PyTorch (torch is not a course dependency: only this comparison uses it)")
INSTALL = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def add_arguments(parser) -> None:
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter that has torch, for the PyTorch side (default: this one). "
                        f"torch is not a course dependency; to install it: {INSTALL}")
    parser.add_argument("--preset", action="append", choices=["tiny", "small"],
                        help="preset to train (repeat for several; default tiny and small, "
                        "--quick: tiny)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="only this compute dtype")
    parser.add_argument("--rounds", type=int, help="alternating rounds per row (default 3, --quick 2)")
    parser.add_argument("--steps", type=int, help="timed training steps per framework per round, "
                        "after an untimed one (default: about 2 s of steps, at least 2)")
    parser.add_argument("--new-tokens", type=int, help="greedy tokens decoded per round after a "
                        "16-token prompt (default 240, --quick 32)")
    parser.add_argument("--compile", action="store_true",
                        help="also time training with the model under torch.compile (the optimizer stays "
                        "eager; compiles C++ on a CPU: minutes)")
    parser.add_argument("--quick", action="store_true", help="a short run: tiny, 2 rounds, 32 tokens")


# ---- the PyTorch side: this file run as a script with --worker --------------------------------

def _torch_model(shape: dict):
    """The course model in PyTorch (see the module docstring)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    E, H, L, F_, V, S = (shape[k] for k in
                         ("d_model", "n_heads", "n_layers", "d_ff", "vocab_size", "seq_len"))
    D = E // H

    def linear(n_in, n_out, std):
        layer = nn.Linear(n_in, n_out, bias=False)
        nn.init.normal_(layer.weight, std=std)
        return layer

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(E))

        def forward(self, x):  # in float32, cast back, as shared.model.rms_norm
            x32 = x.float()
            return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight).to(x.dtype)

    def rope(x, cos, sin):  # x [B, H, S, D]; cos, sin [S, D/2]
        x1, x2 = x.float().chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)

    residual = 0.02 / math.sqrt(2 * L)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn_norm, self.mlp_norm = RMSNorm(), RMSNorm()
            self.wq, self.wk, self.wv = (linear(E, E, 0.02) for _ in range(3))
            self.wo = linear(E, E, residual)
            self.up, self.down = linear(E, F_, 0.02), linear(F_, E, residual)

        def forward(self, x, cos, sin, cache=None, pos=0):
            B, S_, _ = x.shape
            h = self.attn_norm(x)
            q, k, v = (w(h).view(B, S_, H, D).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            if cache is not None:  # cache: (k, v) [B, H, T, D], filled before pos
                cache[0][:, :, pos:pos + S_] = k
                cache[1][:, :, pos:pos + S_] = v
                k, v = cache[0][:, :, :pos + S_], cache[1][:, :, :pos + S_]
            # One new token sees every filled position: no mask. A prompt from 0: causal.
            y = F.scaled_dot_product_attention(q, k, v, is_causal=S_ > 1)
            x = x + self.wo(y.transpose(1, 2).reshape(B, S_, E))
            return x + self.down(F.gelu(self.up(self.mlp_norm(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, E)
            nn.init.normal_(self.embed.weight, std=0.02)
            self.blocks = nn.ModuleList(Block() for _ in range(L))
            self.final_norm = RMSNorm()
            self.unembed = linear(E, V, 0.02)
            freqs = shape["rope_base"] ** (-torch.arange(0, D // 2, dtype=torch.float32) * 2 / D)
            angle = torch.arange(S, dtype=torch.float32)[:, None] * freqs  # [S, D/2]
            self.register_buffer("cos", angle.cos(), persistent=False)
            self.register_buffer("sin", angle.sin(), persistent=False)

        def forward(self, tokens, targets=None, caches=None, pos=0):
            S_ = tokens.shape[1]
            cos, sin = self.cos[pos:pos + S_], self.sin[pos:pos + S_]
            x = self.embed(tokens)
            for i, block in enumerate(self.blocks):
                x = block(x, cos, sin, None if caches is None else caches[i], pos)
            logits = self.unembed(self.final_norm(x)).float()
            if targets is None:
                return logits
            return F.cross_entropy(logits.view(-1, V), targets.reshape(-1))

    return GPT()


class _Worker:
    """The jobs the parent sends, each answered with one JSON line; the models of the current
    row are kept between its rounds and dropped on "reset"."""

    def __init__(self):
        import torch
        self.torch = torch
        self.jobs: dict = {}

    def hello(self, job):
        return {"torch": self.torch.__version__, "threads": self.torch.get_num_threads()}

    def count(self, job):
        """Parameters of the PyTorch model of job["shape"] (the tests compare it with the core's)."""
        return {"parameters": sum(p.numel() for p in _torch_model(job["shape"]).parameters())}

    def logits(self, job):
        """Float32 logits of job["tokens"] under the core's own weights (job["weights"], the
        parameter tree as nested lists, stacked over layers): the tests compare them with
        shared.model.forward's, so the two models are the same function."""
        torch = self.torch
        model, w = _torch_model(job["shape"]), job["weights"]
        t = lambda x: torch.tensor(x, dtype=torch.float32)
        with torch.no_grad():
            model.embed.weight.copy_(t(w["embed"]))
            model.final_norm.weight.copy_(t(w["final_norm"]))
            model.unembed.weight.copy_(t(w["unembed"]).T)
            for i, block in enumerate(model.blocks):
                b = {k: v[i] for k, v in w["blocks"].items()}
                block.attn_norm.weight.copy_(t(b["attn_norm"]))
                block.mlp_norm.weight.copy_(t(b["mlp_norm"]))
                for name in ("wq", "wk", "wv"):
                    getattr(block, name).weight.copy_(t(b[name]).flatten(1).T)  # [E, H, D] -> [H * D, E]
                block.wo.weight.copy_(t(b["wo"]).flatten(0, 1).T)  # [H, D, E] -> [E, H * D]
                block.up.weight.copy_(t(b["w_up"]).T)
                block.down.weight.copy_(t(b["w_down"]).T)
            return {"logits": model(torch.tensor(job["tokens"])).tolist()}

    def reset(self, job):
        self.jobs.clear()
        return {}

    def _train_setup(self, job):
        torch = self.torch
        torch.manual_seed(0)
        shape, B = job["shape"], job["batch"]
        model = _torch_model(shape)
        decay = [p for p in model.parameters() if p.ndim >= 2]
        rest = [p for p in model.parameters() if p.ndim < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                 {"params": rest, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.95))
        tokens = torch.randint(0, shape["vocab_size"], (B, shape["seq_len"] + 1),
                               generator=torch.Generator().manual_seed(0))
        inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
        forward = torch.compile(model) if job["compiled"] else model
        bf16 = job["dtype"] == "bfloat16"

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = forward(inputs, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss.item()

        return step

    def train(self, job):
        """Seconds of each of job["steps"] steps; the first call for a setting builds it and
        runs one untimed step (compilation, first allocations) whose seconds it reports."""
        key = json.dumps({k: job[k] for k in ("shape", "batch", "dtype", "compiled")}, sort_keys=True)
        out = {}
        if key not in self.jobs:
            start = time.perf_counter()
            self.jobs[key] = self._train_setup(job)
            out["first_loss"] = self.jobs[key]()
            out["setup_s"] = time.perf_counter() - start
        step = self.jobs[key]
        if job["steps"]:
            step()  # untimed: the first step after the other process's turn pays its page faults
        times = []
        for _ in range(job["steps"]):
            start = time.perf_counter()
            loss = step()
            times.append(time.perf_counter() - start)
        return {**out, "seconds": times, "loss": loss if times else out["first_loss"]}

    def decode(self, job):
        """Seconds to decode job["new"] tokens greedily after the prompt, batch 1, and the tokens."""
        torch = self.torch
        key = json.dumps(job["shape"], sort_keys=True)
        if key not in self.jobs:
            torch.manual_seed(0)
            self.jobs[key] = _torch_model(job["shape"]).eval()
        model, shape = self.jobs[key], job["shape"]
        E, H = shape["d_model"], shape["n_heads"]
        dtype = torch.bfloat16 if job["dtype"] == "bfloat16" else torch.float32
        prompt = torch.tensor([job["prompt"]])
        start = time.perf_counter()
        bf16 = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)
        with torch.inference_mode(), bf16:
            caches = [tuple(torch.zeros(1, H, shape["seq_len"], E // H, dtype=dtype) for _ in range(2))
                      for _ in range(shape["n_layers"])]
            token = model(prompt, caches=caches)[:, -1].argmax(-1)
            out, pos = [token.item()], prompt.shape[1]
            for _ in range(job["new"] - 1):
                token = model(token[:, None], caches=caches, pos=pos)[:, -1].argmax(-1)
                out.append(token.item())
                pos += 1
        return {"seconds": time.perf_counter() - start, "tokens": out}

    def matmul(self, job):
        """Best seconds of `runs` [batch, M, K] @ [batch, K, N] products in the dtype (after one
        untimed); batch 0: one [M, K] @ [K, N]."""
        torch = self.torch
        M, K, N = job["mkn"]
        lead = (job["batch"],) if job["batch"] else ()
        dtype = torch.bfloat16 if job["dtype"] == "bfloat16" else torch.float32
        a, b = torch.randn(*lead, M, K, dtype=dtype), torch.randn(*lead, K, N, dtype=dtype)
        a @ b
        best = math.inf
        for _ in range(job["runs"]):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        return {"seconds": best}


def worker() -> None:
    """Answer the parent's jobs (one JSON line in, one out) until stdin closes."""
    out = sys.stdout
    sys.stdout = sys.stderr  # anything torch prints must not break the protocol
    try:
        w = _Worker()
    except ImportError as e:
        out.write(json.dumps({"error": f"no torch: {e}"}) + "\n")
        out.flush()
        return
    for line in sys.stdin:
        job = json.loads(line)
        try:
            answer = getattr(w, job["op"])(job)
        except Exception as e:  # reported to the parent, which prints it in its row
            answer = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]}
        out.write(json.dumps(answer) + "\n")
        out.flush()


# ---- the JAX side and the comparison ---------------------------------------------------------

class Torch:
    """The PyTorch process: ask(job) sends one job and waits for its answer."""

    def __init__(self, python: str):
        from shared.config import Error
        from shared.timing import LoadWatch

        self.proc = subprocess.Popen([python, "-u", str(Path(__file__).resolve()), "--worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = self.ask({"op": "hello"})
        if "error" in hello:
            self.close()
            raise Error(f"{python} cannot import torch ({hello['error'].removeprefix('no torch: ')}); "
                        f"torch is not a course dependency: {INSTALL}, or pass --python an "
                        "interpreter that has it")
        self.version, self.threads = hello["torch"], hello["threads"]
        self.watch = LoadWatch(also=(self.proc.pid,))  # its CPU time is the benchmark's own

    def ask(self, job: dict) -> dict:
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"the PyTorch process exited (status {self.proc.wait()})"}
        return json.loads(line)

    def seconds(self, job: dict):
        """The "seconds" of the answer to a timing job; an error the PyTorch side reports stops
        the benchmark as one line."""
        from shared.config import Error

        answer = self.ask(job)
        if "error" in answer:
            raise Error(f"the PyTorch side failed on {job['op']}: {answer['error']}")
        return answer["seconds"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def shape_of(mc) -> dict:
    """What the PyTorch side needs of a ModelConfig: the sizes and the rotary base."""
    return {k: getattr(mc, k) for k in ("vocab_size", "seq_len", "d_model", "n_layers", "n_heads",
                                        "d_ff", "rope_base")}


def check(args) -> None:
    """Every flag's bad values, one line each, before any JAX work (shared.bench._flags)."""
    from shared.bench import _flags
    from shared.config import ConfigError

    _flags.at_least(args, 1, "rounds", "steps", "new_tokens")
    found = shutil.which(args.python)
    if found is None:
        raise ConfigError(f"--python {args.python} is not a file or a command on PATH "
                          "(an interpreter that has torch)")
    args.python = found


def others(torch: Torch, during: str = "the row ran") -> str:
    """Other programs' share of the cores since the last call (the PyTorch process is not
    another program here): a row's footnote, flagged when enough to skew the ratios."""
    load = torch.watch.read(restart=True)
    if load is None:
        return "other programs' load unknown on this system"
    busy = ": busy, so the ratios may be skewed; rerun on a quiet machine" if load.busy else ""
    return f"other programs used {load} while {during}{busy}"


class JaxTrain:
    """The loop's jitted step (shared.train.make_step) of a preset, compiled and run once;
    run(n) times n steps after an untimed one."""

    def __init__(self, mc, tc):
        from shared import train
        from shared.bench.train import synthetic_batch

        start = time.perf_counter()
        self.state = train.init_state(mc, tc)
        self.batch = synthetic_batch(tc.batch_size, mc.seq_len, mc.vocab_size)
        self.step = train.make_step(mc, tc)
        self.first_loss = self.run(0)[1]
        self.setup_s = time.perf_counter() - start

    def run(self, steps: int) -> tuple[list[float], float]:
        """Seconds of each of `steps` steps after one untimed step, and the last loss."""
        times, loss = [], math.nan
        for i in range(steps + 1):
            start = time.perf_counter()
            self.state, metrics = self.step(self.state, self.batch)
            loss = float(metrics["loss"])  # waits for the step, as loss.item() does
            if i:
                times.append(time.perf_counter() - start)
        return times, loss


def _rounds(n: int, sides: dict) -> dict[str, list[float]]:
    """Call each side once per round, the order rotating every round (A B C, B C A, ...);
    each call returns one figure for that round."""
    names, out = list(sides), {k: [] for k in sides}
    for r in range(n):
        for name in names[r % len(names):] + names[:r % len(names)]:
            out[name].append(sides[name]())
    return out


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):10,.0f}"


def _ratio(jax_values: list[float], torch_values: list[float]) -> str:
    """JAX / PyTorch: the median of the per-round ratios, and their range."""
    ratios = [a / b for a, b in zip(jax_values, torch_values)]
    return f"{statistics.median(ratios):5.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def train_row(torch: Torch, name: str, dtype: str, args) -> None:
    import dataclasses

    import jax

    from shared import config as cfg

    p = cfg.preset(name)
    mc = dataclasses.replace(p.model, dtype=dtype, remat="none").validate()
    tc = p.train
    tokens = tc.batch_size * mc.seq_len
    job = {"op": "train", "shape": shape_of(mc), "batch": tc.batch_size, "dtype": dtype}
    jx = JaxTrain(mc, tc)
    # Default: enough steps for about 2 s a turn (a 40 ms tiny step timed twice is mostly noise).
    steps = args.steps or max(2, min(50, round(2.0 / min(jx.run(2)[0]))))
    sides = {"jax": lambda: tokens / statistics.median(jx.run(steps)[0])}
    setups = [f"JAX {jx.setup_s:.1f} s (loss {jx.first_loss:.3f})"]
    for compiled in [False, True] if args.compile else [False]:
        first = torch.ask({**job, "compiled": compiled, "steps": 0})
        label = "torch.compile" if compiled else "eager"
        if "error" in first:
            print(f"{name:>6} {dtype:>9}  PyTorch {label} failed: {first['error']}")
            continue
        setups.append(f"PyTorch {label} {first['setup_s']:.1f} s (loss {first['first_loss']:.3f})")
        sides[label] = (lambda c: lambda: tokens / statistics.median(
            torch.seconds({**job, "compiled": c, "steps": steps})))(compiled)
    got = _rounds(args.rounds, sides)
    cells = "".join(f"{_summary(got[k])} {_ratio(got['jax'], got[k]):>17}" for k in got if k != "jax")
    print(f"{name:>6} {dtype:>9} {_summary(got['jax'])} {cells}")
    print(f"{'':>17}{steps} timed steps a turn; first step: {'; '.join(setups)}; {others(torch)}")
    torch.ask({"op": "reset"})
    del jx
    jax.clear_caches()


def decode_row(torch: Torch, name: str, dtype: str, args) -> None:
    import dataclasses

    import jax
    import numpy as np

    from shared import config as cfg
    from shared import inference, model

    mc = dataclasses.replace(cfg.preset(name).model, dtype=dtype).validate()
    prompt = list(range(16))
    new = min(args.new_tokens, mc.seq_len - len(prompt) + 1)
    params = inference.prepare(model.init(mc, jax.random.key(0)), mc)
    job = {"op": "decode", "shape": shape_of(mc), "dtype": dtype, "prompt": prompt, "new": new}

    def jax_side():
        inference.generate(params, mc, [np.array(prompt, np.int32)], 8)  # untimed, as for training
        start = time.perf_counter()
        inference.generate(params, mc, [np.array(prompt, np.int32)], new)
        return new / (time.perf_counter() - start)

    def torch_side():
        torch.seconds({**job, "new": 8})
        return new / torch.seconds(job)

    got = _rounds(args.rounds, {"jax": jax_side, "eager": torch_side})
    print(f"{name:>6} {dtype:>9} {_summary(got['jax'])} {_summary(got['eager'])} "
          f"{_ratio(got['jax'], got['eager']):>17}   ({new} tokens after a {len(prompt)}-token prompt; "
          f"{others(torch)})")
    torch.ask({"op": "reset"})


def matmul_rows(torch: Torch, name: str, dtypes: list[str]) -> None:
    """GFLOP/s of two of the step's matmuls alone: its widest weight matmul [B*S, E] @ [E, F],
    and attention's scores, [S, D] @ [D, T] for each of B*H heads; on each side the best of 10
    runs, in 3 alternating rounds, the median shown. JAX compiles them with the training step's
    XLA options (shared.compile_options.for_training), so they run the step's kernels."""
    import jax
    import jax.numpy as jnp

    from shared import compile_options
    from shared import config as cfg

    p = cfg.preset(name)
    c, B = p.model, p.train.batch_size
    shapes = {"weights": (0, B * c.seq_len, c.d_model, c.d_ff),
              "attention": (B * c.n_heads, c.seq_len, c.head_dim, c.seq_len)}

    def best_of_10(f, a, b) -> float:
        best = math.inf
        for _ in range(10):
            start = time.perf_counter()
            f(a, b).block_until_ready()
            best = min(best, time.perf_counter() - start)
        return best

    for dtype in dtypes:
        f = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32),
                    compiler_options=compile_options.for_training(dtype))
        for what, (batch, M, K, N) in shapes.items():
            lead = (batch,) if batch else ()
            a, b = jnp.ones(lead + (M, K), dtype), jnp.ones(lead + (K, N), dtype)
            f(a, b).block_until_ready()
            job = {"op": "matmul", "batch": batch, "mkn": [M, K, N], "dtype": dtype, "runs": 10}
            flop = 2 * max(batch, 1) * M * K * N
            got = _rounds(3, {"jax": lambda: flop / best_of_10(f, a, b),
                              "torch": lambda: flop / torch.seconds(job)})
            label = f"{batch} x " if batch else ""
            print(f"{name:>6} {dtype:>9} {what:>9} {label}[{M}, {K}] @ [{K}, {N}]: JAX "
                  f"{statistics.median(got['jax']) / 1e9:6.1f} GFLOP/s, PyTorch "
                  f"{statistics.median(got['torch']) / 1e9:6.1f} GFLOP/s")


def run(args) -> None:
    check(args)
    if args.quick:
        args.rounds = args.rounds or 2
        args.new_tokens = args.new_tokens or 32
    args.rounds = args.rounds or 3
    args.new_tokens = args.new_tokens or 240
    presets = args.preset or (["tiny"] if args.quick else ["tiny", "small"])
    dtypes = [args.dtype] if args.dtype else ["float32", "bfloat16"]
    torch = Torch(args.python)  # a missing torch is said before any JAX work
    try:
        import jax

        from shared import hardware

        print(f"{hardware.cpu()}; jax {jax.__version__} ({jax.devices()[0].platform}), torch "
              f"{torch.version} ({torch.threads} threads) in {args.python}")
        print(f"{args.rounds} rounds per row, JAX and PyTorch alternating (the order rotates each "
              "round); each turn starts with an untimed step (the first after the other process's "
              "turn is slow on both sides), and its figure is the median of its timed steps; each "
              "column the median over rounds; JAX/PyTorch the median of the rounds' ratios "
              "(their range)\n")
        other = ["torch.compile", "JAX/compiled"] if args.compile else []
        head = ["preset", "compute", "JAX tok/s", "eager tok/s", "JAX/eager"]
        widths = [6, 9, 10, 10, 17, 10, 17]
        print("training (the preset's batch, AdamW, remat none):")
        print(" ".join(f"{h:>{w}}" for h, w in zip(head + other, widths)))
        for name in presets:
            for dtype in dtypes:
                train_row(torch, name, dtype, args)
        decode_at = "small" if "small" in presets else presets[-1]
        print(f"\nbatch-1 greedy decoding with a KV cache, {decode_at}:")
        print(" ".join(f"{h:>{w}}" for h, w in zip(head, widths)))
        for dtype in dtypes:
            decode_row(torch, decode_at, dtype, args)
        print("\ntwo of the training step's matmuls alone (best of 10 runs, median of 3 alternating rounds):")
        matmul_rows(torch, presets[-1], dtypes)
        print(others(torch, "the matmuls were timed"))
    finally:
        torch.close()


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    sys.path.pop(0)  # this file's folder: its benchmark modules must not shadow torch's imports
    worker()
