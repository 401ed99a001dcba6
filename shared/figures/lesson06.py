"""Lesson 06's figures: memory per device by remat policy and dtype (the compiler's memory
analysis of the loop's step), the sharded step's collectives per strategy (read from the
compiled HLO on 8 simulated devices), and where mixed precision casts (the traced step).

All three come from compiled or traced programs of the `tiny` preset, so they are exact
counts, not timings, and do not depend on the machine.
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

from shared.figures import draw

REMATS = ("none", "matmuls", "full")
DTYPES = ("float32", "bfloat16")
STRATEGIES = ("dp", "fsdp", "tp")
MiB = 2**20


def _figure(*args, **kwargs):
    fig, axes = draw.figure(*args, **kwargs)
    fig.set_layout_engine("constrained")
    return fig, axes


def _tiny():
    from shared import config as cfg

    p = cfg.preset("tiny")
    return p.model, p.train


def _abstract_batch(B: int, S: int):
    import jax
    import jax.numpy as jnp

    i32 = jax.ShapeDtypeStruct((B, S), jnp.int32)
    return {"inputs": i32, "targets": i32, "positions": i32, "segment_ids": i32,
            "weights": jax.ShapeDtypeStruct((B, S), jnp.float32)}


def step_memory(remat: str, dtype: str) -> dict[str, int]:
    """Bytes of the tiny preset's compiled step (batch 8 x 128): arguments, temporaries, aliased."""
    from shared import train

    mc, tc = _tiny()
    mc = dataclasses.replace(mc, remat=remat, dtype=dtype)
    compiled = train.make_step(mc, tc).lower(
        train.abstract_state(mc, tc), _abstract_batch(tc.batch_size, mc.seq_len)).compile()
    m = compiled.memory_analysis()
    return {"arguments": m.argument_size_in_bytes, "temporaries": m.temp_size_in_bytes,
            "aliased": m.alias_size_in_bytes}


def draw_memory(path: Path) -> None:
    mc, tc = _tiny()
    rows = {(d, r): step_memory(r, d) for d in DTYPES for r in REMATS}
    fig, ax = _figure(8, 4.6)
    labels, x = [], 0
    for d, color in zip(DTYPES, ("tab:blue", "tab:orange")):
        for r in REMATS:
            m = rows[d, r]
            args, temp = m["arguments"] / MiB, m["temporaries"] / MiB
            ax.bar(x, args, color="lightgrey", edgecolor="black")
            ax.bar(x, temp, bottom=args, color=color, edgecolor="black")
            ax.text(x, args + temp + 0.8, f"{temp:.1f}", ha="center", fontsize=9)
            labels.append(f"{d}\nremat {r}")
            x += 1
        x += 0.5
    ax.set_xticks([i + (i >= 3) * 0.5 for i in range(6)], labels, fontsize=8)
    ax.set_ylabel("MiB per device")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="lightgrey", label="arguments: weights, AdamW m and v, batch"),
                       Patch(color="tab:blue", label="temporaries, float32 step"),
                       Patch(color="tab:orange", label="temporaries, bfloat16 step")],
              fontsize=8, loc="upper right")
    ax.set_ylim(0, max(sum(v for k, v in m.items() if k != "aliased") for m in rows.values()) / MiB * 1.25)
    ax.set_title(f"Memory of one training step by remat policy and dtype\n"
                 f"tiny preset (E={mc.d_model}, L={mc.n_layers}), batch {tc.batch_size} x {mc.seq_len}; "
                 "compiled step's memory_analysis()", fontsize=10)
    draw.save(fig, path)


def sharded_collectives(strategies=STRATEGIES) -> dict[str, list]:
    """strategy -> [(kind, executions, bytes each device sends)] of the tiny step (8 heads,
    so TP splits them over 8) on 8 devices, read from the compiled HLO."""
    import jax

    from shared import sharding, train
    from shared.collectives import hlo_collectives

    mc, tc = _tiny()
    mc = dataclasses.replace(mc, n_heads=8)
    out = {}
    for s in strategies:
        placement = train.Placement(sharding.strategy_mesh(s, jax.devices()[:8]), s)
        compiled = train.make_step(mc, tc, placement).lower(
            train.abstract_state(mc, tc), _abstract_batch(tc.batch_size, mc.seq_len)).compile()
        out[s] = [(c.kind, c.count, c.bytes_sent) for c in hlo_collectives(compiled.as_text())]
    return out


