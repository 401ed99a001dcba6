"""Lesson 10's figures: the Pallas matmul's grid over output blocks with its K loop and
float32 accumulator (blocks from shared.kernels.choose_blocks), the tiled matmul's bytes and
intensity per tile size (shared.kernels.matmul_hbm_bytes) against chips' ridge points, the
flash-attention kernel's loop over key blocks with the causal tiles skipped
(shared.flash_pallas's block sizes and loop bound), and compile / lower / export / cache
stages timed here (shared.aot), and the double-buffered HBM -> VMEM pipeline of
shared.kernels.matmul_k_grid on a TPU v5e (shared.kernels.pipeline_model).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from shared.figures import draw


def _figure(*args, **kwargs):
    fig, axes = draw.figure(*args, **kwargs)
    fig.set_layout_engine("constrained")
    return fig, axes


M, N, K = 512, 384, 256  # the diagram's matmul
PROGRAM = (2, 1)  # the program (i, j) it follows


def draw_matmul_grid(path: Path) -> None:
    from shared import kernels

    bm, bn = kernels.choose_blocks((M, N), (128, 128), where="gpu")
    bk = kernels.choose_blocks((M, K), (bm, 32), where="gpu")[1]  # as kernels.matmul picks it
    gi, gj = M // bm, N // bn
    i, j = PROGRAM
    fig, ax = _figure(11, 6.6)
    s = 1 / 64  # drawing units per element
    gap = 0.6
    # y [K, N] above the output, x [M, K] left of it, out [M, N] below-right (top-left origin).
    ox, oy = K * s + gap, 0.0  # out's top-left corner; y grows downwards in this layout
    yx, yy = ox, K * s + gap  # y's top-left corner is above the output
    to_plot = lambda x, y: (x, -y)

    def matrix(x0, y0, rows, cols, rb, cb, name, hi_rows=None, hi_cols=None, color="tab:blue",
               k_steps=None):
        for r in range(rows // rb):
            for c in range(cols // cb):
                lit = (hi_rows is None or r in hi_rows) and (hi_cols is None or c in hi_cols)
                px, py = to_plot(x0 + c * cb * s, y0 + (r + 1) * rb * s)
                draw.box(ax, px, py, cb * s, rb * s, color=color if lit else "white",
                         alpha=0.45 if lit else 1, lw=0.6)
        px, py = to_plot(x0, y0 + rows * s)
        draw.box(ax, px, py, cols * s, rows * s, color="none", lw=1.6)
        ax.text(x0 + cols * s / 2, -(y0 - 0.15) if y0 else 0.25, name, ha="center", va="bottom",
                fontsize=10)

    # x: [M, K] in blocks [bm, bk]; program (i, j) reads row strip i, in K / bk steps.
    matrix(0, yy, M, K, bm, bk, f"x [M={M}, K={K}]", hi_rows={i}, color="tab:orange")
    # y: [K, N] in blocks [bk, bn]; column strip j.
    matrix(yx, 0, K, N, bk, bn, f"y [K={K}, N={N}]", hi_cols={j}, color="tab:green")
    # out: [M, N] in blocks [bm, bn]: the grid, one program per block.
    matrix(ox, yy, M, N, bm, bn, f"out [M, N]: grid ({gi}, {gj}) = {gi * gj} programs",
           hi_rows={i}, hi_cols={j}, color="tab:purple")
    for r in range(gi):
        for c in range(gj):
            ax.text(ox + (c + 0.5) * bn * s, -(yy + (r + 0.5) * bm * s), f"({r}, {c})", ha="center",
                    va="center", fontsize=8, color="black" if (r, c) == PROGRAM else "grey")
    # the K loop: step k takes x's block (i, k) and y's block (k, j)
    for k in range(K // bk):
        ax.text((k + 0.5) * bk * s, -(yy + (i + 0.5) * bm * s), f"k={k}", ha="center", va="center",
                fontsize=7, rotation=90)
        ax.text(yx + (j + 0.5) * bn * s, -((k + 0.5) * bk * s), f"k={k}", ha="center", va="center",
                fontsize=7)
    # the program's loop and accumulator, above x (the corner the operands leave free)
    draw.box(ax, 0, -(K * s), K * s, K * s - 0.1,
             f"program ({i}, {j}):\nacc [{bm}, {bn}] float32 = 0\n"
             f"for k in 0..{K // bk - 1}:\n  acc += x[{i}, k] @ y[k, {j}]\n"
             f"  # [{bm}, {bk}] @ [{bk}, {bn}]\nout[{i}, {j}] = act(acc)\n  # stored once",
             color="lavender", fontsize=8, family="monospace")
    moved = kernels.matmul_hbm_bytes(M, N, K, bm, bn, 2)
    ax.text(ox + N * s + 0.3, -(yy + 0.1), f"blocks (bm, bn, bk)\n= ({bm}, {bn}, {bk})\n"
            "choose_blocks(\n  where='gpu')\n\n"
            f"bf16: {moved / 2**20:.2f} MiB\nmoved: x read {N // bn}x,\ny read {M // bm}x,\n"
            "out written once\n(matmul_hbm_bytes)", fontsize=8, va="top")
    draw.blank(ax, (-0.2, ox + N * s + 2.6), (-(yy + M * s) - 0.3, 0.7), equal=True)
    ax.set_title("The Pallas matmul (shared.kernels.matmul): a grid of programs over output blocks, "
                 "a K loop inside each,\nsumming into a float32 accumulator that stays on chip",
                 fontsize=10)
    draw.save(fig, path)


TILES = (16, 32, 64, 128, 256, 512)
SIZE = 4096


def draw_tile_intensity(path: Path) -> None:
    from shared import kernels
    from shared.hardware import CHIPS
    from shared.roofline import ridge_point

    flops = 2 * SIZE**3
    moved = np.array([kernels.matmul_hbm_bytes(SIZE, SIZE, SIZE, b, b, 2) for b in TILES], float)
    fig, (left, right) = _figure(11, 4.2, 1, 2)
    left.bar([str(b) for b in TILES], moved / 2**20, color="tab:blue")
    for x, m in enumerate(moved):
        left.text(x, m / 2**20, f"{m / 2**20:,.0f}", ha="center", va="bottom", fontsize=8)
    left.set_yscale("log")
    left.set_xlabel("square tile b (output block b x b)")
    left.set_ylabel("MiB moved between HBM and chip")
    left.set_title(f"Bytes of a {SIZE}³ bf16 matmul by tile size\n(shared.kernels.matmul_hbm_bytes)",
                   fontsize=10)
    right.plot(TILES, flops / moved, "o-", color="black", label="the tiled matmul's FLOPs / byte")
    for name, color in (("H100", "tab:green"), ("TPU v5e", "tab:orange"), ("A100", "tab:red")):
        ridge = ridge_point(CHIPS[name])
        right.axhline(ridge, color=color, linestyle="--", linewidth=1)
        right.text(TILES[0], ridge * 1.06, f"{CHIPS[name].name} ridge {ridge:.0f} FLOP/B (bf16)",
                   fontsize=8, color=color)
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xticks(TILES, [str(b) for b in TILES])
    right.set_xlabel("square tile b")
    right.set_ylabel("FLOPs per byte moved")
    right.set_title("Intensity ≈ b / itemsize: below a ridge the tiles starve the chip\n"
                    "(worst case: no cache serves repeated strip reads)", fontsize=10)
    right.grid(True, which="both", linewidth=0.3)
    right.legend(fontsize=8, loc="lower right")
    draw.save(fig, path)


S_FLASH = 1024  # queries and keys in the picture


def draw_flash(path: Path) -> None:
    from shared import flash_pallas

    bq, bk = flash_pallas.BLOCK_Q, flash_pallas.BLOCK_K
    nq, nk = S_FLASH // bq, S_FLASH // bk
    # The kernel's Block 6: a causal program stops after the key block holding its last query.
    visits = [min(nk, ((i + 1) * bq + bk - 1) // bk) for i in range(nq)]
    status = np.zeros((nq, nk), int)  # 0 skipped, 1 every score kept, 2 partly masked
    for i in range(nq):
        for jj in range(visits[i]):
            q_lo, q_hi, k_lo, k_hi = i * bq, (i + 1) * bq - 1, jj * bk, (jj + 1) * bk - 1
            status[i, jj] = 1 if k_hi <= q_lo else 2
    colors = [["whitesmoke", "tab:blue", "lightskyblue"][v] for row in status for v in row]
    colors = np.array(colors, dtype=object).reshape(nq, nk).tolist()
    fig, (left, right) = _figure(11.5, 5.2, 1, 2, width_ratios=[1.5, 1])
    draw.grid_cells(left, status, colors=colors)
    row = nq - 3
    left.annotate("", xy=(visits[row] - 0.6, row), xytext=(-0.4, row),
                  arrowprops=dict(arrowstyle="-|>", color="black", lw=2))
    left.text(visits[row] - 0.4, row,
              f"  program {row}: fori_loop over\n  {visits[row]} key blocks, then stops",
              va="center", fontsize=8)
    left.set_xticks(range(nk), [str(j) for j in range(nk)], fontsize=7)
    left.set_yticks(range(nq), [f"{i}: q {i * bq}-{(i + 1) * bq - 1}" for i in range(nq)], fontsize=7)
    left.set_xlabel(f"key block j (bk = {bk} keys)")
    left.set_ylabel(f"query block i = one program (bq = {bq})")
    done = sum(visits)
    left.set_title(f"Causal flash attention over S = T = {S_FLASH}: {done} of {nq * nk} tiles visited "
                   f"({done / (nq * nk):.0%})\ndark: every score kept; light: the diagonal, masked inside "
                   "the tile; grey: skipped", fontsize=9)
    # One program's carry, from shared.flash_pallas's kernel
    draw.blank(right, (0, 10), (0, 10))
    items = [(f"queries q [bq={bq}, D]\nloaded once (Block 1)", "tab:orange"),
             (f"step j: keys, values [bk={bk}, D]\n(Block 2, pl.ds slices)", "tab:green"),
             (f"scores s = q kᵀ · scale  [{bq}, {bk}] float32\nmask from positions + segment ids (3-4)",
              "lightskyblue"),
             ("online softmax (Block 5):\nm_new = max(m, rowmax s)\nl = e^(m-m_new) l + Σ e^(s-m_new)\n"
              "acc = e^(m-m_new) acc + e^(s-m_new) v", "lavender"),
             (f"after the loop: out = acc / l  [{bq}, D]\nlse = m + log l  (Blocks 6-7)", "tab:purple")]
    y = 9.6
    for text, color in items:
        h = 1.1 + 0.35 * text.count("\n")
        draw.box(right, 0.3, y - h, 9.4, h, text, color=color, alpha=0.5, fontsize=8)
        if y < 9.6:
            draw.arrow(right, (5, y + 0.25), (5, y))
        y -= h + 0.25
    right.text(5, 0.05, f"carry, on chip: acc [{bq}, D], m [{bq}, 1], l [{bq}, 1]; never [S, T]",
               ha="center", fontsize=8)
    right.set_title("One program (b, h, i) of shared.flash_pallas", fontsize=10)
    draw.save(fig, path)


def _stage_times() -> dict[str, float]:
    """Seconds of each ahead-of-time stage for the tiny model's forward pass on shapes alone:
    trace, lower, compile, export + serialize, deserialize + first call (which compiles the
    deserialized program), and the serialized size. One untimed pass on another batch size
    first, so one-time costs of the process (JAX's own first imports) are not counted and
    no program is compiled twice."""
    import jax
    import jax.numpy as jnp

    from shared import config as cfg
    from shared import model

    mc = cfg.preset("tiny").model
    params = jax.eval_shape(lambda: model.init(mc, jax.random.key(0)))
    for batch in (4, 8):  # the second is measured
        tokens = jax.ShapeDtypeStruct((batch, mc.seq_len), jnp.int32)
        real = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (params, tokens))
        f = jax.jit(lambda p, x: model.forward(p, x, mc))
        t = {}
        t0 = time.perf_counter()
        traced = f.trace(params, tokens)
        t["trace (jaxpr)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        lowered = traced.lower()
        t["lower (StableHLO)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        lowered.compile()
        t["compile (XLA)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        blob = jax.export.export(f)(params, tokens).serialize()
        t["export + serialize"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(jax.export.deserialize(blob).call(*real))
        t["deserialize + first call"] = time.perf_counter() - t0
    t["bytes"] = len(blob)
    return t


def draw_aot(path: Path) -> None:
    from shared import aot

    stages = _stage_times()
    with tempfile.TemporaryDirectory() as cache:
        cold = aot.timed_start(cache)
        entries = aot.cache_entries(cache)
        warm = aot.timed_start(cache)
    fig, (left, right) = _figure(11.5, 4.4, 1, 2, width_ratios=[1.2, 1])
    names = [k for k in stages if k != "bytes"]
    ms = [1e3 * stages[k] for k in names]
    left.barh(range(len(names)), ms, color=["tab:blue", "tab:cyan", "tab:orange", "tab:green", "tab:purple"])
    for y, v in enumerate(ms):
        left.text(v, y, f" {v:.0f} ms", va="center", fontsize=8)
    left.set_yticks(range(len(names)), names, fontsize=8)
    left.invert_yaxis()
    left.set_xlim(0, max(ms) * 1.25)
    left.set_xlabel("ms (one run, after an untimed run of another batch size)")
    left.set_title(f"jax.jit(f).trace -> .lower -> .compile, and jax.export:\nthe tiny forward pass on "
                   f"shapes alone, batch 8; serialized: {stages['bytes'] / 1024:.0f} KiB (the weights are "
                   "arguments)", fontsize=9)
    parts = ("import", "compile", "first step")
    colors = {"import": "tab:grey", "compile": "tab:orange", "first step": "tab:green", "rest": "lightgrey"}
    for x, (name, t) in enumerate((("cold: empty cache", cold), ("warm: cache hit", warm))):
        bottom = 0.0
        for p in (*parts, "rest"):
            v = t["process"] - sum(t[q] for q in parts) if p == "rest" else t[p]
            right.bar(x, v, bottom=bottom, color=colors[p], edgecolor="black",
                      label=p if x == 0 else None)
            if v > 0.4:
                right.text(x, bottom + v / 2, f"{p} {v:.1f} s", ha="center", va="center", fontsize=8)
            bottom += v
        right.text(x, bottom, f"{t['process']:.1f} s", ha="center", va="bottom", fontsize=9)
    right.set_xticks([0, 1], ["cold: empty cache", "warm: cache hit"])
    right.set_ylabel("seconds in a fresh process")
    right.set_ylim(0, max(cold["process"], warm["process"]) * 1.15)
    right.legend(fontsize=7, loc="upper right")
    right.set_title(f"Persistent compilation cache: value_and_grad of the tiny loss\n"
                    f"compile {cold['compile'] / warm['compile']:.0f}x faster warm; {entries} cache "
                    f"file{'s' if entries != 1 else ''} (shared.aot.timed_start)", fontsize=9)
    fig.suptitle(f"Ahead-of-time stages, measured on {draw.machine()}", fontsize=10)
    draw.save(fig, path)


PIPE_SIZE = 4096  # the pipeline figure's bf16 matmul, M = N = K


def _schedule(p, n: int) -> tuple[list, list, list]:
    """The first n steps of a double-buffered pipeline: (start, end) of each step's copy in,
    its compute, and each output block's copy out. Copy i + 1 starts as soon as copy i is done
    and its buffer slot is free (compute i - 1 finished); compute i starts when copy i has
    landed and compute i - 1 is done; an output block leaves after its last K step."""
    copies, computes, outs = [], [], []
    for i in range(n):
        start = max(copies[-1][1] if copies else 0.0, computes[i - 2][1] if i >= 2 else 0.0)
        copies.append((start, start + p.copy_s))
        begin = max(copies[i][1], computes[-1][1] if computes else 0.0)
        computes.append((begin, begin + p.compute_s))
        if (i + 1) % p.grid[2] == 0:
            outs.append((computes[i][1], computes[i][1] + p.out_bytes_per_block / p.hbm_bw))
    return copies, computes, outs


def draw_pipeline(path: Path) -> None:
    from shared import kernels

    cases = [(512, "the copies hide under compute"), (128, "compute waits for every copy")]
    fig, axes = _figure(11.5, 5.6, len(cases), 1)
    steps = 10
    for ax, (b, verdict) in zip(axes, cases):
        p = kernels.pipeline_model(PIPE_SIZE, PIPE_SIZE, PIPE_SIZE, (b, b, b), "TPU v5e")
        copies, computes, outs = _schedule(p, steps)
        us = 1e6
        for i, ((c0, c1), (k0, k1)) in enumerate(zip(copies, computes)):
            slot = "AB"[i % 2]
            kk = i % p.grid[2]
            nxt = "\nnext (i, j)" if i >= p.grid[2] else ""  # the next output block's first blocks
            draw.box(ax, c0 * us, 2.1, (c1 - c0) * us, 0.8, f"k={kk} →{slot}{nxt}", color="tab:green",
                     alpha=0.45, fontsize=7)
            draw.box(ax, k0 * us, 1.1, (k1 - k0) * us, 0.8, f"k={kk}\n{slot}", color="tab:purple",
                     alpha=0.45, fontsize=7)
        for o0, o1 in outs:
            draw.box(ax, o0 * us, 0.1, (o1 - o0) * us, 0.8, "out\n(i, j)", color="tab:orange",
                     alpha=0.5, fontsize=7)
        if not outs:
            ax.text(computes[-1][1] * 1e6 / 2, 0.5, f"the output block leaves after k = {p.grid[2] - 1}, "
                    "beyond this frame", ha="center", va="center", fontsize=8, color="grey")
        end = max(computes[-1][1], *(o[1] for o in outs)) if outs else computes[-1][1]
        ax.set_xlim(0, end * us * 1.01)
        ax.set_ylim(0, 3.0)
        ax.set_yticks([0.5, 1.5, 2.5], ["copy out\nVMEM→HBM", "compute\n(MXU)", "copy in\nHBM→VMEM"],
                      fontsize=8)
        ax.set_xlabel("µs")
        ax.grid(True, axis="x", linewidth=0.3)
        ax.set_title(
            f"TPU v5e, bf16 {PIPE_SIZE}³, blocks ({b}, {b}, {b}): per step {p.flops_per_step / 1e6:,.0f} "
            f"MFLOP in {p.compute_s * us:.3f} µs, {p.bytes_per_step / 2**10:,.0f} KiB in "
            f"{p.copy_s * us:.3f} µs — {verdict}\n"
            f"{p.flops_per_step / p.bytes_per_step:.0f} FLOP/B vs ridge {p.ridge:.0f}; "
            f"VMEM {p.vmem_bytes / 2**20:.2f} MiB (2 × blocks + float32 accumulator); "
            f"whole call {p.time_s * 1e3:.2f} ms (pipeline_model)", fontsize=9)
    fig.suptitle("Double buffering: step k+1's blocks are copied into slot B while step k computes on "
                 "slot A (first copy: the bubble)", fontsize=10)
    draw.save(fig, path)


# Longer than a test should wait (two fresh processes that compile the training step):
# drawn by `python -m shared.figures`, left out of tests/test_figures.py.
SLOW = {"aot_stages.png"}

FIGURES = {
    "matmul_grid.png": draw_matmul_grid,
    "tile_intensity.png": draw_tile_intensity,
    "flash_tiles.png": draw_flash,
    "aot_stages.png": draw_aot,
    "pipeline.png": draw_pipeline,
}
