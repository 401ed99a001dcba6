"""Lesson 08's figures: prefill and decode on an H100's roofline (closed forms from the
`125m` preset's shapes), the cost of naive vs cached generation (the compiler's cost
analysis of model.forward), decode's MBU vs batch (measured here), and a training step's
profile grouped by kind of op (measured here, shared.profiling).
"""

from __future__ import annotations

import collections
import re
import tempfile
from pathlib import Path

import numpy as np

from shared.figures import draw


def _figure(*args, **kwargs):
    fig, axes = draw.figure(*args, **kwargs)
    fig.set_layout_engine("constrained")
    return fig, axes


PROMPTS = (16, 64, 256, 1024, 4096)  # prefill lengths S at batch 1
BATCHES = (1, 4, 32, 128, 512)  # decode batches B at one token each
CONTEXT = 1024  # positions in the cache a decode step reads


def step_cost(config, batch: int, tokens: int, context: int) -> tuple[float, float]:
    """(FLOPs, bytes) of one extend step: batch rows of `tokens` new tokens, attending to
    `context` positions. FLOPs: 2 per matmul parameter per token plus attention's QK^T and
    AV (4 L E per token and position); bytes: the matmul weights once and every row's
    cache (read, and the new tokens written), in the config's dtype."""
    from shared import inference, model

    itemsize = np.dtype(np.float32).itemsize if config.dtype == "float32" else 2
    N = model.matmul_param_count(config)
    flops = 2 * N * batch * tokens + 4 * config.n_layers * config.d_model * batch * tokens * context
    nbytes = N * itemsize + batch * context * inference.kv_bytes_per_token(config)
    return flops, nbytes


def draw_roofline(path: Path) -> None:
    from shared import config as cfg
    from shared.hardware import CHIPS
    from shared.roofline import ridge_point

    chip, dtype = CHIPS["H100"], "bfloat16"
    mc = cfg.preset("125m").model
    peak, bw = chip.flops(dtype), chip.memory_bw
    ridge = ridge_point(chip, dtype)
    fig, ax = _figure(8.5, 5)
    x = np.logspace(-1, 4, 200)
    ax.plot(x, np.minimum(bw * x, peak) / 1e12, color="black",
            label=f"{chip.name}: {bw / 1e12:.2f} TB/s, {peak / 1e12:.0f} TFLOP/s bf16")
    ax.axvline(ridge, color="grey", linestyle=":", linewidth=1)
    ax.text(ridge * 1.1, 2, f"ridge {ridge:.0f} FLOP/B", fontsize=8, color="grey")
    series = (
        ("prefill, B = 1, S =", [(s, step_cost(mc, 1, s, s)) for s in PROMPTS], "tab:blue", "o", (-22, 7)),
        (f"decode, 1 token per row, cache {CONTEXT} per row, B =",
         [(b, step_cost(mc, b, 1, CONTEXT)) for b in BATCHES], "tab:red", "s", (5, -12)),
        ("decode, weights only (an empty cache), B =", [(b, step_cost(mc, b, 1, 0)) for b in BATCHES],
         "tab:orange", "D", (6, -4)))
    for name, points, color, marker, offset in series:
        xs = [f / b for _, (f, b) in points]
        ys = [min(bw * i, peak) / 1e12 for i in xs]
        ax.plot(xs, ys, marker, color=color, label=f"{name} {', '.join(str(p) for p, _ in points)}",
                markersize=7, zorder=3, fillstyle="none" if marker == "D" else "full")
        for i, ((p, _), xi, yi) in enumerate(zip(points, xs, ys)):
            if marker == "s" and i % 2:
                continue  # the cache-bound points crowd together: every other one named
            dy = offset[1]
            ax.annotate(f"{'S' if marker == 'o' else 'B'}={p}", (xi, yi), textcoords="offset points",
                        xytext=(offset[0], dy),
                        fontsize=8, color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs per byte of HBM traffic)")
    ax.set_ylabel("attainable TFLOP/s (roofline bound)")
    ax.set_title(f"Prefill vs decode on the roofline: the 125m preset in bfloat16 "
                 f"({model_params(mc) / 1e6:.0f}M matmul parameters)\n"
                 "closed forms: 2N FLOPs per token + attention; bytes = weights once + the KV cache "
                 "(shared.hardware figures)", fontsize=9)
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(fontsize=8, loc="lower right")
    draw.save(fig, path)


def model_params(config) -> int:
    from shared import model

    return model.matmul_param_count(config)


def _lesson_model():
    """The notebook's model on a CPU: 3.3M parameters, E = 256, L = 4."""
    from shared import config as cfg

    return cfg.ModelConfig(seq_len=256, d_model=256, n_layers=4, n_heads=4, d_ff=1024, **cfg.FAST)


