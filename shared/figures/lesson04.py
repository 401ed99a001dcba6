"""Lesson 04's figures: who holds what under each strategy, the FSDP gather step by step,
tensor parallelism's column/row split with its all-reduce, and the bytes each strategy sends
against the batch; and one training step of the stack as two streams, compute and
communication, with overlap off and on (shared.timeline, from the cost model and the H100's
datasheet numbers: nothing there runs or is timed).

The first four run on simulated CPU devices (shared.figures.draw.on_cpu_devices) and are exact: the
blocks come from NamedSharding of shared.sharding.STACK's specs, the bytes from
shared.sharding.stack_prediction and from the collectives XLA compiled into
shared.sharding.stack_forward (shared.collectives.compiled_collectives); nothing is timed.
"""

from __future__ import annotations

from pathlib import Path

from shared.figures import draw

B_BENCH, E_BENCH, L_BENCH = 2048, 512, 4  # `python -m shared.bench sharding`'s stack (README, section 2)


def _device_of(blocks: dict, device: int):
    """The (row range, column range) of the block a device holds."""
    return next(k for k, v in blocks.items() if device in v)


@draw.on_cpu_devices(8)
def strategy_layouts(path: Path) -> None:
    """For each strategy of shared.sharding.STACK: which device holds which block of x, of the
    even layers' W and of the odd layers' W, and the collectives the forward pass needs."""
    import jax
    from matplotlib.patches import Rectangle

    from shared import collectives, sharding

    B, E = 16, 8  # drawing sizes (each split divides them); the bytes use the bench's sizes
    colors = draw.device_colors(8)
    names = list(sharding.STACK)
    fig, ax = draw.figure(12, 1.55 * len(names) + 0.8)
    draw.blank(ax, (-2.6, 9.6), (len(names) * 2.0 + 0.2, -0.9))
    ax.set_ylim(len(names) * 2.0 + 0.1, -0.9)
    for col, head in ((0.25, "x\n[B, E]"), (2.35, "W, even layers\n[E, E]"),
                      (4.35, "W, odd layers\n[E, E]")):
        ax.text(col, -0.3, head, ha="center", fontsize=9.5, weight="bold")
    ax.text(5.6, -0.3, f"forward collectives per step\n(B = {B_BENCH}, E = {E_BENCH}, L = {L_BENCH}, "
            "float32)", ha="left", fontsize=9.5, weight="bold")
    for row, name in enumerate(names):
        mesh = sharding.stack_mesh(name, jax.devices()[:8])
        x_spec, (w0, w1), _ = sharding.STACK[name]
        top = row * 2.0
        ax.text(-0.4, top + 0.75, f"{name}\nmesh {mesh.shape['data']}×{mesh.shape['model']}",
                ha="right", va="center", fontsize=10)
        draw.draw_sharded(ax, (B, E), x_spec, mesh, colors, labels=False, origin=(0, top),
                          scale=(0.5 / E, 1.5 / B), replicated="grey", fontsize=7)
        for origin, spec in (((1.75, top + 0.15), w0), ((3.75, top + 0.15), w1)):
            draw.draw_sharded(ax, (E, E), spec, mesh, colors, labels=False, origin=origin,
                              scale=(1.2 / E, 1.2 / E), replicated="grey", fontsize=7)
        predicted = sharding.stack_prediction(name, B_BENCH, E_BENCH, L_BENCH, mesh)
        ax.text(5.6, top + 0.75, collectives.summarize(predicted) + "\n" + _about(name),
                ha="left", va="center", fontsize=8.5)
    for d in range(8):
        ax.add_patch(Rectangle((-2.4 + d * 1.2, len(names) * 2.0 - 0.25), 0.3, 0.25,
                               facecolor=colors[d]))
        ax.text(-2.0 + d * 1.2, len(names) * 2.0 - 0.12, f"device {d}", va="center", fontsize=8)
    ax.set_title("Who holds what in each strategy: shared.sharding.STACK's specs on 8 simulated devices\n"
                 "(a colour: the one device holding that block; grey: a copy on each device named)",
                 fontsize=10.5)
    draw.save(fig, path)


def _about(name: str) -> str:
    return {
        "dp": "x split by rows, W whole everywhere: nothing to send forward",
        "fsdp": "W split by rows too: gather each W just before its layer",
        "tp": "W by columns then by rows: partial sums, all-reduced per pair",
        "fsdp_tp": "FSDP over data on W's other dimension, TP pairs over model",
        "tp_gather": "x split by columns: gather x before every layer",
    }.get(name, "")


