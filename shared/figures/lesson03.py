"""Lesson 03's figures: a mesh and which device holds which block of a sharded array, a ring
all-gather step by step, and the bytes each collective sends against the number of devices.

All three run on 8 simulated CPU devices (shared.figures.draw.on_cpu_devices) and are exact:
- mesh_sharding.png: the blocks from NamedSharding.devices_indices_map of the lesson's specs.
- ring_all_gather.png: each step computed by shared.collectives.ppermute on 4 devices.
- collective_bytes.png: the ring model (shared.collectives.bytes_sent_per_device) against
  the collectives XLA compiled (shared.collectives.hlo_collectives) on 2, 4 and 8 devices.
"""

from __future__ import annotations

from pathlib import Path

from shared.figures import draw


@draw.on_cpu_devices(8)
def mesh_sharding(path: Path) -> None:
    """A {data: 4, model: 2} mesh and an [8, 6] array under three partition specs."""
    import jax
    from jax.sharding import PartitionSpec as P
    from matplotlib.patches import Rectangle

    from shared.sharding import make_mesh

    mesh = make_mesh({"data": 4, "model": 2}, jax.devices()[:8])
    shape = (8, 6)
    colors = draw.device_colors(8)
    specs = [P("data", "model"), P("data", None), P(None, "model")]
    fig, axes = draw.figure(15, 4.6, 1, 1 + len(specs), gridspec_kw={"width_ratios": [0.8, 1, 1, 1]})
    ax = axes[0]
    ids = mesh.devices  # [data, model] array of devices
    for r in range(ids.shape[0]):
        for c in range(ids.shape[1]):
            d = ids[r, c].id
            ax.add_patch(Rectangle((c, r), 0.92, 0.92, facecolor=colors[d], alpha=0.85))
            ax.text(c + 0.46, r + 0.46, f"device {d}", ha="center", va="center", fontsize=9,
                    color="white", weight="bold")
    ax.set_xlim(-0.1, ids.shape[1])
    ax.set_ylim(ids.shape[0], -0.1)
    ax.set_xticks([0.46, 1.46], ["model 0", "model 1"])
    ax.set_yticks([r + 0.46 for r in range(4)], [f"data {r}" for r in range(4)])
    ax.set_title("the mesh {data: 4, model: 2}", fontsize=10)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for ax, spec in zip(axes[1:], specs):
        blocks = draw.draw_sharded(ax, shape, spec, mesh, colors)
        (r0, r1), (c0, c1) = next(iter(blocks))
        ax.set_xlim(0, shape[1])
        ax.set_ylim(shape[0], 0)
        ax.set_xticks(range(shape[1] + 1))
        ax.set_yticks(range(shape[0] + 1))
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        copies = len(next(iter(blocks.values())))
        ax.set_title(f"[8, 6] with {spec}:\n{len(blocks)} blocks of [{r1 - r0}, {c1 - c0}]"
                     + (f", each on {copies} devices" if copies > 1 else ""), fontsize=10)
    fig.suptitle("Which device holds which block (NamedSharding.devices_indices_map on 8 simulated "
                 "devices); a block on several devices is striped in their colours", fontsize=11, y=1.03)
    draw.save(fig, path)


