"""Lesson 01's figures: the block's data flow with its shapes, the causal mask and attention
weights, the FLOPs per token of each preset, and the loss curve of a short tiny run.

Shapes come from jax.eval_shape of the course's model on the `tiny` preset (nothing runs),
FLOPs from shared.model's counts, the attention weights from shared.attention.reference,
and the loss curve from shared.train's step on the course's corpus (measured: ~15 s).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from shared.figures import draw

BATCH, STEPS = 8, 150  # the notebook's CPU run: 150 steps of 8 sequences


def _tiny():
    from shared import config as cfg

    return cfg.preset("tiny").model


def _shapes(mc, B: int) -> dict:
    """Every activation's and weight's shape in one tiny forward pass, from jax.eval_shape."""
    import jax
    import jax.numpy as jnp

    from shared import model
    from shared.attention import attention

    S = mc.seq_len
    params = jax.eval_shape(lambda: model.init(mc, jax.random.key(0)))
    layer = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), params["blocks"])
    tokens = jax.ShapeDtypeStruct((B, S), jnp.int32)
    positions = jax.ShapeDtypeStruct((B, S), jnp.int32)
    x = jax.eval_shape(lambda p, t: p["embed"][t], params, tokens)
    q = jax.eval_shape(lambda x, w: model.matmul("BSE,EHD->BSHD", x, w), x, layer["wq"])
    k = jax.eval_shape(lambda x, w: model.matmul("BSE,EKD->BSKD", x, w), x, layer["wk"])
    rq = jax.eval_shape(lambda q, p: model.rope(q, p, mc.rope_base), q, positions)
    att = jax.eval_shape(lambda q, k, v: attention(q, k, v), rq, k, k)
    proj = jax.eval_shape(lambda o, w: model.matmul("BSHD,HDE->BSE", o, w), att, layer["wo"])
    up = jax.eval_shape(lambda x, w: model.matmul("BSE,EF->BSF", x, w), x, layer["w_up"])
    logits = jax.eval_shape(lambda p, t: model.forward(p, t, mc), params, tokens)
    loss = jax.eval_shape(lambda p, t: model.loss_fn(p, t, t, mc), params, tokens)
    return {"params": params, "layer": layer, "tokens": tokens, "x": x, "q": q, "k": k,
            "att": att, "proj": proj, "up": up, "logits": logits, "loss": loss}


def _fmt(a) -> str:
    return "[" + ", ".join(str(d) for d in a.shape) + "]" + ("" if a.dtype.kind == "f" else f" {a.dtype}")


def block_dataflow(path: Path) -> None:
    """The forward pass as boxes, each arrow labelled with the tensor's shape (tiny, B = 8)."""
    from matplotlib.patches import FancyBboxPatch

    mc = _tiny()
    s = _shapes(mc, BATCH)
    w, p = s["layer"], s["params"]
    # (operation, weights it reads, shape of its output); "+" rows add the residual.
    rows = [
        ("tokens", "", _fmt(s["tokens"])),
        ("embed[tokens]  (lookup)", f"embed {_fmt(p['embed'])}", _fmt(s["x"])),
        ("RMSNorm", f"attn_norm {_fmt(w['attn_norm'])}", _fmt(s["x"])),
        ("q = x·wq,  k = x·wk,  v = x·wv", f"wq {_fmt(w['wq'])}; wk, wv {_fmt(w['wk'])}",
         f"q {_fmt(s['q'])}, k, v {_fmt(s['k'])}"),
        ("RoPE on q and k", "", "same shapes"),
        ("softmax(q·kᵀ/√D, causal)·v", "", _fmt(s["att"])),
        ("·wo", f"wo {_fmt(w['wo'])}", _fmt(s["proj"])),
        ("+", "", _fmt(s["x"])),
        ("RMSNorm", f"mlp_norm {_fmt(w['mlp_norm'])}", _fmt(s["x"])),
        ("gelu(x·w_up)", f"w_up {_fmt(w['w_up'])}", _fmt(s["up"])),
        ("·w_down", f"w_down {_fmt(w['w_down'])}", _fmt(s["x"])),
        ("+", "", _fmt(s["x"])),
        ("final RMSNorm", f"final_norm {_fmt(p['final_norm'])}", _fmt(s["x"])),
        ("·unembed", f"unembed {_fmt(p['unembed'])}", f"logits {_fmt(s['logits'])}"),
        ("cross-entropy vs targets", "", "loss [] (a scalar, nats)"),
    ]
    n = len(rows)
    fig, ax = draw.figure(9, 0.62 * n + 1)
    ax.set_xlim(-3.0, 7.0)
    ax.set_ylim(-n + 0.2, 0.9)
    ax.axis("off")
    ys = [-float(i) for i in range(n)]
    for (op, weights, out), y in zip(rows, ys):
        plus = op == "+"
        width = 0.5 if plus else 3.4
        colour = "#fde9c9" if plus else ("#dbe9f6" if op != "tokens" else "#e8e8e8")
        ax.add_patch(FancyBboxPatch((-width / 2, y - 0.27), width, 0.54,
                                    boxstyle="round,pad=0.02,rounding_size=0.12",
                                    facecolor=colour, edgecolor="#4a6a8a"))
        ax.text(0, y, op, ha="center", va="center", fontsize=10)
        if weights:
            ax.text(1.85, y, weights, ha="left", va="center", fontsize=8.5, color="#7a3d00")
    for i in range(n - 1):
        y0, y1 = ys[i] - 0.29, ys[i + 1] + 0.29
        ax.annotate("", (0, y1), (0, y0), arrowprops=dict(arrowstyle="-|>", color="#333"))
        ax.text(0.12, (y0 + y1) / 2, rows[i][2], ha="left", va="center", fontsize=8.5,
                color="#1a5e1a", family="monospace")
    ax.text(1.85, ys[-1], rows[-1][2], ha="left", va="center", fontsize=8.5, color="#1a5e1a",
            family="monospace")
    # the residual connections: x skips each sub-block and is added back at "+"
    for start, plus in ((1, 7), (7, 11)):
        ya, yb = ys[start] - 0.5, ys[plus]
        ax.annotate("", (-0.27, yb), (-2.1, yb), arrowprops=dict(arrowstyle="-|>", color="#b36b00"))
        ax.plot([0, -2.1, -2.1], [ya, ya, yb], color="#b36b00", lw=1.2)
        ax.text(-2.2, (ya + yb) / 2, "residual", rotation=90, ha="right", va="center",
                fontsize=8.5, color="#b36b00")
    # the block, repeated L times under lax.scan
    top, bottom = ys[1] - 0.33, ys[11] - 0.33
    ax.add_patch(FancyBboxPatch((-2.7, bottom), 9.6, top - bottom, boxstyle="round,pad=0.02",
                                facecolor="none", edgecolor="#888", linestyle="--"))
    ax.text(6.8, top - 0.15, f"one block,\n× L = {mc.n_layers}\n(lax.scan)", ha="right", va="top",
            fontsize=9.5, color="#555")
    ax.set_title(f"The `tiny` model's forward pass: B = {BATCH}, S = {mc.seq_len}, E = {mc.d_model}, "
                 f"H = {mc.n_heads}, D = {mc.head_dim}, F = {mc.d_ff}, V = {mc.vocab_size}\n"
                 "(shapes from jax.eval_shape of shared.model; weights in brown, activations in green)",
                 fontsize=10)
    draw.save(fig, path)


