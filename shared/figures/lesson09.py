"""Lesson 09's figures: the KV cache filling over prefill and decode steps (a real
shared.inference run), the slot timeline of continuous vs static batching and the paged
cache's page table (a real shared.engine run with shared.paged), the bytes a decode
step reads per weight format (shared.quant on the `125m` preset's shapes), and the loss
curves of training in float32, bfloat16 and int8 on the same batches (shared.qtrain, measured).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from shared.figures import draw


def _figure(*args, **kwargs):
    fig, axes = draw.figure(*args, **kwargs)
    fig.set_layout_engine("constrained")
    return fig, axes


def _micro():
    """A small model with grouped-query attention (K = 2 < H = 4), as in the notebook."""
    from shared import config as cfg

    return cfg.ModelConfig(seq_len=32, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=256, **cfg.FAST)


PROMPTS = (5, 9, 3)  # tokens per row
NEW = (7, 4, 9)  # tokens generated per row (the first by the prefill step)
CACHE = 20  # positions per row


def cache_growth() -> list[np.ndarray]:
    """Prefill then decode the rows together with inference's step; returns each step's
    cache.length [B], before the first step too. (A step writes S positions per row; only
    the n_valid real ones count, and the next step overwrites the rest.)"""
    import jax

    from shared import inference, model

    mc = _micro()
    params = inference.prepare(model.init(mc, jax.random.key(0)), mc)
    B = len(PROMPTS)
    cache = inference.init_cache(mc, B, CACHE)
    tokens = np.zeros((B, max(PROMPTS)), np.int32)  # right-padded prompts
    for b, n in enumerate(PROMPTS):
        tokens[b, :n] = np.arange(1, n + 1)
    opts = dict(config=mc, temperature=0.0, top_k=None, top_p=None)
    seeds, lengths = np.zeros(B, np.int32), [np.asarray(cache.length)]
    token, cache = inference._step(params, cache, tokens, np.array(PROMPTS, np.int32), seeds, seeds, **opts)
    lengths.append(np.asarray(cache.length))
    for i in range(1, max(NEW)):
        active = (np.array(NEW) > i).astype(np.int32)  # as inference.generate: finished rows stop
        token, cache = inference._step(params, cache, token, active, seeds,
                                       np.full(B, i, np.int32), **opts)
        lengths.append(np.asarray(cache.length))
    return lengths


def draw_cache_growth(path: Path) -> None:
    from shared import inference

    mc = _micro()
    lengths = cache_growth()
    B = len(PROMPTS)
    written = np.full((B, CACHE), -1)
    for step in range(1, len(lengths)):
        for b in range(B):
            written[b, lengths[step - 1][b]:lengths[step][b]] = step - 1  # 0: prefill
    from matplotlib import colormaps

    steps = len(lengths) - 1
    cmap = colormaps["viridis"]
    colors = [["whitesmoke" if w < 0 else "tab:orange" if w == 0 else cmap(0.15 + 0.8 * w / steps)
               for w in row] for row in written]
    text = [["" if w < 0 else "P" if w == 0 else str(w) for w in row] for row in written]
    fig, ax = _figure(10, 3.4)
    draw.grid_cells(ax, written, colors=colors, text=text, fontsize=8)
    ax.set_yticks(range(B), [f"row {b}: prompt {p}, {n} new" for b, (p, n) in enumerate(zip(PROMPTS, NEW))],
                  fontsize=8)
    ax.set_xticks(range(CACHE), range(CACHE), fontsize=7)
    ax.set_xlabel(f"cache position t (T = {CACHE} reserved per row)")
    per_token = inference.kv_bytes_per_token(mc)
    ax.set_title(
        "The KV cache filling: P = written by the prefill step (extend with S = the prompt), "
        "n = written by decode step n (S = 1)\n"
        f"cache: L = {mc.n_layers} buffers each of k [B, K, D, T] and v [B, K, T, D], B = {B}, "
        f"K = {mc.kv_heads}, T = {CACHE}, D = {mc.head_dim}; "
        f"{per_token} B per position (2 L K D x 4 B); a finished row stops growing "
        "(a real shared.inference run)", fontsize=9)
    draw.save(fig, path)


SLOTS = 4
REQUESTS = 12
MAX_LEN = 64
PAGE = 8


@functools.cache
def engine_run():
    """A real continuous-batching run with a paged cache: 12 requests of the serving bench's
    mix on 4 slots. Returns (requests, per decode step the request id in each slot or -1,
    the page table, held pages and free list at the busiest step)."""
    import jax

    from shared import engine, model, paged
    from shared.bench.serving import workload

    mc = dataclasses.replace(_micro(), seq_len=MAX_LEN)
    params = model.init(mc, jax.random.key(0))
    requests = workload(REQUESTS, MAX_LEN, seed=1)
    eng = engine.Engine(params, mc, slots=SLOTS, kv=paged.PagedKV(mc, SLOTS, MAX_LEN, page=PAGE),
                        buckets=(16, 32, MAX_LEN))
    timeline, snapshot = [], None
    decode = eng._decode  # the compiled decode step, observed: who holds each slot when it runs

    def observed(*args):
        timeline.append([s.request.id if s else -1 for s in eng.active])
        return decode(*args)

    eng._decode = observed
    for r in requests:
        assert eng.submit(r) is None
    while not eng.idle:
        eng.step()
        held = sum(map(len, eng.kv.held))
        if snapshot is None or held > snapshot[3]:
            snapshot = (eng.kv.table.copy(), [list(h) for h in eng.kv.held], list(eng.kv.free), held,
                        [s.request.id if s else -1 for s in eng.active],
                        [s.length if s else 0 for s in eng.active], len(timeline))
    return requests, np.array(timeline), snapshot, eng.kv.pages


def draw_batching(path: Path) -> None:
    requests, timeline, _, _ = engine_run()
    budgets = {r.id: r.max_new_tokens for r in requests}
    fig, (top, bottom) = _figure(11, 5.4, 2, 1, sharex=True)
    colors = [draw.device_colors(REQUESTS)[i] for i in range(REQUESTS)]

    # Static: batches of SLOTS in arrival order; each runs until its longest request is done.
    x = 0
    for first in range(0, REQUESTS, SLOTS):
        batch = requests[first:first + SLOTS]
        # inference.generate: one prefill (the first token), then max(new) - 1 decode steps
        steps = max(r.max_new_tokens for r in batch) - 1
        for slot, r in enumerate(batch):
            mine = r.max_new_tokens - 1
            bottom.barh(slot, mine, left=x, color=colors[r.id], edgecolor="black", lw=0.5)
            bottom.text(x + 0.3, slot, f"r{r.id}", va="center", fontsize=7)
            if mine < steps:
                bottom.barh(slot, steps - mine, left=x + mine, color="lightgrey",
                            hatch="///", edgecolor="grey", lw=0.5)
        x += steps
    static_steps = x

    # Continuous: the engine's real slot occupancy, step by step.
    for slot in range(SLOTS):
        run_start = 0
        for t in range(1, len(timeline) + 1):
            if t == len(timeline) or timeline[t][slot] != timeline[run_start][slot]:
                rid = timeline[run_start][slot]
                if rid >= 0:
                    top.barh(slot, t - run_start, left=run_start, color=colors[rid], edgecolor="black",
                             lw=0.5)
                    top.text(run_start + 0.3, slot, f"r{rid}", va="center", fontsize=7)
                run_start = t
    useful = sum(budgets.values()) - len(budgets)  # tokens from decode steps (the first: prefill)
    for ax, name, steps in ((top, "continuous batching (shared.engine, a real run)", len(timeline)),
                            (bottom, "static batching (batches of 4 in arrival order, as "
                                     "shared.bench.serving's replay)", static_steps)):
        ax.set_yticks(range(SLOTS), [f"slot {s}" for s in range(SLOTS)], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{name}: {steps} decode steps for {useful} decoded tokens, "
                     f"{useful / (steps * SLOTS):.0%} of slot-steps useful", fontsize=9)
        ax.axvline(steps, color="black", lw=1)
    bottom.set_xlabel("decode steps (each emits one token per busy slot; a request's first token "
                      "comes from its prefill)")
    from matplotlib.patches import Patch

    bottom.legend(handles=[Patch(facecolor="lightgrey", hatch="///", edgecolor="grey",
                                 label="finished, its slot waits for the batch's longest")],
                  fontsize=8, loc="lower right")
    fig.suptitle(f"{REQUESTS} requests (80% want 4-16 tokens, 20% up to the context of {MAX_LEN}) "
                 f"on {SLOTS} slots; r = request id, bar length = its decode steps", fontsize=10)
    draw.save(fig, path)


def draw_paged(path: Path) -> None:
    requests, _, snapshot, pages = engine_run()
    table, held, free, n_held, ids, lengths, step = snapshot
    colors = draw.device_colors(REQUESTS)
    fig, (left, right) = _figure(11, 4.2, 1, 2, width_ratios=[1, 1.5])
    per_seq = table.shape[1]
    cell = [[colors[ids[s]] if c < len(held[s]) else "whitesmoke" for c in range(per_seq)]
            for s in range(SLOTS)]
    text = [[str(table[s, c]) if c < len(held[s]) else "0" for c in range(per_seq)] for s in range(SLOTS)]
    draw.grid_cells(left, table, colors=cell, text=text, fontsize=8)
    left.set_yticks(range(SLOTS), [f"slot {s}: r{ids[s]}, {lengths[s]} pos." if ids[s] >= 0
                                   else f"slot {s}: free" for s in range(SLOTS)], fontsize=8)
    left.set_xticks(range(per_seq), [f"{c * PAGE}-{c * PAGE + PAGE - 1}" for c in range(per_seq)],
                    fontsize=7, rotation=45)
    left.set_xlabel("positions of the sequence (one page each)")
    left.set_title("page table [slots, max_len / page]: page ids\n(0 = the sink page, not held)", fontsize=9)

    owner = np.full(pages, -2)
    owner[0] = -3
    for s, hs in enumerate(held):
        for p in hs:
            owner[p] = s
    cols = 10
    grid_rows = -(-pages // cols)
    cell = [["white"] * cols for _ in range(grid_rows)]
    text = [[""] * cols for _ in range(grid_rows)]
    for p in range(pages):
        r, c = divmod(p, cols)
        cell[r][c] = ("dimgrey" if owner[p] == -3 else "whitesmoke" if owner[p] == -2
                      else colors[ids[owner[p]]])
        text[r][c] = f"{p}" + ("\nsink" if owner[p] == -3 else f"\nslot {owner[p]}" if owner[p] >= 0 else "")
    draw.grid_cells(right, np.zeros((grid_rows, cols)), colors=cell, text=text, fontsize=7)
    right.set_xticks([])
    right.set_yticks([])
    from shared import inference

    mc = dataclasses.replace(_micro(), seq_len=MAX_LEN)
    per_page = PAGE * inference.kv_bytes_per_token(mc)
    used = sum(lengths)
    right.set_title(f"the pool [L, pages, K, page, D]: {pages} pages of {PAGE} positions "
                    f"({per_page / 1024:.0f} KiB each); {n_held} held, {len(free)} free\n"
                    f"held {n_held * PAGE} positions for {used} in use; a contiguous cache would "
                    f"reserve {SLOTS * MAX_LEN}", fontsize=9)
    fig.suptitle(f"The paged KV cache after decode step {step} of a real engine run "
                 f"(shared.paged.PagedKV: {SLOTS} slots, max_len {MAX_LEN}, pages of {PAGE})", fontsize=10)
    draw.save(fig, path)


def draw_int8(path: Path) -> None:
    import jax

    from shared import config as cfg
    from shared import model, quant
    from shared.hardware import CHIPS

    mc = cfg.preset("125m").model
    f32 = jax.eval_shape(lambda: model.init(mc, jax.random.key(0)))
    formats = {
        "float32": quant.matmul_bytes(f32),
        "bfloat16": quant.matmul_bytes(jax.eval_shape(lambda p: model.cast(p, "bfloat16"), f32)),
        "int8 + float32 scales": quant.matmul_bytes(jax.eval_shape(quant.quantize_params, f32)),
    }
    chip = CHIPS["H100"]
    fig, ax = _figure(8, 4.2)
    names = list(formats)
    mb = [formats[n] / 1e6 for n in names]
    ax.bar(names, mb, color=["tab:blue", "tab:orange", "tab:green"], edgecolor="black")
    for i, n in enumerate(names):
        us = formats[n] / chip.memory_bw * 1e6
        ratio = f"\n{formats['float32'] / formats[n]:.2f}x fewer than float32" if i else ""
        ax.text(i, mb[i], f"{mb[i]:.0f} MB{ratio}\n{us:.0f} µs to read on an H100", ha="center",
                va="bottom", fontsize=8)
    ax.set_ylim(0, max(mb) * 1.35)
    ax.set_ylabel("MB of matmul weights a decode step reads")
    ax.set_title(f"Bytes per decode step by weight format: the 125m preset "
                 f"({model.matmul_param_count(mc) / 1e6:.0f}M matmul parameters)\n"
                 f"shared.quant.matmul_bytes on the shapes; time = bytes / {chip.memory_bw / 1e12:.2f} TB/s "
                 "(H100 datasheet)", fontsize=9)
    draw.save(fig, path)


def losses(mc, tc, tokens: np.ndarray, net=None):
    """(the training loss of each of tc.steps steps, the final parameters) on data.batch's
    windows of `tokens`: the same batches whatever the net (shared.model by default, or
    shared.qtrain for int8 matmuls) or mc.dtype, so runs differ only in their arithmetic."""
    import jax

    from shared import data, model, train

    net = net or model
    state, step = train.init_state(mc, tc, net=net), train.make_step(mc, tc, net=net)
    out = []
    for i in range(tc.steps):
        inputs, targets = data.batch(tokens, tc.batch_size, mc.seq_len, tc.seed, i)
        state, metrics = step(state, {"inputs": inputs, "targets": targets})
        out.append(metrics["loss"])
    return np.array(jax.device_get(out), float), state["params"]


TRAIN_STEPS = 400
SMOOTH = 20  # steps per moving average of the curves, and the "final" training loss
VAL_BATCHES = 8


def int8_runs() -> tuple[dict, dict, object]:
    """Three runs of a reduced tiny preset (2 layers, S = 64) on the standard library's
    sources, the same batches in each: float32, bfloat16, and float32 with every weight matmul
    in int8. Returns ({name: per-step losses}, {name: validation loss}, the model config)."""
    import jax

    from shared import config as cfg
    from shared import data, model, qtrain

    p = cfg.preset("tiny")
    mc = dataclasses.replace(p.model, seq_len=64, n_layers=2, dtype="float32")
    tc = dataclasses.replace(p.train, steps=TRAIN_STEPS, warmup_steps=TRAIN_STEPS // 10)
    splits = data.split(data.load_corpus(), mc.seq_len)
    val = [dict(zip(("inputs", "targets"), data.batch(splits.val, tc.batch_size, mc.seq_len, 1, i)))
           for i in range(VAL_BATCHES)]
    curves, validation = {}, {}
    for name, dtype, net in (("float32", "float32", model), ("bfloat16", "bfloat16", model),
                             ("int8", "float32", qtrain)):
        run_mc = dataclasses.replace(mc, dtype=dtype)
        curves[name], params = losses(run_mc, tc, splits.train, net)
        sums = jax.jit(net.loss_sums, static_argnums=2)  # validated as trained: int8 for int8
        total, count = np.sum([jax.device_get(sums(params, b, run_mc)) for b in val], axis=0)
        validation[name] = float(total / count)
    return curves, validation, mc


def draw_int8_training(path: Path) -> None:
    import jax

    curves, validation, mc = int8_runs()
    fig, (top, bottom) = _figure(9, 6.4, 2, 1, sharex=True, height_ratios=[2, 1])
    colors = {"float32": "tab:blue", "bfloat16": "tab:orange", "int8": "tab:green"}
    kernel = np.ones(SMOOTH) / SMOOTH
    steps = np.arange(1, TRAIN_STEPS + 1)
    top.plot(steps, curves["float32"], color="grey", lw=0.4, alpha=0.5, label="float32, each step")
    for name, loss in curves.items():
        top.plot(steps[SMOOTH - 1:], np.convolve(loss, kernel, "valid"), color=colors[name],
                 lw=3 if name == "float32" else 1.2,
                 label=f"{name}: last {SMOOTH} steps {loss[-SMOOTH:].mean():.3f}, "
                       f"validation {validation[name]:.3f}")
        if name != "float32":
            gap = np.convolve(loss - curves["float32"], kernel, "valid")
            bottom.plot(steps[SMOOTH - 1:], gap, color=colors[name], lw=1.2, label=f"{name} - float32")
    top.set_ylabel("training loss (nats per byte)")
    top.set_ylim(top=4.5)
    top.legend(fontsize=8, title=f"lines: {SMOOTH}-step means; final losses", title_fontsize=8)
    top.grid(True, linewidth=0.3)
    bottom.axhline(0, color="tab:blue", lw=1)
    bottom.set_ylabel("loss - float32's,\nsame batch (nats)")
    bottom.set_xlabel("step")
    bottom.legend(fontsize=8)
    bottom.grid(True, linewidth=0.3)
    top.set_title(f"The same {TRAIN_STEPS} batches of 8 x {mc.seq_len} bytes in three arithmetics: "
                  f"the tiny preset cut to {mc.n_layers} layers\nint8 = every weight matmul, forward "
                  f"and backward, as int8 x int8 -> int32 (shared.qtrain); validation: {VAL_BATCHES} "
                  f"unseen batches\nmeasured on {draw.machine()}, jax {jax.__version__}", fontsize=9)
    draw.save(fig, path)


# Longer than a test should wait (a real engine run: four compiled programs, 12 requests; the
# cache's two programs run 10 times; three training runs of 400 steps): drawn by
# `python -m shared.figures`, left out of tests/test_figures.py.
SLOW = {"kv_cache_growth.png", "batching_timeline.png", "paged_cache.png", "int8_training.png"}

FIGURES = {
    "kv_cache_growth.png": draw_cache_growth,
    "batching_timeline.png": draw_batching,
    "paged_cache.png": draw_paged,
    "int8_bytes.png": draw_int8,
    "int8_training.png": draw_int8_training,
}