@draw.on_cpu_devices(8)
def draw_collectives(path: Path) -> None:
    found = sharded_collectives()
    kinds = sorted({k for rows in found.values() for k, _, _ in rows})
    colors = dict(zip(["all-gather", "all-reduce", "all-to-all", "reduce-scatter", "collective-permute"],
                      ["tab:green", "tab:blue", "tab:purple", "tab:orange", "tab:brown"]))
    fig, ax = _figure(8, 4.3)
    for i, s in enumerate(STRATEGIES):
        left = 0.0
        for kind in kinds:
            count = sum(n for k, n, _ in found[s] if k == kind)
            sent = sum(b for k, _, b in found[s] if k == kind) / 1e6
            if not count:
                continue
            ax.barh(i, sent, left=left, color=colors.get(kind, "grey"), edgecolor="black",
                    label=kind if i == [j for j, t in enumerate(STRATEGIES)
                                        if any(k == kind for k, _, _ in found[t])][0] else None)
            if sent > 0.6:
                ax.text(left + sent / 2, i, f"{count}x {kind}\n{sent:.2f} MB", ha="center",
                        va="center", fontsize=8)
            left += sent
        ax.text(left + 0.2, i, f"{left:.2f} MB", va="center", fontsize=9)
    ax.set_yticks(range(len(STRATEGIES)), [s.upper() for s in STRATEGIES])
    ax.invert_yaxis()
    ax.set_xlabel("MB each device sends per step (ring model, shared.collectives)")
    ax.set_xlim(0, ax.get_xlim()[1] * 1.3)
    ax.legend(fontsize=8, loc="center right")
    ax.set_title("Collectives in one sharded training step, 8 simulated devices\n"
                 "tiny preset with 8 heads, batch 8 x 128; read from the compiled HLO", fontsize=10)
    draw.save(fig, path)


def _walk(jaxpr, times: int, counts: collections.Counter) -> None:
    """Count casts and matmuls in a jaxpr and the jaxprs inside it (a scan's body times its length)."""
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "convert_element_type":
            src, dst = eqn.invars[0].aval.dtype, eqn.outvars[0].aval.dtype
            if src != dst and "float" in str(src) and "float" in str(dst):
                counts[f"cast {src} -> {dst}"] += times
        elif name == "dot_general":
            a, b, o = eqn.invars[0].aval.dtype, eqn.invars[1].aval.dtype, eqn.outvars[0].aval.dtype
            counts[f"matmul {a} x {b} -> {o}"] += times
        inner = times * (eqn.params.get("length", 1) if name == "scan" else 1)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                sub = getattr(sub, "jaxpr", sub)  # ClosedJaxpr -> Jaxpr
                if hasattr(sub, "eqns"):
                    _walk(sub, inner, counts)


def step_casts(dtype: str) -> collections.Counter:
    """Float casts and matmuls (by dtypes) in the traced loss-and-gradient of the tiny preset."""
    import jax

    from shared import model, train

    mc, tc = _tiny()
    mc = dataclasses.replace(mc, dtype=dtype)
    params = train.abstract_state(mc, tc)["params"]
    grad = jax.value_and_grad(model.loss_sums, has_aux=True)
    closed = jax.make_jaxpr(lambda p, b: grad(p, b, mc))(params, _abstract_batch(2, mc.seq_len))
    counts: collections.Counter = collections.Counter()
    _walk(closed.jaxpr, 1, counts)
    return counts


def draw_mixed_precision(path: Path) -> None:
    counts = {d: step_casts(d) for d in DTYPES}
    fig, (left, right) = _figure(11, 4.6, 1, 2, width_ratios=[1.05, 1])
    draw.blank(left, (0, 10), (0, 10))
    steps = [("float32 master weights\n+ AdamW m, v (12 B/param)", "lightgrey"),
             ("cast to bfloat16\n(once per layer, in the step)", "tab:orange"),
             ("matmul: bfloat16 inputs,\nproducts summed in float32", "tab:orange"),
             ("norms, softmax, GELU,\nlogits and loss in float32", "tab:blue"),
             ("gradients float32 -> AdamW\nupdates the float32 masters", "lightgrey")]
    for i, (text, color) in enumerate(steps):
        y = 8.4 - i * 1.95
        draw.box(left, 1.5, y, 7, 1.4, text, color=color, alpha=0.6, fontsize=9)
        if i:
            draw.arrow(left, (5, y + 1.95), (5, y + 1.4))
    left.set_title("--dtype bfloat16: what stays float32", fontsize=10)

    names = sorted({k for c in counts.values() for k in c},
                   key=lambda k: (not k.startswith("matmul"), k))
    y = range(len(names))
    for j, (d, color) in enumerate(zip(DTYPES, ("tab:blue", "tab:orange"))):
        right.barh([i + (j - 0.5) * 0.38 for i in y], [counts[d][k] for k in names], height=0.38,
                   color=color, label=f"{d} step")
        for i, k in enumerate(names):
            if counts[d][k]:
                right.text(counts[d][k], i + (j - 0.5) * 0.38, f" {counts[d][k]}", va="center", fontsize=7)
    right.set_yticks(list(y), [n.replace("float", "f").replace("bf16", "bf16") for n in names], fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("operations in the traced value_and_grad (scanned layers x L)")
    right.legend(fontsize=8, loc="upper right")
    right.set_title("Casts and matmuls by dtype, tiny preset (jax.make_jaxpr)", fontsize=10)
    draw.save(fig, path)


# Longer than a test should wait (six and three compilations of the training step):
# drawn by `python -m shared.figures`, left out of tests/test_figures.py.
SLOW = {"memory_by_remat.png", "collectives_per_strategy.png"}

FIGURES = {
    "memory_by_remat.png": draw_memory,
    "collectives_per_strategy.png": draw_collectives,
    "mixed_precision.png": draw_mixed_precision,
}