@draw.on_cpu_devices(8)
def ring_all_gather(path: Path) -> None:
    """A ring all-gather on 4 devices: at each step every device passes one block to its right."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from matplotlib.patches import FancyArrowPatch, Rectangle

    from shared import collectives
    from shared.sharding import make_mesh

    n = 4
    mesh = make_mesh({"ring": n}, jax.devices()[:n])
    travelling = jnp.arange(n, dtype=jnp.float32)[:, None]  # row i: the block device i sends next
    held = [[{i} for i in range(n)]]
    sent = [list(range(n))]
    for _ in range(n - 1):
        travelling = collectives.ppermute(travelling, mesh, "ring")  # one hop to the right
        arrived = [int(b) for b in np.asarray(travelling)[:, 0]]
        held.append([held[-1][i] | {arrived[i]} for i in range(n)])
        sent.append(arrived)
    colors = draw.device_colors(n)
    fig, axes = draw.figure(14, 3.8, 1, n)
    for t, ax in enumerate(axes):
        ax.set_xlim(-0.6, n + 1.6)
        ax.set_ylim(n + 0.4, -1.0)
        ax.axis("off")
        for i in range(n):
            ax.text(-0.1, i + 0.45, f"dev {i}", ha="right", va="center", fontsize=9)
            for b in range(n):
                have = b in held[t][i]
                ax.add_patch(Rectangle((b, i + 0.05), 0.9, 0.8, facecolor=colors[b] if have else "white",
                                       edgecolor="#999", alpha=0.9 if have else 1))
                if have:
                    ax.text(b + 0.45, i + 0.45, str(b), ha="center", va="center", color="white",
                            fontsize=9, weight="bold")
            if t < n - 1:  # the block this device passes to its right neighbour next
                b, dest = sent[t][i], (i + 1) % n
                if dest:
                    ax.add_patch(FancyArrowPatch((n + 0.25, i + 0.5), (n + 0.25, dest + 0.45),
                                                 arrowstyle="-|>", mutation_scale=10, color="black"))
                    y = i + 1.0
                else:  # the ring closes: the last device sends to device 0
                    ax.add_patch(FancyArrowPatch((n + 0.35, i + 0.5), (n + 0.35, dest + 0.45),
                                                 connectionstyle="arc3,rad=0.45", arrowstyle="-|>",
                                                 mutation_scale=10, color="black"))
                    y = 1.2
                ax.text(n + 0.25 if dest else n + 1.1, y, str(b), ha="center", va="center", fontsize=8,
                        color="white", weight="bold",
                        bbox=dict(boxstyle="circle,pad=0.25", facecolor=colors[b], edgecolor="none"))
        title = "start: each device has its own block" if t == 0 else f"after step {t}"
        more = "\n(arrows: what each sends next)" if t < n - 1 else "\nevery device has all 4"
        ax.set_title(title + more,
                     fontsize=10)
    share = collectives.bytes_sent_per_device("all-gather", 1.0, n)
    fig.suptitle(f"Ring all-gather over {n} devices, computed with shared.collectives.ppermute: "
                 f"{n - 1} steps, each device sends one block of m/{n} per step, "
                 f"{share:.2f}·m in all", fontsize=11, y=1.04)
    draw.save(fig, path)


@draw.on_cpu_devices(8)
def collective_bytes(path: Path) -> None:
    """Bytes each device sends per collective against n: the ring model and the compiled HLO."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from shared import collectives
    from shared.sharding import make_mesh

    V = 2**20  # bytes of the largest per-device buffer (the cost model's V)
    per = V // 4  # float32 elements in V
    model_n = np.arange(2, 17)
    fig, ax = draw.figure(8.5, 5)
    markers = dict(zip(collectives.KINDS, "os^Dv"))
    sizes = dict(zip(collectives.KINDS, (13, 9, 8, 5, 8)))
    styles = dict(zip(collectives.KINDS, ("-", "--", "-", ":", "-")))
    for kind in collectives.KINDS:
        line, = ax.plot(model_n, [collectives.bytes_sent_per_device(kind, V, int(k)) / 2**20
                                  for k in model_n], lw=1.4, ls=styles[kind], label=f"{kind}: ring model")
        for n in (2, 4, 8):
            mesh = make_mesh({"d": n}, jax.devices()[:n])
            rows = {"all-gather": (n, per // n), "all-reduce": (n, per),
                    "collective-permute": (n, per)}.get(kind, (n, per))
            x = jax.ShapeDtypeStruct(rows, jnp.float32)
            fn = jax.jit(lambda x, f=collectives.COLLECTIVES[kind]: f(x, mesh, "d"))
            found = collectives.compiled_collectives(fn, x)
            sent = sum(c.bytes_sent for c in found if c.kind == kind)
            ax.plot([n], [sent / 2**20], markers[kind], color=line.get_color(), ms=sizes[kind], mfc="none",
                    mew=1.6, label=f"{kind}: compiled HLO" if n == 2 else None)
    ax.set_xlabel("devices n in the ring")
    ax.set_ylabel("MiB each device sends (V = 1 MiB)")
    ax.set_xticks([2, 4, 8, 12, 16])
    ax.set_ylim(0, 2.1)
    ax.grid(True, lw=0.3)
    ax.legend(fontsize=7.5, ncol=2, loc="lower right")
    ax.set_title("Bytes sent per device: V·(n−1)/n for all-gather, reduce-scatter, all-to-all; "
                 "2V·(n−1)/n\nfor all-reduce; V for a ppermute. Markers: summed from the collectives XLA "
                 "compiled (hlo_collectives)", fontsize=10)
    draw.save(fig, path)


FIGURES = {
    "mesh_sharding.png": mesh_sharding,
    "ring_all_gather.png": ring_all_gather,
    "collective_bytes.png": collective_bytes,
}
SLOW: set[str] = set()