def attention_mask(path: Path) -> None:
    """The causal mask, and one head's attention weights under it (random q and k)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from shared import attention

    S = D = 16  # D = S: v below is the [T, T] identity
    allowed = np.asarray(attention.mask(S, S, causal=True, segment_ids=None)[0])  # [S, T]
    kq, kk = jax.random.split(jax.random.key(0))
    q = jax.random.normal(kq, (1, S, 1, D))
    k = jax.random.normal(kk, (1, S, 1, D))
    # With v the identity (v_t = e_t), row s of the output is query s's weights over the keys.
    v = jnp.eye(S)[None, :, None, :]  # [1, T, 1, D]
    weights = np.asarray(attention.reference(q, k, v, causal=True))[0, :, 0, :]  # [S, T]
    fig, (a, b) = draw.figure(10, 4.6, 1, 2)
    a.imshow(allowed, cmap="Blues", vmin=0, vmax=1.4)
    a.set_title("causal mask: query s may read key t ≤ s\n(shared.attention.mask)", fontsize=10)
    im = b.imshow(np.where(allowed, weights, np.nan), cmap="viridis", vmin=0)
    b.set_title("softmax(q·kᵀ/√D) under the mask, one head\n"
                "(shared.attention.reference, random q, k; each row sums to 1)", fontsize=10)
    fig.colorbar(im, ax=b, shrink=0.8, label="attention weight")
    for ax in (a, b):
        ax.set_xlabel("key position t")
        ax.set_ylabel("query position s")
        ax.set_xticks(range(0, S, 3))
        ax.set_yticks(range(0, S, 3))
    a.text(S * 0.72, S * 0.25, "masked\n(−∞ before\nthe softmax)", ha="center", va="center", fontsize=9)
    fig.suptitle(f"Causal attention, S = T = {S}, D = {D}", fontsize=11, y=1.04)
    draw.save(fig, path)


def flops_per_token(path: Path) -> None:
    """Training FLOPs per token of each preset: 6N (the weights) and 12·L·S·E (attention)."""
    import numpy as np

    from shared import config as cfg
    from shared import model

    names = list(cfg.PRESETS)
    six_n = np.array([6 * model.matmul_param_count(cfg.preset(n).model) for n in names], float)
    total = np.array([model.train_flops_per_token(cfg.preset(n).model) for n in names], float)
    attn = total - six_n
    fig, ax = draw.figure(8, 4.2)
    x = np.arange(len(names))
    ax.bar(x, six_n, color="#4c78a8", label="6·N: the weights' matmuls (forward + backward)")
    ax.bar(x, attn, bottom=six_n, color="#f58518", label="12·L·S·E: attention's q·kᵀ and A·v")
    for i, name in enumerate(names):
        mc = cfg.preset(name).model
        ax.text(i, total[i] * 1.15, f"{total[i]:.3g}\nattention {attn[i] / total[i]:.0%}\n"
                f"(S = {mc.seq_len}, E = {mc.d_model}, L = {mc.n_layers})",
                ha="center", va="bottom", fontsize=8.5)
    ax.set_yscale("log")
    ax.set_ylim(six_n.min() / 3, total.max() * 30)
    ax.set_xticks(x, [f"`{n}`" for n in names])
    ax.set_xlabel("preset (shared.config.PRESETS)")
    ax.set_ylabel("training FLOPs per token (log scale)")
    ax.set_title("FLOPs per token = 6N + 12·L·S·E (shared.model.train_flops_per_token)", fontsize=11)
    ax.legend(loc="upper left", fontsize=8.5)
    draw.save(fig, path)


def loss(path: Path) -> None:
    """Measured: the tiny model's loss over the notebook's 150 steps of 8 sequences."""
    import jax
    import numpy as np

    from shared import config as cfg
    from shared import data, model, train

    mc = dataclasses.replace(cfg.preset("tiny").model, dtype="float32")
    tc = dataclasses.replace(cfg.preset("tiny").train, steps=STEPS, batch_size=BATCH,
                             warmup_steps=STEPS // 10)
    splits = data.split(data.load_corpus(), mc.seq_len)
    state = train.init_state(mc, tc)
    step_fn = train.make_train_step(mc, tc)
    losses = []
    for i in range(STEPS):
        state, value = step_fn(state, *data.batch(splits.train, BATCH, mc.seq_len, tc.seed, i))
        losses.append(value)
    losses = np.array(jax.device_get(losses), float)
    val = float(np.mean([model.loss_fn(state["params"], x, y, mc) for x, y in
                         (data.batch(splits.val, BATCH, mc.seq_len, tc.seed, i) for i in range(4))]))
    fig, ax = draw.figure(7.5, 4.2)
    ax.plot(np.arange(1, STEPS + 1), losses, lw=1.2, label="training loss (one batch per step)")
    uniform = math.log(mc.vocab_size)
    ax.axhline(uniform, color="gray", ls="--", label=f"ln 256 = {uniform:.3f} (uniform guess)")
    h = data.unigram_entropy(splits.train)
    ax.axhline(h, color="gray", ls=":", label=f"unigram entropy {h:.3f} (no context)")
    ax.plot([STEPS], [val], "o", color="C3", label=f"validation loss {val:.3f} (4 unseen batches)")
    ax.set(xlabel="step", ylabel="cross-entropy (nats per byte)")
    ax.set_title(f"`tiny` model, {STEPS} steps of {BATCH} × {mc.seq_len} bytes of the Python "
                 f"standard library\nmeasured on {draw.machine()}", fontsize=10)
    ax.legend(fontsize=8.5)
    ax.grid(True, lw=0.3)
    draw.save(fig, path)


FIGURES = {
    "block_dataflow.png": block_dataflow,
    "attention_mask.png": attention_mask,
    "flops_per_token.png": flops_per_token,
    "loss.png": loss,
}
SLOW = {"loss.png"}  # measured: a training run, left out of tests/test_figures.py