def draw_naive(path: Path) -> None:
    import jax
    import jax.numpy as jnp

    from shared import model, roofline

    mc = _lesson_model()
    from shared import inference

    params = jax.eval_shape(lambda: model.init(mc, jax.random.key(0)))
    # Layers as a list (inference.split_layers) run as a Python loop: XLA's cost analysis
    # counts a scan's body once, an unrolled program every layer.
    unrolled = jax.eval_shape(lambda: inference.split_layers(model.init(mc, jax.random.key(0))))
    ts = np.array([32, 64, 128, 256])
    flops = np.array([roofline.cost(lambda p, x: model.forward(p, x, mc), unrolled,
                                    jax.ShapeDtypeStruct((1, int(t)), jnp.int32)).flops for t in ts])
    fit = np.polyfit(ts, flops, 2)  # forward over t tokens: a + b t + c t^2
    n = np.arange(1, 513)
    forward = np.polyval(fit, n)
    naive = np.cumsum(forward)  # token t runs a forward pass over the t tokens before it
    cached = forward  # with a cache, token t costs one token's pass: the same FLOPs summed
    fig, (left, right) = _figure(11, 4.3, 1, 2)
    left.plot(ts, flops / 1e9, "o", color="black", label="compiled forward (XLA cost analysis)")
    left.plot(n, forward / 1e9, color="grey", label="quadratic fit")
    left.set_xlabel("tokens t in one forward pass")
    left.set_ylabel("GFLOP")
    left.set_title("One forward pass over t tokens", fontsize=10)
    left.legend(fontsize=8)
    left.grid(True, linewidth=0.3)
    right.loglog(n, naive / 1e9, color="tab:red", label="naive: a forward pass over t tokens per token")
    right.loglog(n, cached / 1e9, color="tab:green", label="KV cache: one token's pass per token")
    for k in (32, 128, 512):
        right.annotate(f"{naive[k - 1] / cached[k - 1]:.0f}x", (k, naive[k - 1] / 1e9),
                       textcoords="offset points", xytext=(-10, 6), fontsize=8)
    right.set_xlabel("tokens generated n")
    right.set_ylabel("GFLOP to generate n tokens")
    right.set_title("Generating n tokens: naive grows as n², cached as n", fontsize=10)
    right.legend(fontsize=8)
    right.grid(True, which="both", linewidth=0.3)
    fig.suptitle(f"Naive vs cached generation, {model.param_count(params) / 1e6:.1f}M-parameter model "
                 f"(E = {mc.d_model}, L = {mc.n_layers}); FLOPs from XLA's cost analysis", fontsize=10)
    draw.save(fig, path)


DECODE_BATCHES = (1, 2, 4, 8, 16)


def _decode_model():
    """Lesson 09's notebook model on a CPU: 25M parameters, 100 MB of float32 weights (three
    times a 32 MiB L3), so a decode step reads its weights from memory."""
    from shared import config as cfg

    return cfg.ModelConfig(seq_len=256, d_model=512, n_layers=8, n_heads=8, d_ff=2048, **cfg.FAST)


def draw_mbu(path: Path) -> None:
    import jax

    from shared import hardware, inference, model, quant
    from shared.bench.inference import decode_seconds

    mc = _decode_model()
    chip = hardware.detect()
    params = model.init(mc, jax.random.key(0))
    weights = quant.matmul_bytes(params)
    rows = []
    for b in DECODE_BATCHES:
        # the best of three means of 4 steps: another program on the cores only slows a step
        seconds = min(decode_seconds(params, mc, b, steps=4, max_len=mc.seq_len) for _ in range(3))
        nbytes = weights + b * mc.seq_len * inference.kv_bytes_per_token(mc)
        flops = 2 * model.matmul_param_count(mc) * b
        bound = max(nbytes / chip.read_bw, flops / chip.flops("float32"))
        rows.append((b, seconds, nbytes, bound))
    b, s, nbytes, bound = (np.array(c, float) for c in zip(*rows))
    fig, (left, right) = _figure(11, 4.3, 1, 2)
    left.plot(b, 1e3 * s, "o-", color="black", label="measured ms per decode step")
    left.plot(b, 1e3 * bound, "--", color="tab:grey", label="roofline bound (reads / read bandwidth)")
    left.set_xscale("log", base=2)
    left.set_xticks(b, [str(int(x)) for x in b])
    left.set_xlabel("batch B (rows decoded together)")
    left.set_ylabel("ms per step")
    left.set_ylim(0, None)
    left.legend(fontsize=8)
    left.grid(True, linewidth=0.3)
    left.set_title("Step time: B rows share one read of the weights", fontsize=10)
    mbu = nbytes / s / chip.read_bw
    right.plot(b, 100 * mbu, "o-", color="tab:red", label="MBU (bytes read / s / read bandwidth)")
    ax2 = right.twinx()
    ax2.plot(b, b / s, "s-", color="tab:green", label="tokens/s")
    ax2.set_ylabel("tokens/s", color="tab:green")
    right.set_xscale("log", base=2)
    right.set_xticks(b, [str(int(x)) for x in b])
    right.set_xlabel("batch B")
    right.set_ylabel("MBU (%)", color="tab:red")
    right.set_ylim(0, 100)
    ax2.set_ylim(0, None)
    right.grid(True, linewidth=0.3)
    right.set_title("MBU and tokens/s vs batch", fontsize=10)
    fig.suptitle(f"Decode steps of a {model.param_count(params) / 1e6:.0f}M-parameter float32 model "
                 f"({weights / 1e6:.0f} MB of matmul weights, cache of {mc.seq_len}), measured on "
                 f"{draw.machine()}\nread bandwidth {chip.read_bw / 1e9:.0f} GB/s calibrated in the same "
                 "run (shared.hardware); each point the best of 3 means of 4 steps (shared.bench.inference)",
                 fontsize=9)
    draw.save(fig, path)


