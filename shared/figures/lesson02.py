"""Lesson 02's figures: asynchronous dispatch on a timeline, fusion's round trips to memory,
arithmetic intensity against size beside each chip's ridge point, and this machine's roofline.

- async_dispatch.png: measured here (a jitted tanh of a 1024² matmul, called three times).
- fusion.png: bytes from XLA's cost analysis of the compiled programs (exact, nothing runs).
- intensity.png: FLOPs and bytes from cost analysis of compiled matmuls and adds, ridge points
  from shared.hardware.CHIPS (nothing runs).
- roofline_cpu.png: `python -m shared.bench roofline`'s sweep (shared.bench.roofline.sweep) on
  this machine, drawn by shared.roofline.plot_roofline: measured, about a minute.

figures/roofline_h100.png is not drawn here: it was measured on an NVIDIA H100 80GB HBM3 with
the same sweep (`python -m shared.bench roofline` on that GPU) and stays as committed.
"""

from __future__ import annotations

import time
from pathlib import Path

from shared.figures import draw


def async_dispatch(path: Path) -> None:
    """Measured: when each call returned to Python and when its result was ready."""
    import jax
    import jax.numpy as jnp

    f = jax.jit(lambda a: jnp.tanh(a @ a))
    x = jax.random.normal(jax.random.key(0), (1024, 1024), jnp.float32)
    x.block_until_ready()
    rows = []
    for call in range(3):
        start = time.perf_counter()
        y = f(x)
        returned = time.perf_counter() - start
        y.block_until_ready()
        rows.append((returned, time.perf_counter() - start))
    fig, ax = draw.figure(8.5, 3.4)
    labels = ["1st call (traces,\ncompiles, runs)", "2nd call", "3rd call"]
    for i, (returned, ready) in enumerate(rows):
        y = len(rows) - 1 - i
        ax.barh(y, returned * 1e3, color="#4c78a8", height=0.5,
                label="Python inside the call (until it returns)" if i == 0 else None)
        ax.barh(y, (ready - returned) * 1e3, left=returned * 1e3, color="#f58518", height=0.5,
                label="call returned; the device still computes" if i == 0 else None)
        ax.text(ready * 1e3, y, f"  ready at {ready * 1e3:.0f} ms (returned at {returned * 1e3:.1f} ms)",
                va="center", fontsize=8.5)
    ax.set_yticks(range(len(rows)), labels[::-1])
    ax.set_xlabel("milliseconds since the call started")
    ax.set_xlim(0, max(r for _, r in rows) * 1e3 * 1.6)
    ax.set_title("jax.jit(lambda a: tanh(a @ a)) on a 1024 × 1024 float32 array: a timer that stops\n"
                 f"when the call returns misses the work (blue vs orange); measured on {draw.machine()}",
                 fontsize=10)
    ax.legend(loc="lower right", fontsize=8.5)
    draw.save(fig, path)


def _kernels(compiled_text: str) -> int:
    """Kernels the compiled program launches: instructions of its entry computation that
    compute (fusions and library calls), parameters, constants and tuples left out."""
    entry = compiled_text.split("\nENTRY ", 1)[1].split("\n}", 1)[0].splitlines()[1:]
    idle = ("parameter(", "constant(", "tuple(", "get-tuple-element(", "bitcast(")
    return sum(1 for line in entry if " = " in line and not any(op in line for op in idle))