def _stage(ax, x0, y0, shape, held, colors, cell, *, owner=None, label="") -> None:
    """One device's copy of an array as row or column blocks: held {block: source device}."""
    from matplotlib.patches import Rectangle

    rows, cols = shape
    for (r0, r1, c0, c1), src in held.items():
        ax.add_patch(Rectangle((x0 + c0 * cell, y0 + r0 * cell), (c1 - c0) * cell, (r1 - r0) * cell,
                               facecolor=colors[src], alpha=0.85, edgecolor="white", lw=0.6))
    ax.add_patch(Rectangle((x0, y0), cols * cell, rows * cell, fill=False, edgecolor="#555", lw=0.8))
    if label:
        ax.text(x0 + cols * cell / 2, y0 - 0.08, label, ha="center", va="bottom", fontsize=7.5)


@draw.on_cpu_devices(8)
def fsdp_gather(path: Path) -> None:
    """FSDP on 4 devices, one layer: shards, all-gather W, multiply own rows, drop W again."""
    import jax

    from shared import sharding

    n, B, E = 4, 8, 8
    mesh = sharding.make_mesh({"data": n, "model": 1}, jax.devices()[:n])
    x_spec, (w_spec, _), (y_spec, _) = sharding.STACK["fsdp"]
    xb = draw.sharded_blocks((B, E), x_spec, mesh)
    wb = draw.sharded_blocks((E, E), w_spec, mesh)
    yb = draw.sharded_blocks((B, E), y_spec, mesh)
    flat = lambda blocks, d: {(*_device_of(blocks, d)[0], *_device_of(blocks, d)[1]): d}
    every_w = {(*k[0], *k[1]): v[0] for k, v in wb.items()}  # all of W, coloured by its owner
    colors = draw.device_colors(n)
    cell = 0.09
    steps = ["1. what each device keeps:\nits rows of x and of W_l",
             "2. all-gather W_l:\nevery device gets all rows",
             "3. y = relu(x_own @ W_l):\nits own rows of y",
             "4. drop the gathered W_l;\nkeep the shard, next layer"]
    fig, ax = draw.figure(13, 6.2)
    width = 3.4
    draw.blank(ax, (-0.9, width * len(steps)), (n * 1.15 + 0.1, -0.75))
    for s, title in enumerate(steps):
        ax.text(s * width + 1.1, -0.45, title, ha="center", va="center", fontsize=9.5, weight="bold")
    for d in range(n):
        y0 = d * 1.15 + 0.1
        ax.text(-0.2, y0 + 0.36, f"device {d}", ha="right", va="center", fontsize=9.5)
        own_x, own_w, own_y = flat(xb, d), flat(wb, d), flat(yb, d)
        for s in range(len(steps)):
            x0 = s * width
            _stage(ax, x0, y0, (B, E), own_x, colors, cell, label="x [B, E]")
            w = every_w if s in (1, 2) else own_w
            _stage(ax, x0 + 1.0, y0, (E, E), w, colors, cell, label="W_l [E, E]")
            if s >= 2:
                _stage(ax, x0 + 2.0, y0, (B, E), own_y, colors, cell, label="y [B, E]")
    predicted = sharding.stack_prediction("fsdp", B_BENCH, E_BENCH, L_BENCH,
                                          sharding.make_mesh({"data": 8, "model": 1}, jax.devices()[:8]))
    per_layer = predicted[0].bytes_sent / predicted[0].count
    ax.set_title(f"FSDP, one layer on {n} devices (shards from shared.sharding.STACK['fsdp']): each "
                 f"device sends E²·b·(n−1)/n per layer,\n{per_layer / 1e6:.2f} MB for E = {E_BENCH} "
                 f"float32 on 8 devices, whatever the batch; colours: the device each block comes from",
                 fontsize=10)
    draw.save(fig, path)


