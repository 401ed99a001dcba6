"""Lesson 05's figures: the [S, T] score matrix tiled into blocks with the causal blocks skipped,
the online softmax's running max and sum over chunks of keys, and temp memory against S for
the reference and the blockwise (flash) schedule.

- flash_tiling.png: which tiles shared.attention's blockwise schedule visits
  (shared.attention._key_blocks_for) and which of those the mask cuts (shared.attention.mask).
- online_softmax.png: one query's scores, the streaming rule chunk by chunk, checked against
  shared.attention.blockwise and reference with the same chunks.
- memory.png: temp bytes from the compiled programs' memory analysis (nothing runs), forward
  and forward + backward; about 20 s of compiling.
"""

from __future__ import annotations

from pathlib import Path

from shared.figures import draw


def flash_tiling(path: Path) -> None:
    """The causal [S, T] scores of S = T = 1024 cut into 128 × 64 tiles: visited or skipped."""
    import numpy as np
    from matplotlib.patches import Patch, Rectangle

    from shared import attention

    S = T = 1024
    bq, bk = 128, 64
    nq, nk = S // bq, T // bk
    allowed = np.asarray(attention.mask(S, T, causal=True, segment_ids=None)[0])  # [S, T]
    colors = {"full": "#3182bd", "diagonal": "#9ecae1", "skipped": "#f0f0f0"}
    fig, ax = draw.figure(9, 6.2)
    counts = dict.fromkeys(colors, 0)
    for i in range(nq):
        visited = int(attention._key_blocks_for(i, bq=bq, bk=bk, offset=T - S, nk=nk, causal=True))
        for j in range(nk):
            tile = allowed[i * bq:(i + 1) * bq, j * bk:(j + 1) * bk]
            kind = "skipped" if j >= visited else ("full" if tile.all() else "diagonal")
            counts[kind] += 1
            ax.add_patch(Rectangle((j * bk, i * bq), bk, bq, facecolor=colors[kind], edgecolor="white",
                                   lw=1.2))
        ax.text(T + 12, (i + 0.5) * bq, f"query block {i}: {visited} key blocks", va="center",
                fontsize=8.5)
    ax.plot([0, T], [0, S], color="#d62728", lw=1.2, label="diagonal: key t = query s")
    ax.set_xlim(0, T)
    ax.set_ylim(S, 0)
    ax.set_aspect("equal")
    ax.set_xlabel(f"key position t (blocks of bk = {bk})")
    ax.set_ylabel(f"query position s (blocks of bq = {bq})")
    ax.set_xticks(range(0, T + 1, 4 * bk))
    ax.set_yticks(range(0, S + 1, bq))
    visited_tiles = counts["full"] + counts["diagonal"]
    ax.legend(handles=[Patch(color=colors["full"], label=f"computed, all allowed ({counts['full']})"),
                       Patch(color=colors["diagonal"], label=f"computed, masked inside ({counts['diagonal']})"),
                       Patch(facecolor=colors["skipped"], edgecolor="#bbb",
                             label=f"skipped: all masked ({counts['skipped']})")],
              loc="upper right", fontsize=8.5)
    ax.set_title(f"Causal attention, S = T = {S}, in {bq} × {bk} tiles: blockwise visits "
                 f"{visited_tiles} of {nq * nk}\n(shared.attention._key_blocks_for, masks from "
                 "shared.attention.mask); only one [bq, bk] tile of scores exists at a time", fontsize=10)
    draw.save(fig, path)


