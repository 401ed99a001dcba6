"""Lesson 07's figures: documents packed into rows with segment ids and positions
(shared.data.Rows), padding's and packing's waste on the standard-library corpus
(shared.data.padding_waste), where a short real run's time goes (shared.goodput, measured),
and a checkpoint/resume timeline whose batches come from shared.pipeline.Loader.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from shared.figures import draw

DOC_LENGTHS = (9, 4, 15, 6, 11)  # a few short documents: the picture's own example
ROW = 12  # S: inputs per row (a row holds S + 1 tokens)


def _figure(*args, **kwargs):
    fig, axes = draw.figure(*args, **kwargs)
    fig.set_layout_engine("constrained")
    return fig, axes


def _doc_colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["Pastel1"]
    return [cmap(i % cmap.N) for i in range(n)]


def draw_packing(path: Path) -> None:
    from shared import data

    docs = [np.full(n, i + 1, np.uint8) for i, n in enumerate(DOC_LENGTHS)]  # token = document number
    stream = data.Stream.of(docs)
    rows = data.Rows(stream, ROW)
    packed = rows.get(np.arange(len(rows)))
    colors = _doc_colors(len(docs))
    fig, (top, bottom) = _figure(10, 6.2, 2, 1, height_ratios=[len(rows), 7])

    # Packed: the row's inputs, coloured by document; text = segment id / position.
    n, S = packed["inputs"].shape
    cell = [["white" if packed["segment_ids"][r, c] == 0 else colors[packed["inputs"][r, c] - 1]
             for c in range(S)] for r in range(n)]
    text = [[("pad" if packed["segment_ids"][r, c] == 0 else
              f"d{packed['inputs'][r, c]}\ns{packed['segment_ids'][r, c]} p{packed['positions'][r, c]}"
              + ("" if packed["weights"][r, c] else "\nno loss"))
             for c in range(S)] for r in range(n)]
    draw.grid_cells(top, np.zeros((n, S)), colors=cell, text=text, fontsize=6.5)
    top.set_yticks(range(n), [f"row {r}" for r in range(n)])
    top.set_xticks(range(S), range(S), fontsize=7)
    top.set_xlabel("column (input token of the row)")
    waste_packed = 1 - packed["weights"].sum() / packed["weights"].size
    top.set_title(f"Packed: {len(DOC_LENGTHS)} documents of {', '.join(map(str, DOC_LENGTHS))} tokens "
                  f"in rows of S + 1 = {ROW + 1} (shared.data.Rows): {len(rows)} rows, "
                  f"{waste_packed:.0%} of targets without loss\n"
                  "d = document, s = segment id (restarts in each row), p = position (restarts with "
                  "each document); 'no loss': the next token belongs to another document",
                  fontsize=9)

    # Padded: each document starts a new row (the rows padding_waste counts).
    R = ROW + 1
    lines = []
    for i, length in enumerate(DOC_LENGTHS):
        for start in range(0, length, R):
            piece = min(R, length - start)
            lines.append([i + 1] * piece + [0] * (R - piece))
    grid = np.array(lines)[:, :ROW]
    cell = [[colors[v - 1] if v else "lightgrey" for v in row] for row in grid]
    text = [["" if v else "pad" for v in row] for row in grid]
    draw.grid_cells(bottom, grid, colors=cell, text=text, fontsize=6.5)
    bottom.set_yticks(range(len(grid)), [f"row {r}" for r in range(len(grid))], fontsize=7)
    bottom.set_xticks(range(S), range(S), fontsize=7)
    padded, packed_waste = data.padding_waste(list(DOC_LENGTHS), ROW)
    bottom.set_title(f"Padded: every document starts a row: {len(grid)} rows, {padded:.0%} of targets "
                     f"wasted (packed: {packed_waste:.0%}, shared.data.padding_waste)", fontsize=9)
    draw.save(fig, path)


SEQ_LENS = (64, 128, 256, 512, 1024, 2048, 4096, 8192)


def draw_waste(path: Path) -> None:
    from shared import data

    lengths = [len(d) for d in data.load_documents()]
    waste = np.array([data.padding_waste(lengths, s) for s in SEQ_LENS])  # [len, (padded, packed)]
    fig, ax = _figure(7.5, 4.3)
    ax.plot(SEQ_LENS, 100 * waste[:, 0], "o-", color="tab:red", label="padded: each document starts a row")
    ax.plot(SEQ_LENS, 100 * waste[:, 1], "o-", color="tab:green", label="packed (shared.data.Rows)")
    ax.plot(SEQ_LENS, [100 * s / 2 / np.mean(lengths) for s in SEQ_LENS], ":", color="grey",
            label="half a row per document: S / 2 / mean length")
    for s, w in zip(SEQ_LENS, waste[:, 0]):
        ax.annotate(f"{100 * w:.1f}%", (s, 100 * w), textcoords="offset points", xytext=(-8, 6), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_xticks(SEQ_LENS, [str(s) for s in SEQ_LENS])
    ax.set_xlabel("row length S (tokens)")
    ax.set_ylabel("targets that train on nothing (%)")
    ax.set_title(f"Padding vs packing on the standard-library corpus\n{len(lengths)} files, mean "
                 f"{np.mean(lengths):,.0f} tokens, median {np.median(lengths):,.0f} "
                 "(shared.data.padding_waste)", fontsize=10)
    ax.grid(True, linewidth=0.3)
    ax.legend(fontsize=8)
    draw.save(fig, path)


GOODPUT_STEPS = 16
EVERY = 500  # steps between checkpoints (and evaluations) in the extrapolation


def goodput_run(steps: int = GOODPUT_STEPS) -> dict[str, float]:
    """Seconds per shared.goodput category of a real run of the tiny preset: the standard
    library corpus, a checkpoint half way and at the end, one evaluation of 2 batches."""
    from shared import config as cfg
    from shared import train

    p = cfg.preset("tiny")
    tc = dataclasses.replace(p.train, steps=steps, eval_every=steps, eval_batches=2,
                             checkpoint_every=steps // 2, warmup_steps=2)
    with tempfile.TemporaryDirectory() as folder:
        return train.train(p.model, tc, Path(folder) / "run", progress=False).goodput


COLORS = {"step": "tab:green", "startup": "tab:grey", "compile": "tab:orange", "data": "tab:cyan",
          "checkpoint": "tab:purple", "eval": "tab:blue"}


def draw_goodput(path: Path) -> None:
    parts = goodput_run()
    total = sum(parts.values())
    fig, (top, bottom) = _figure(9, 5.2, 2, 1, height_ratios=[1, 2.2])
    left = 0.0
    for name in ("startup", "compile", "data", "step", "checkpoint", "eval"):
        seconds = parts[name]
        top.barh(0, seconds, left=left, color=COLORS[name], edgecolor="black", label=name)
        if seconds / total > 0.04:
            top.text(left + seconds / 2, 0, f"{name}\n{seconds:.1f} s", ha="center", va="center", fontsize=8)
        left += seconds
    top.set_yticks([])
    top.set_xlabel("seconds (categories summed over the run, drawn in the order they first occur)")
    top.set_title(f"Goodput of a {GOODPUT_STEPS}-step run of the tiny preset: "
                  f"{parts['step'] / total:.0%} of {total:.1f} s in steps\n"
                  f"measured on {draw.machine()} (shared.goodput; checkpoints at steps "
                  f"{GOODPUT_STEPS // 2} and {GOODPUT_STEPS}, one evaluation)", fontsize=10)
    top.legend(ncol=6, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.55))

    # The same costs on longer runs: startup and compile once, steps and data per step,
    # a checkpoint (this run's mean) and an evaluation every EVERY steps.
    per_step = (parts["step"] + parts["data"]) / GOODPUT_STEPS
    fixed = parts["startup"] + parts["compile"]
    periodic = parts["checkpoint"] / 2 + parts["eval"]
    n = np.logspace(1, 5, 60)
    wall = fixed + n * per_step + n / EVERY * periodic
    bottom.plot(n, 100 * parts["step"] / GOODPUT_STEPS * n / wall, color="tab:green",
                label=f"goodput (a checkpoint and an evaluation every {EVERY} steps)")
    bottom.plot(n, 100 * fixed / wall, ":", color="tab:grey", label="startup + compile")
    bottom.plot(n, 100 * n / EVERY * periodic / wall, "--", color="tab:purple",
                label="checkpoints + evaluations")
    bottom.axvline(GOODPUT_STEPS, color="black", linewidth=0.8)
    bottom.text(GOODPUT_STEPS * 1.1, 50, "this run", fontsize=8)
    bottom.set_xscale("log")
    bottom.set_ylim(0, 100)
    bottom.set_xlabel("steps in the run")
    bottom.set_ylabel("% of wall time")
    bottom.set_title("Extrapolated from this run's seconds: fixed costs fade, per-step costs stay",
                     fontsize=9)
    bottom.grid(True, which="both", linewidth=0.3)
    bottom.legend(fontsize=7, loc="center right")
    draw.save(fig, path)


def draw_resume(path: Path) -> None:
    """Which rows each step trains on, for a run stopped after step 6 with checkpoints every 4:
    the loader's state is one integer saved beside each checkpoint, so the resumed run
    redoes steps 5-6 on exactly the same rows."""
    from shared import config as cfg
    from shared import data, pipeline

    tc = dataclasses.replace(cfg.preset("tiny").train, steps=8, checkpoint_every=4, batch_size=2)
    rng = np.random.default_rng(0)
    stream = data.Stream.of([np.zeros(int(n), np.uint8) for n in rng.integers(20, 200, 40)])
    loader = pipeline.Loader(data.Rows(stream, 16), tc.batch_size, tc.seed)
    crash = 6
    saved = max(s for s in range(0, crash + 1, tc.checkpoint_every))
    runs = [("uninterrupted run", range(1, tc.steps + 1), None),
            (f"stopped after step {crash}", range(1, crash + 1), crash),
            (f"resumed from checkpoint {saved}", range(saved + 1, tc.steps + 1), None)]
    fig, ax = _figure(10, 3.9)
    draw.blank(ax, (-0.3, tc.steps + 2.6), (-0.3, 3.1))
    for y, (name, steps, stop) in zip((2.4, 1.4, 0.4), runs):
        ax.text(-0.2, y + 0.3, name, ha="right", va="center", fontsize=9)
        for s in steps:
            lost = name.startswith("stopped") and s > saved
            rows = ",".join(map(str, loader.indices(s - 1)))  # step s trains batch number s - 1
            draw.box(ax, s - 1, y, 0.92, 0.6, f"step {s}\nrows {rows}",
                     color="mistyrose" if lost else "honeydew", fontsize=6.5)
            if s % tc.checkpoint_every == 0 and not lost:
                ax.plot([s - 0.04], [y + 0.3], marker="v", color="tab:purple", markersize=9)
        if stop:
            ax.text(stop - 0.02, y + 0.3, " x  stopped", va="center", fontsize=9, color="tab:red")
    ax.annotate("", xy=(saved, 1.0), xytext=(saved - 0.04, 1.4),
                arrowprops=dict(arrowstyle="-|>", color="tab:purple"))
    ax.text(saved + 0.05, 1.15, f"restore: parameters, AdamW state, step {saved},\n"
            f"loader position {saved} (seed {tc.seed})", fontsize=7, color="tab:purple", va="center")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax.legend(handles=[Line2D([], [], marker="v", color="tab:purple", linestyle="",
                              label=f"checkpoint (every {tc.checkpoint_every} steps)"),
                       Patch(color="mistyrose", label="work lost: redone after the restart")],
              fontsize=8, loc="lower right", ncol=2, frameon=False)
    ax.set_title("Checkpoint and exact resume: each step's rows come from (seed, batch number) alone\n"
                 "(shared.pipeline.Loader.indices; batch of 2 rows, so the resumed steps see the "
                 "same rows)", fontsize=10)
    draw.save(fig, path)


# Longer than a test should wait (the whole corpus packed eight times; a real training run):
# drawn by `python -m shared.figures`, left out of tests/test_figures.py.
SLOW = {"padding_waste.png", "goodput.png"}

FIGURES = {
    "packing.png": draw_packing,
    "padding_waste.png": draw_waste,
    "goodput.png": draw_goodput,
    "checkpoint_resume.png": draw_resume,
}