@draw.on_cpu_devices(8)
def tp_allreduce(path: Path) -> None:
    """A Megatron pair on 4 devices: W0 by columns, W1 by rows, then an all-reduce of y."""
    import jax

    from shared import sharding

    n, B, E = 4, 8, 8
    mesh = sharding.make_mesh({"data": 1, "model": n}, jax.devices()[:n])
    x_spec, (w0_spec, w1_spec), (h_spec, y_spec) = sharding.STACK["tp"]
    whole = {(0, B, 0, E)}
    # x and the pair's output y are whole on every device; W0, h and W1 are split
    assert {(*k[0], *k[1]) for k in draw.sharded_blocks((B, E), x_spec, mesh)} == whole
    assert {(*k[0], *k[1]) for k in draw.sharded_blocks((B, E), y_spec, mesh)} == whole
    split = [draw.sharded_blocks(shape, spec, mesh)
             for shape, spec in (((E, E), w0_spec), ((B, E), h_spec), ((E, E), w1_spec))]
    colors = draw.device_colors(n)
    grey = ["#bbbbbb"]
    cell = 0.09
    fig, ax = draw.figure(13.5, 6.2)
    width = 2.3
    heads = ["x [B, E]\n(whole on every device)", "W0 [E, E]:\nits columns",
             "h = relu(x @ W0)\nits columns of h", "W1 [E, E]:\nits rows",
             "h @ W1: a partial\nsum of all of y", "all-reduce: y = sum of\nthe 4 parts, everywhere"]
    draw.blank(ax, (-0.9, width * len(heads)), (n * 1.15 + 0.1, -0.8))
    for s, title in enumerate(heads):
        ax.text(s * width + 0.36, -0.45, title, ha="center", va="center", fontsize=9.5, weight="bold")
    quarter = E // n
    parts = {(0, B, c, c + quarter): c // quarter for c in range(0, E, quarter)}  # Σ of every device's
    for d in range(n):
        y0 = d * 1.15 + 0.1
        ax.text(-0.2, y0 + 0.36, f"device {d}", ha="right", va="center", fontsize=9.5)
        own = [{(*k[0], *k[1]): d for k, v in blocks.items() if d in v} for blocks in split]
        # (blocks this device holds -> colour index, palette, text over the array)
        stages = [({(0, B, 0, E): 0}, grey, ""), (own[0], colors, ""), (own[1], colors, ""),
                  (own[2], colors, ""), ({(0, B, 0, E): d}, colors, "part"), (parts, colors, "Σ")]
        for s, (held, palette, text) in enumerate(stages):
            x0 = s * width
            _stage(ax, x0, y0, (B, E), held, palette, cell)
            if text:
                ax.text(x0 + E * cell / 2, y0 + B * cell / 2, text, ha="center", va="center",
                        fontsize=8 if text == "part" else 12, color="white", weight="bold")
            if s < len(stages) - 1:
                reduce = s == len(stages) - 2
                ax.annotate("", (x0 + width - 0.15, y0 + 0.36), (x0 + E * cell + 0.15, y0 + 0.36),
                            arrowprops=dict(arrowstyle="-|>", color="#d62728" if reduce else "#999",
                                            lw=2 if reduce else 1))
    mesh8 = sharding.make_mesh({"data": 1, "model": 8}, jax.devices()[:8])
    predicted = sharding.stack_prediction("tp", B_BENCH, E_BENCH, L_BENCH, mesh8)[0]
    ax.set_title(f"Tensor parallelism, one Megatron pair on {n} devices (shared.sharding.STACK['tp']): "
                 "no weight moves; the all-reduce (red) sends 2·B·E·b·(n−1)/n\nper pair: "
                 f"{predicted.bytes_sent / predicted.count / 1e6:.1f} MB for B = {B_BENCH}, E = {E_BENCH} "
                 "float32 on 8 devices, proportional to the batch", fontsize=10)
    draw.save(fig, path)


@draw.on_cpu_devices(8)
def bytes_vs_batch(path: Path) -> None:
    """Bytes each device sends per layer against the batch: FSDP flat, TP growing with B."""
    import jax
    import numpy as np

    from shared import collectives, sharding

    devices = jax.devices()[:8]
    E, L = E_BENCH, L_BENCH
    grid = np.geomspace(64, 8192, 40)
    measured = [256, 1024, 4096]
    fig, ax = draw.figure(8.5, 5)
    for name, marker in (("fsdp", "o"), ("tp", "s"), ("fsdp_tp", "^"), ("tp_gather", "D")):
        mesh = sharding.stack_mesh(name, devices)
        model = [sum(c.bytes_sent for c in sharding.stack_prediction(name, int(b), E, L, mesh)) / L
                 for b in grid]
        line, = ax.plot(grid, np.array(model) / 1e6, ls="--" if name == "tp_gather" else "-",
                        lw=2.5 if name == "tp" else 1.5,
                        label=f"{name} (mesh {mesh.shape['data']}×{mesh.shape['model']}): cost model"
                        + (" (= tp's bytes)" if name == "tp_gather" else ""))
        for B in measured:
            x, ws = sharding.stack_init(jax.random.key(0), B, E, L, name, mesh)
            f = jax.jit(lambda x, ws, s=name: sharding.stack_forward(x, ws, s, mesh))
            sent = sum(c.bytes_sent for c in collectives.compiled_collectives(f, x, ws)) / L
            ax.plot([B], [sent / 1e6], marker, color=line.get_color(), ms=8, mfc="none", mew=1.6,
                    label="compiled HLO" if name == "fsdp" and B == measured[0] else None)
    ax.axvline(E, color="gray", ls=":", lw=1)
    ax.text(E * 1.05, 0.02, f"B = E = {E}", fontsize=8.5,
            color="#555", transform=ax.get_xaxis_transform())
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ticks = [64, 256, 1024, 4096, 8192]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("tokens in the batch B (log scale)")
    ax.set_ylabel("MB each device sends per layer (forward)")
    ax.set_title(f"FSDP sends E²·b·(n−1)/n whatever B; TP sends B·E·b·(n−1)/n: FSDP wins when B > E\n"
                 f"(E = {E}, float32, 8 simulated devices; lines shared.sharding.stack_prediction, "
                 "markers the compiled programs)", fontsize=10)
    ax.grid(True, which="major", lw=0.3)
    ax.legend(fontsize=8, loc="upper left")
    draw.save(fig, path)


# ---- overlap you can see: shared.timeline's simulated step ----

CHIP = "H100"  # shared.hardware.CHIPS row whose datasheet peak and NVLink the timelines use
E_NODE, L_NODE, N_NODE = 8192, 4, 8  # a wide layer, 4 layers, one 8-GPU node
_KIND_COLORS = {"F": "#4c72b0", "B": "#55a868", "G": "#dd8452", "R": "#c44e52", "A": "#8172b3"}
_KIND_NAMES = {"F": "forward matmul", "B": "backward matmuls", "G": "all-gather W",
               "R": "reduce-scatter dW", "A": "all-reduce"}


def _kind(label: str) -> str:
    return "A" if label.startswith("A") else label[0]


def _gantt(ax, rows: list[tuple[str, object]]) -> None:
    """Two lanes (compute, comm) per simulated step, bars coloured by kind, labelled if wide."""
    from shared import timeline

    end = max(st.time for _, st in rows) * 1e3
    ticks, names = [], []
    for r, (name, st) in enumerate(rows):
        for lane, stream in enumerate((timeline.COMPUTE, timeline.COMM)):
            y = r * 3 + lane
            ticks.append(y)
            names.append(f"{name}: {stream}")
            for e in st.events:
                if e.stream != stream:
                    continue
                w = (e.end - e.start) * 1e3
                ax.barh(y, w, left=e.start * 1e3, height=0.8, color=_KIND_COLORS[_kind(e.label)],
                        edgecolor="white", lw=0.5)
                if w > end / 45:
                    ax.text(e.start * 1e3 + w / 2, y, e.label.split(".")[0], ha="center", va="center",
                            fontsize=6.5, color="white")
        ax.plot([st.time * 1e3] * 2, [r * 3 - 0.5, r * 3 + 1.5], color="k", lw=1.2)
        ax.text(st.time * 1e3 + end * 0.01, r * 3 + 0.5,
                f"{st.time * 1e3:.2f} ms\nexposed {st.exposed * 1e3:.2f}", va="center", fontsize=8)
    ax.set_yticks(ticks, names, fontsize=8.5)
    ax.set_ylim(len(rows) * 3 - 1.2, -0.8)
    ax.set_xlim(0, end * 1.16)
    ax.set_xlabel("time in the step (ms)")
    kinds = sorted({_kind(e.label) for _, st in rows for e in st.events}, key=list(_KIND_COLORS).index)
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=_KIND_COLORS[k], label=_KIND_NAMES[k]) for k in kinds],
              fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=len(kinds))
    ax.grid(True, axis="x", lw=0.3)