def online_softmax(path: Path) -> None:
    """One query's scores over 4 chunks of keys: the running max m, the running sum l, and the
    rescale exp(m_old − m_new) each time a chunk raises the max."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from shared import attention

    T, D, chunk = 32, 16, 8
    kq, kk, kv = jax.random.split(jax.random.key(3), 3)
    q = jax.random.normal(kq, (1, 1, 1, D)) * 2.0
    # keys drift towards q, so later chunks tend to hold larger scores and raise the max
    drift = jnp.linspace(-1.0, 1.5, T)[None, :, None, None] * q / jnp.linalg.norm(q)
    k = jax.random.normal(kk, (1, T, 1, D)) * 0.5 + drift * 0.5
    v = jax.random.normal(kv, (1, T, 1, D))
    scale = D ** -0.5
    scores = np.asarray(jnp.einsum("d,td->t", q[0, 0, 0], k[0, :, 0]) * scale, np.float64)
    m, l = -np.inf, 0.0
    ms, ls, rescales, before, added = [], [], [], [], []
    for c in range(T // chunk):  # the streaming rule of section 5
        x = scores[c * chunk:(c + 1) * chunk]
        m_new = max(m, x.max())
        rescale = np.exp(m - m_new)
        before.append(l)
        added.append(np.exp(x - m_new).sum())
        l = l * rescale + added[-1]
        m = m_new
        ms.append(m), ls.append(l), rescales.append(rescale)
    two_pass = np.exp(scores - scores.max()).sum()
    ref = attention.reference(q, k, v, causal=False)
    blk = attention.blockwise(q, k, v, causal=False, block_q=1, block_k=chunk)
    err = float(jnp.abs(ref - blk).max())
    fig, (top, bottom) = draw.figure(9, 6.2, 2, 1, sharex=True)
    t = np.arange(T)
    top.bar(t, scores, color=["#9ecae1" if (i // chunk) % 2 else "#6baed6" for i in t])
    for c in range(T // chunk):
        xs = [c * chunk - 0.5, (c + 1) * chunk - 0.5]
        top.plot(xs, [ms[c]] * 2, color="#d62728", lw=2, label="running max m" if c == 0 else None)
        if c:
            top.axvline(c * chunk - 0.5, color="#888", lw=0.8, ls=":")
            note = ("raised: ×%.3f" % rescales[c]) if rescales[c] < 1 else "unchanged: ×1"
            top.text(c * chunk + chunk / 2 - 0.5, scores.min() - 0.35,
                     note, ha="center", fontsize=8, color="#d62728")
    top.set_ylabel("score q·k_t/√D")
    top.set_ylim(scores.min() - 0.6, scores.max() + 0.5)
    top.legend(loc="upper left", fontsize=8.5)
    top.set_title(f"Online softmax over {T // chunk} chunks of {chunk} keys, read once each: "
                  "when a chunk raises the max,\nthe sum so far is rescaled by exp(m_old − m_new)",
                  fontsize=10)
    centres = [c * chunk + chunk / 2 - 0.5 for c in range(T // chunk)]
    carried = [b * r for b, r in zip(before, rescales)]
    bottom.bar(centres, before, width=chunk * 0.75, facecolor="none", edgecolor="#999", ls="--",
               label="l before the chunk (against the old max)")
    bottom.bar(centres, carried, width=chunk * 0.75, color="#2ca02c",
               label="carried: l · exp(m_old − m_new)")
    bottom.bar(centres, added, bottom=carried, width=chunk * 0.75, color="#98df8a",
               label="added: Σ over the chunk of exp(score − m_new)")
    bottom.axhline(two_pass, color="black", ls=":", lw=1,
                   label=f"two-pass Σ exp(score − max) = {two_pass:.4f}")
    bottom.set_ylabel("running sum l")
    bottom.set_xlabel("key position t")
    bottom.legend(loc="upper left", fontsize=8, bbox_to_anchor=(0.0, 1.0))
    bottom.set_ylim(0, max(max(before), two_pass) * 1.9)
    bottom.text(T - 0.5, bottom.get_ylim()[1] * 0.95, f"last l = {ls[-1]:.4f}\nshared.attention.blockwise "
                f"with block_k = {chunk}\nvs reference: max |Δout| = {err:.1e}", ha="right", va="top",
                fontsize=8.5)
    draw.save(fig, path)


def memory(path: Path) -> None:
    """Temp memory of the compiled reference and blockwise attention against S (B=1, H=4, D=64)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from shared import attention

    B, H, D = 1, 4, 64
    sizes = [512, 1024, 2048, 4096]
    MiB = 2**20
    results: dict[str, list[float]] = {}
    for impl in ("reference", "blockwise"):
        fwd = lambda q, k, v, impl=impl: attention.attention(q, k, v, impl=impl)
        loss = lambda q, k, v, impl=impl: attention.attention(q, k, v, impl=impl).sum()
        both = jax.grad(loss, argnums=(0, 1, 2))
        for label, fn in (("forward", fwd), ("forward + backward", both)):
            key = f"{impl}, {label}"
            results[key] = []
            for S in sizes:
                x = jax.ShapeDtypeStruct((B, S, H, D), jnp.float32)
                compiled = jax.jit(fn).lower(x, x, x).compile()
                results[key].append(compiled.memory_analysis().temp_size_in_bytes / MiB)
    fig, ax = draw.figure(8.5, 5)
    styles = {"reference": ("#d62728", "o"), "blockwise": ("#1f77b4", "s")}
    for key, values in results.items():
        impl, label = key.split(", ")
        color, marker = styles[impl]
        ax.plot(sizes, values, marker=marker, color=color, ls="-" if label == "forward" else "--",
                label=key)
        ax.annotate(f"{values[-1]:.0f} MiB" if values[-1] >= 10 else f"{values[-1]:.1f} MiB",
                    (sizes[-1], values[-1]), textcoords="offset points", xytext=(6, 0),
                    va="center", fontsize=8, color=color)
    scores = [4 * B * H * S * S / MiB for S in sizes]
    ax.plot(sizes, scores, color="gray", ls=":", label="one [B, H, S, S] float32 score array: 4·B·H·S²")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlim(sizes[0] / 1.2, sizes[-1] * 1.6)
    ax.set_xlabel("sequence length S = T")
    ax.set_ylabel("temp memory of the compiled program (MiB)")
    ax.set_title(f"Attention's temp memory from XLA's memory analysis (nothing runs): causal, B = {B}, "
                 f"H = {H}, D = {D},\nfloat32; the reference grows as S² (×4 per doubling), "
                 "blockwise only with its S-sized inputs, outputs and statistics", fontsize=10)
    ax.grid(True, which="major", lw=0.3)
    ax.legend(fontsize=8.5, loc="upper left")
    draw.save(fig, path)


FIGURES = {
    "flash_tiling.png": flash_tiling,
    "online_softmax.png": online_softmax,
    "memory.png": memory,
}
SLOW = {"memory.png"}  # compiles 16 programs, forward and backward up to S = 4096
