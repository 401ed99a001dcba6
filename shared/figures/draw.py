"""Small helpers the lessons' figure modules share: a figure, saving it, the machine's short
name for titles of measured figures, colours per device, and running a draw function on
several simulated CPU devices.

Only add functions here (several lessons' modules use them); importing this module does no
JAX work.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

DPI = 120
MAX_BYTES = 150_000  # a PNG over this is saved again at a lower resolution


def figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kwargs):
    """A matplotlib Figure (no pyplot: no global state, works headless) and its axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    axes = fig.subplots(nrows, ncols, squeeze=True, **kwargs)
    return fig, axes


def save(fig, path: str | Path, dpi: int = DPI) -> Path:
    """Write fig as a PNG at dpi (lower if the file would be over MAX_BYTES)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for d in (dpi, 100, 80):
        fig.savefig(path, dpi=d, bbox_inches="tight")
        if path.stat().st_size <= MAX_BYTES:
            break
    return path


def machine() -> str:
    """A short name of the device that measured a figure, for its title: '2 cores of AMD EPYC'
    on a CPU, the device kind (e.g. 'NVIDIA H100 80GB HBM3') on an accelerator."""
    import jax

    device = jax.devices()[0]
    if device.platform != "cpu":
        return device.device_kind
    from shared import hardware

    return hardware.cpu()


def device_colors(n: int) -> list:
    """One colour per device 0..n-1 (the same in every lesson's figures)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def on_cpu_devices(n: int = 8) -> Callable:
    """Decorator for a draw function that needs n simulated CPU devices (lessons 03-04).

    If JAX has not started yet, or started with n CPU devices (the test suite's conftest),
    the function runs here after shared.devices.simulate_cpu_devices(n). If JAX already
    started with another count (`python -m shared.figures` drew a single-device lesson first),
    it runs in a fresh Python process that sets up the n devices first.
    """
    def wrap(draw: Callable[[Path], None]) -> Callable[[Path], None]:
        @functools.wraps(draw)
        def run(path: Path) -> None:
            from shared.devices import DeviceSetupError, simulate_cpu_devices

            try:
                simulate_cpu_devices(n)
            except DeviceSetupError:
                code = ("import sys; from pathlib import Path; import matplotlib; matplotlib.use('Agg'); "
                        "from shared.devices import simulate_cpu_devices; "
                        f"simulate_cpu_devices({n}); import importlib; "
                        f"getattr(importlib.import_module({draw.__module__!r}), {draw.__name__!r})"
                        ".__wrapped__(Path(sys.argv[1]))")
                root = Path(__file__).resolve().parents[2]
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                    [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
                subprocess.run([sys.executable, "-c", code, str(Path(path).resolve())],
                               check=True, cwd=root, env=env)
                return
            draw(path)

        return run

    return wrap


# ---- diagrams: boxes, arrows, grids of cells (lessons 06-10) ----

def box(ax, x: float, y: float, w: float, h: float, text: str = "", *, color="white",
        edge: str = "black", fontsize: float = 9, lw: float = 1.0, text_color: str = "black",
        alpha: float = 1.0, **kwargs):
    """A rectangle with its lower-left corner at (x, y) and `text` centred in it."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor=edge, lw=lw, alpha=alpha))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize,
                color=text_color, **kwargs)


def arrow(ax, start: tuple[float, float], end: tuple[float, float], *, color="black",
          text: str = "", fontsize: float = 8, lw: float = 1.2, style: str = "-|>", **kwargs):
    """An arrow from start to end, with an optional label at its middle."""
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle=style, color=color, lw=lw, shrinkA=0, shrinkB=0, **kwargs))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, text, ha="center", va="bottom",
                fontsize=fontsize, color=color)


def blank(ax, xlim: tuple[float, float], ylim: tuple[float, float], *, equal: bool = False) -> None:
    """Axes for a diagram: these limits, no ticks or frame; y grows upwards."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if equal:
        ax.set_aspect("equal")
    ax.axis("off")


def grid_cells(ax, values, *, cmap: str = "viridis", text=None, fontsize: float = 7,
               vmin=None, vmax=None, colors=None):
    """values [rows, cols] as coloured cells (row 0 at the top), with optional text per cell
    (text[r][c], "" for none); colors: an optional [rows, cols] of colours instead of cmap.
    Returns the image (for a colorbar) or None."""
    import numpy as np

    values = np.asarray(values)
    rows, cols = values.shape
    image = None
    if colors is None:
        image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto",
                          interpolation="nearest")
    else:
        from matplotlib.colors import to_rgb

        ax.imshow(np.array([[to_rgb(c) for c in row] for row in colors]), aspect="auto",
                  interpolation="nearest")
    ax.set_xticks(np.arange(cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
    if text is not None:
        for r in range(rows):
            for c in range(cols):
                if text[r][c] != "":
                    ax.text(c, r, str(text[r][c]), ha="center", va="center", fontsize=fontsize)
    return image


# ---- sharded arrays: which device holds which block (lessons 03-04) ----

def sharded_blocks(shape, spec, mesh) -> dict:
    """{((row start, row stop), (col start, col stop), ...): [device ids holding that block]}
    of an array of this shape placed with NamedSharding(mesh, spec), from the sharding itself."""
    from jax.sharding import NamedSharding

    blocks: dict = {}
    for device, index in NamedSharding(mesh, spec).devices_indices_map(tuple(shape)).items():
        key = tuple((s.start or 0, s.stop if s.stop is not None else n) for s, n in zip(index, shape))
        blocks.setdefault(key, []).append(device.id)
    return {k: sorted(v) for k, v in blocks.items()}


def draw_sharded(ax, shape, spec, mesh, colors, *, labels: bool = True, fontsize: float = 8,
                 origin=(0.0, 0.0), scale=(1.0, 1.0), replicated: str = "stripes") -> dict:
    """A 2-D array as its blocks, each filled with the colour of the device holding it, drawn in
    data coordinates from origin (x, y of the top-left corner, y growing downwards) with scale
    (width per column, height per row). A block on several devices is striped in their colours
    (replicated="stripes") or grey and hatched with the devices named (replicated="grey", where
    stripes would look like a split). Returns sharded_blocks(...)."""
    from matplotlib.patches import Rectangle

    blocks = sharded_blocks(shape, spec, mesh)
    (x0, y0), (sx, sy) = origin, scale
    for ((r0, r1), (c0, c1)), devices in blocks.items():
        x, y, w, h = x0 + c0 * sx, y0 + r0 * sy, (c1 - c0) * sx, (r1 - r0) * sy
        if len(devices) > 1 and replicated == "grey":
            ax.add_patch(Rectangle((x, y), w, h, facecolor="#d9d9d9", hatch="///", edgecolor="#999"))
            everyone = len(devices) == mesh.devices.size
            ax.text(x + w / 2, y + h / 2, f"all {len(devices)}" if everyone else ",".join(map(str, devices)),
                    ha="center", va="center", fontsize=fontsize, color="black",
                    bbox=dict(facecolor="white", edgecolor="none", pad=0.5))
        else:
            for i, d in enumerate(devices):
                ax.add_patch(Rectangle((x + i * w / len(devices), y), w / len(devices), h,
                                       facecolor=colors[d], alpha=0.85, edgecolor="none"))
            if labels:
                ax.text(x + w / 2, y + h / 2,
                        "dev " + ",".join(map(str, devices)) if len(devices) < len(colors) else "all",
                        ha="center", va="center", fontsize=fontsize, color="white", weight="bold")
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="black", lw=1.2))
    return blocks