def _chip_words() -> str:
    from shared import hardware

    spec = hardware.CHIPS[CHIP]
    return (f"{spec.name} datasheet numbers ({spec.flops('bfloat16') / 1e12:.0f} TFLOP/s bf16, "
            f"{spec.link_bw / 1e9:.0f} GB/s NVLink one way)")


def overlap_fsdp(path: Path) -> None:
    """FSDP's training step with overlap off and on, above section 3's threshold."""
    from shared import hardware, network, timeline

    spec = hardware.CHIPS[CHIP]
    tokens = 4096
    threshold = network.fsdp_tokens(spec.flops("bfloat16"), spec.link_bw, 2, N_NODE)
    stack = timeline.Stack.on(CHIP, tokens * N_NODE, E_NODE, L_NODE, N_NODE)
    rows = [(f"overlap {m}", timeline.step("fsdp", stack, m)) for m in ("off", "on")]
    fig, ax = draw.figure(13, 4.2)
    _gantt(ax, rows)
    ax.set_title(f"FSDP, one training step of {L_NODE} layers [B/n = {tokens}, E = {E_NODE}] @ [E, E] on "
                 f"{N_NODE} GPUs, bf16: above the threshold B/n ≥ {threshold:,.0f}, only the first gather "
                 "and the last reduce-scatter stay exposed\n"
                 f"computed from the course's cost model (shared.timeline), not measured: {_chip_words()}",
                 fontsize=9.5)
    draw.save(fig, path)