def fusion(path: Path) -> None:
    """Bytes moved by tanh(x * 2 + 1) * 3 op by op (4 programs) and jitted (one fusion)."""
    import jax
    import jax.numpy as jnp
    from matplotlib.patches import FancyBboxPatch

    from shared.roofline import cost

    N = 2**24
    x = jax.ShapeDtypeStruct((N,), jnp.float32)
    whole = lambda x: jnp.tanh(x * 2 + 1) * 3
    steps = {"x * 2": lambda x: x * 2, "+ 1": lambda x: x + 1, "tanh": jnp.tanh,
             "* 3": lambda x: x * 3}
    eager = {name: cost(fn, x) for name, fn in steps.items()}  # each op its own program
    fused = cost(whole, x)
    kernels = _kernels(jax.jit(whole).lower(x).compile().as_text())
    MB = 1e6
    fig, (left, right) = draw.figure(11, 4.2, 1, 2, gridspec_kw={"width_ratios": [1.7, 1]})
    left.set_xlim(0, 10)
    left.set_ylim(-0.3, 6.2)
    left.axis("off")
    for y0, label in ((3.4, f"op by op (no jit): {len(steps)} programs"),
                      (0.2, f"jax.jit: {kernels} kernel (one fusion)")):
        left.add_patch(FancyBboxPatch((0.2, y0), 9.6, 0.5, boxstyle="round,pad=0.02",
                                      facecolor="#e8e8e8", edgecolor="#777"))
        left.text(5, y0 + 0.25, f"main memory (DRAM / HBM)", ha="center", va="center", fontsize=9)
        left.text(0.2, y0 + 2.55, label, fontsize=10, weight="bold")
    names = list(steps)
    for i, name in enumerate(names):
        cx = 1.3 + i * 2.45
        left.add_patch(FancyBboxPatch((cx - 0.8, 4.7), 1.6, 0.6, boxstyle="round,pad=0.02",
                                      facecolor="#dbe9f6", edgecolor="#4a6a8a"))
        left.text(cx, 5.0, name, ha="center", va="center", fontsize=10)
        left.annotate("", (cx - 0.35, 4.68), (cx - 0.35, 3.92),
                      arrowprops=dict(arrowstyle="-|>", color="#4c78a8"))
        left.annotate("", (cx + 0.35, 3.92), (cx + 0.35, 4.68),
                      arrowprops=dict(arrowstyle="-|>", color="#d62728"))
        left.text(cx, 4.3, f"{eager[name].bytes / MB:.0f} MB", ha="center", va="center", fontsize=8,
                  bbox=dict(facecolor="white", edgecolor="none", pad=0.5))
    left.add_patch(FancyBboxPatch((1.3 - 0.8, 1.5), 2.45 * 3 + 1.6, 0.6, boxstyle="round,pad=0.02",
                                  facecolor="#dbe9f6", edgecolor="#4a6a8a"))
    left.text(5, 1.8, "fusion:  tanh(x * 2 + 1) * 3  (kLoop, one pass)", ha="center", va="center",
              fontsize=10)
    left.annotate("", (1.0, 1.48), (1.0, 0.72), arrowprops=dict(arrowstyle="-|>", color="#4c78a8"))
    left.annotate("", (8.9, 0.72), (8.9, 1.48), arrowprops=dict(arrowstyle="-|>", color="#d62728"))
    left.text(5, 1.1, f"{fused.bytes / MB:.0f} MB in all: x read once (blue), the result "
              "written once (red)", ha="center", va="center", fontsize=8.5)
    total = sum(c.bytes for c in eager.values())
    bars = right.bar([0, 1], [total / MB, fused.bytes / MB], color=["#9ecae1", "#3182bd"])
    for bar, value in zip(bars, (total, fused.bytes)):
        right.text(bar.get_x() + bar.get_width() / 2, value / MB, f"{value / MB:.0f} MB",
                   ha="center", va="bottom", fontsize=9)
    right.set_xticks([0, 1], ["op by op", "jitted"])
    right.set_ylabel("bytes read + written (MB)")
    right.set_ylim(0, total / MB * 1.18)
    right.set_title(f"{total / fused.bytes:.0f}× fewer bytes when fused", fontsize=10)
    fig.suptitle(f"Fusion on N = 2²⁴ float32 elements: bytes from XLA's cost analysis of the compiled "
                 "programs (shared.roofline.cost)", fontsize=10.5)
    draw.save(fig, path)


def intensity(path: Path) -> None:
    """FLOPs per byte of square matmuls and of an add against size, and each chip's ridge."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from shared import hardware, roofline
    from shared.bench.roofline import matmul

    sizes = [64, 128, 256, 512, 1024, 2048, 4096, 8192]
    spec = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype)
    curves = {}
    for dtype, label in (("float32", "matmul, float32"),
                         ("bfloat16", "matmul, bfloat16 in, float32 out")):
        curves[label] = [roofline.cost(matmul, spec((n, n), dtype), spec((n, n), dtype)).intensity
                         for n in sizes]
    curves["add, float32"] = [roofline.cost(jnp.add, spec((n, n), "float32"),
                                            spec((n, n), "float32")).intensity for n in sizes]
    fig, ax = draw.figure(8.5, 5)
    for (label, values), marker in zip(curves.items(), "os^"):
        ax.plot(sizes, values, marker=marker, label=label)
    chips = sorted(hardware.CHIPS.values(), key=lambda c: -roofline.ridge_point(c, "bfloat16"))
    ridges = [roofline.ridge_point(c, "bfloat16") for c in chips]
    for ridge in ridges:
        ax.axhline(ridge, color="gray", lw=0.7, ls=":")
    ax.axhspan(min(ridges), max(ridges), color="gray", alpha=0.12,
               label="the accelerators' bf16 ridge points")
    ax.text(0.98, 0.17, "bf16 ridge point (FLOP/B)\n" + "\n".join(
        f"{c.name}: {r:.0f}" for c, r in zip(chips, ridges)), transform=ax.transAxes,
        ha="right", va="bottom", fontsize=8, family="monospace",
        bbox=dict(facecolor="white", edgecolor="#bbb"))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlim(sizes[0] / 1.5, sizes[-1] * 1.5)
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xlabel("n (square n × n operands)")
    ax.set_ylabel("arithmetic intensity (FLOPs per byte)")
    ax.set_title("Intensity from XLA's cost analysis of the compiled programs, against each chip's\n"
                 "bf16 ridge point (shared.hardware.CHIPS): above its line a program is compute-bound",
                 fontsize=10)
    ax.legend(loc="upper left", fontsize=8.5)
    ax.grid(True, which="major", lw=0.3)
    draw.save(fig, path)


def roofline_cpu(path: Path) -> None:
    """Measured: `python -m shared.bench roofline`'s sweep on this machine, on its roofline."""
    import jax

    from shared import hardware, roofline
    from shared.bench.roofline import SIZES, sweep

    platform = jax.devices()[0].platform
    dtype = "float32" if platform == "cpu" else "bfloat16"
    chip = hardware.detect()
    points = sweep(dtype, SIZES["cpu" if platform == "cpu" else "accelerator"], runs=5)
    roofline.plot_roofline(points, path, title=f"{chip.name}, {dtype}: measured on {draw.machine()}"
                           " (python -m shared.bench roofline)")


FIGURES = {
    "async_dispatch.png": async_dispatch,
    "fusion.png": fusion,
    "intensity.png": intensity,
    "roofline_cpu.png": roofline_cpu,
}
SLOW = {"roofline_cpu.png"}  # measured: calibration and a timed sweep, about a minute