def _kind(op: str) -> str:
    """An op's kind: its name without the number XLA appends (dot.31 -> dot, ynn_fusion.2 -> ynn_fusion)."""
    return re.sub(r"(\.\d+)+$", "", op)


def draw_profile(path: Path) -> None:
    import jax

    from shared import config as cfg
    from shared import profiling, train
    from shared.bench.train import synthetic_batch

    p = cfg.preset("tiny")
    mc, tc = p.model, p.train
    state = train.init_state(mc, tc)
    batch = synthetic_batch(tc.batch_size, mc.seq_len, mc.vocab_size)
    step = train.make_step(mc, tc)
    state, metrics = step(state, batch)  # compile outside the trace
    jax.block_until_ready(metrics)
    steps = 3
    with tempfile.TemporaryDirectory() as logdir:
        with profiling.trace(logdir):
            for _ in range(steps):
                state, metrics = step(state, batch)
            jax.block_until_ready(metrics)
        ops = profiling.op_times(logdir)
    kinds: dict[str, list] = collections.defaultdict(lambda: [0.0, 0, 0])
    for o in ops:
        k = kinds[_kind(o.name)]
        k[0] += o.seconds
        k[1] += 1
        k[2] += o.count
    total = sum(v[0] for v in kinds.values())
    top = sorted(kinds.items(), key=lambda kv: -kv[1][0])[:12]
    rest = total - sum(v[0] for _, v in top)
    names = [k for k, _ in top] + [f"{len(kinds) - len(top)} other kinds"]
    ms = [1e3 * v[0] / steps for _, v in top] + [1e3 * rest / steps]
    fig, ax = _figure(8.5, 5)
    colors = ["tab:blue" if n.startswith(("ynn", "dot", "gemm", "onednn", "custom-call")) or "dot" in n
              else "tab:red" if "copy" in n or "transpose" in n else "tab:grey" for n in names]
    ax.barh(range(len(names)), ms, color=colors)
    for i, (n, m) in enumerate(zip(names, ms)):
        info = f" {m:.1f} ms, {m / (1e3 * total / steps):.0%}"
        if i < len(top):
            info += f"  ({top[i][1][1]} op{'s' if top[i][1][1] > 1 else ''})"
        ax.text(m, i, info, va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(ms) * 1.45)
    ax.set_xlabel("ms of op time per step (summed over threads)")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="tab:blue", label="matmuls (dot: XLA's emitter; ynn_fusion: YNNPACK)"),
                       Patch(color="tab:red", label="copies / layout changes"),
                       Patch(color="tab:grey", label="elementwise, reductions, loops, other")],
              fontsize=8, loc="lower right")
    ax.set_title(f"Profile of {steps} training steps of the tiny preset, grouped by op kind: "
                 f"{len(ops)} ops, {1e3 * total / steps:.0f} ms per step\nmeasured on {draw.machine()} "
                 "(shared.profiling.trace and op_times)", fontsize=9)
    draw.save(fig, path)


# Longer than a test should wait (timed decode steps after a calibration; a profiled training run):
# drawn by `python -m shared.figures`, left out of tests/test_figures.py.
SLOW = {"mbu_vs_batch.png", "profile_by_kind.png"}

FIGURES = {
    "prefill_decode_roofline.png": draw_roofline,
    "naive_vs_cached.png": draw_naive,
    "mbu_vs_batch.png": draw_mbu,
    "profile_by_kind.png": draw_profile,
}