def overlap_tp(path: Path) -> None:
    """TP's training step: off, on (the same: each matmul needs the all-reduce before it), split."""
    from shared import timeline

    tokens = 4096
    stack = timeline.Stack.on(CHIP, tokens * N_NODE, E_NODE, L_NODE, N_NODE)
    rows = [(f"overlap {m}", timeline.step("tp", stack, m)) for m in ("off", "on", "split")]
    fig, ax = draw.figure(13, 5.6)
    _gantt(ax, rows)
    ax.set_title(f"TP (Megatron pairs), one training step of {L_NODE} layers [B = {tokens * N_NODE}, "
                 f"E = {E_NODE}] on {N_NODE} GPUs, bf16: each all-reduce needs the matmul before it and "
                 f"the next matmul needs it,\nso 'on' changes nothing; split into {N_NODE} pieces along "
                 "the batch, a piece's all-reduce runs while the next piece computes. Computed from the "
                 f"cost model (shared.timeline),\nnot measured: {_chip_words()}", fontsize=9.5)
    draw.save(fig, path)


def overlap_vs_tokens(path: Path) -> None:
    """FSDP's step time against tokens per device, overlap off and on, and section 3's threshold."""
    import numpy as np

    from shared import hardware, network, timeline

    spec = hardware.CHIPS[CHIP]
    threshold = network.fsdp_tokens(spec.flops("bfloat16"), spec.link_bw, 2, N_NODE)
    grid = np.geomspace(128, 32768, 60)
    steps = {m: [timeline.step("fsdp", timeline.Stack.on(CHIP, t * N_NODE, E_NODE, L_NODE, N_NODE), m)
                 for t in grid] for m in ("off", "on")}
    per_token = lambda values: np.array(values) / grid * 1e6  # µs per token of one device
    fig, ax = draw.figure(8.5, 5)
    ax.plot(grid, per_token([s.time for s in steps["off"]]), lw=2, label="overlap off: compute + comm")
    ax.plot(grid, per_token([s.time for s in steps["on"]]), lw=2, label="overlap on (prefetch one layer ahead)")
    ax.plot(grid, per_token([s.compute for s in steps["on"]]), "k--", lw=1, label="compute alone")
    ax.plot(grid, per_token([s.comm for s in steps["on"]]), ":", color="#c44e52", lw=1.5,
            label="communication alone")
    ax.axvline(threshold, color="gray", lw=1)
    ax.text(threshold * 1.05, 0.93, f"B/n = (peak/link)·(b/2)·(n−1)/n\n= {threshold:,.0f} (section 3)",
            fontsize=8.5, transform=ax.get_xaxis_transform(), va="top")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("tokens per device B/n (log scale)")
    ax.set_ylabel("µs of step time per token of one device")
    ax.set_title(f"FSDP, {L_NODE} layers of E = {E_NODE} on {N_NODE} GPUs, bf16, one training step: "
                 "below the threshold the step is the\ncommunication, above it the compute plus the first "
                 f"gather and the last reduce-scatter. Computed from the cost model\n(shared.timeline), "
                 f"not measured: {_chip_words()}", fontsize=9.5)
    ax.grid(True, which="major", lw=0.3)
    ax.legend(fontsize=8.5)
    draw.save(fig, path)


FIGURES = {
    "strategy_layouts.png": strategy_layouts,
    "fsdp_gather.png": fsdp_gather,
    "tp_allreduce.png": tp_allreduce,
    "bytes_vs_batch.png": bytes_vs_batch,
    "overlap_fsdp.png": overlap_fsdp,
    "overlap_tp.png": overlap_tp,
    "overlap_vs_tokens.png": overlap_vs_tokens,
}
SLOW = {"bytes_vs_batch.png"}  # compiles 12 sharded programs, about 10 s
