"""Rooflines: the least time a program can take on a chip, and how close it gets (lesson 02).

A program that does F FLOPs and moves M bytes between the chip and its main memory
cannot finish faster than

    bound = max(F / peak FLOP/s, M / memory bandwidth)

Its arithmetic intensity I = F / M (FLOPs per byte) decides which term wins: above
the chip's ridge point peak / bandwidth it is compute-bound, below it memory-bound.
F and M come from XLA's cost analysis of the compiled program (what it will really
run, after fusion), the peaks from shared.hardware: datasheet figures for
accelerators, a calibration for the CPU.

    a = analyze(lambda x, y: x @ y, x, y)     # on this machine, measured
    a = analyze(f, x, y, chip="H100")         # the bound it would have on an H100
    print(a)  # FLOPs, bytes, intensity, bound, measured time, fraction of the bound
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from shared.config import Error
from shared.hardware import CHIPS, Chip, detect
from shared.timing import Timing, in_place, timeit


@dataclass(frozen=True)
class Cost:
    flops: float
    bytes: float  # bytes read and written in main memory by the compiled program

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.flops + other.flops, self.bytes + other.bytes)


def cost(fn: Callable, *args) -> Cost:
    """FLOPs and bytes accessed of jit(fn)(*args) from the compiled program's cost analysis.

    args may be arrays or jax.ShapeDtypeStruct (nothing is run). Elementwise ops count
    one FLOP per element, a matmul 2 per multiply-add; bytes are the inputs and outputs
    of every kernel (fusion) the program launches, so fusion lowers them. Transcendentals
    (tanh, exp) are counted apart by XLA and not included; a program of only those has
    0 FLOPs here.
    """
    analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
    flops, nbytes = analysis.get("flops", 0.0), analysis.get("bytes accessed", 0.0)
    if flops < 0 or nbytes < 0:  # e.g. a GPU matmul handed whole to cuBLAS reports -1
        raise Error(f"the compiler reports no cost for {getattr(fn, '__name__', 'fn')} on "
                         f"{jax.devices()[0].platform} (a library call); pass analyze(..., known_cost=Cost(...)) "
                         "with a closed form")
    return Cost(flops, nbytes)


def chip_named(chip: str | Chip | None) -> Chip:
    """A Chip from a name in shared.hardware.CHIPS, a Chip, or None for this machine's."""
    if chip is None:
        return detect()
    if isinstance(chip, Chip):
        return chip
    if chip not in CHIPS:
        raise Error(f"unknown chip {chip!r}; known chips: {', '.join(CHIPS)}")
    return CHIPS[chip]


def peak_flops(chip: Chip, dtype: str) -> float:
    peak = chip.flops(dtype)
    if not peak:
        known = ", ".join(d for d, v in chip.peak_flops.items() if v)
        raise Error(f"{chip.name} has no {jnp.dtype(dtype)} peak in shared.hardware "
                         f"(known: {known or 'none'})")
    return peak


def ridge_point(chip: Chip, dtype: str = "bfloat16") -> float:
    """FLOPs per byte at which dtype's compute ceiling meets the memory ceiling."""
    if not chip.memory_bw:
        raise Error(f"{chip.name} has no memory bandwidth in shared.hardware")
    return peak_flops(chip, dtype) / chip.memory_bw


@dataclass(frozen=True)
class Analysis:
    """One program on one chip: its cost, its roofline bound and (if run) its time."""

    name: str
    cost: Cost
    chip: Chip
    dtype: str  # whose peak FLOP/s is the compute ceiling
    timing: Timing | None = None

    @property
    def peak(self) -> float:
        return peak_flops(self.chip, self.dtype)

    @property
    def intensity(self) -> float:
        return self.cost.intensity

    @property
    def ridge(self) -> float:
        return ridge_point(self.chip, self.dtype)

    @property
    def bound(self) -> str:
        """"compute" or "memory": which ceiling limits this program on this chip."""
        return "compute" if self.intensity >= self.ridge else "memory"

    @property
    def bound_s(self) -> float:
        """Seconds the roofline allows: max(FLOPs / peak, bytes / bandwidth)."""
        return max(self.cost.flops / self.peak, self.cost.bytes / self.chip.memory_bw)

    @property
    def measured_s(self) -> float | None:
        """Best run: the statistic the CPU calibration also uses, so ratios compare like with like."""
        return self.timing.min if self.timing else None

    @property
    def fraction(self) -> float | None:
        """Bound / measured: 1.0 is running at the roofline."""
        return self.bound_s / self.measured_s if self.timing else None

    @property
    def achieved_flops(self) -> float | None:
        return self.cost.flops / self.measured_s if self.timing else None

    @property
    def achieved_bw(self) -> float | None:
        return self.cost.bytes / self.measured_s if self.timing else None

    def row(self) -> dict[str, str]:
        """Formatted columns for a table of several analyses."""
        measured = self.measured_s
        return {
            "program": self.name,
            "GFLOP": f"{self.cost.flops / 1e9:.3g}",
            "MB": f"{self.cost.bytes / 1e6:.3g}",
            "FLOP/B": f"{self.intensity:.3g}",
            "bound": self.bound,
            "bound ms": f"{self.bound_s * 1e3:.3g}",
            "measured ms": f"{measured * 1e3:.3g}" if measured else "-",
            "of bound": f"{self.fraction:.0%}" if measured else "-",
            "GFLOP/s": f"{self.achieved_flops / 1e9:,.4g}" if measured else "-",
            "GB/s": f"{self.achieved_bw / 1e9:,.4g}" if measured else "-",
        }

    def __str__(self) -> str:
        return "  ".join(f"{k} {v}" for k, v in self.row().items())


def format_table(analyses: Sequence[Analysis]) -> str:
    """Analyses as an aligned text table (the benchmark and the notebook print this)."""
    rows = [a.row() for a in analyses]
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in keys}
    lines = ["  ".join(k.rjust(widths[k]) for k in keys)]
    lines += ["  ".join(r[k].rjust(widths[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def analyze(fn: Callable, *args, chip: str | Chip | None = None, dtype: str | None = None,
            name: str | None = None, measure: bool | None = None, runs: int = 5,
            known_cost: Cost | None = None, donate: bool = False) -> Analysis:
    """Cost, roofline bound and (on this machine) measured time of jit(fn)(*args).

    chip: None for this machine (shared.hardware.detect()), or a key of CHIPS for the
    bound the same program would have there. dtype: whose peak is the compute ceiling,
    by default the promoted dtype of the array arguments. measure: run and time it;
    by default only when chip is None, since a time measured here says nothing about
    another chip. known_cost: a closed form to use instead of the compiler's (which GPU
    library calls such as cuBLAS matmuls do not report). donate: time it with the first
    argument's buffer donated and overwritten by the result (shared.timing.in_place), as
    an update of donated parameters runs; fn must return an array like that argument.
    The cost is that of the program as compiled for this machine's backend: another
    backend may fuse or convert differently (the CPU, for one, turns a bf16 matmul
    without preferred_element_type into float32 converts and a float32 dot).
    """
    target = chip_named(chip)
    if dtype is None:
        dtype = str(jnp.result_type(*(x.dtype for x in jax.tree.leaves(args) if hasattr(x, "dtype"))))
    if measure is None:
        measure = chip is None
    timing = None
    if measure:
        timed, timed_args = (in_place(fn, args[0]), args[1:]) if donate else (jax.jit(fn), args)
        timing = timeit(timed, *timed_args, warmup=2, runs=runs)
    return Analysis(name or getattr(fn, "__name__", "fn"), known_cost or cost(fn, *args), target,
                    str(jnp.dtype(dtype)), timing)


def chip_table(chips: Sequence[Chip] | None = None) -> str:
    """Peaks, bandwidth and ridge points: the accelerators of CHIPS plus this machine."""
    chips = list(chips) if chips is not None else [*CHIPS.values(), detect()]
    fmt = lambda x, scale: f"{x / scale:,.4g}" if x else "-"
    head = ("chip", "bf16 TFLOP/s", "int8 TOP/s", "f32 TFLOP/s", "memory GB", "GB/s",
            "ridge bf16 FLOP/B", "ridge f32 FLOP/B", "source")
    rows = [(c.name, fmt(c.flops("bfloat16"), 1e12), fmt(c.flops("int8"), 1e12),
             fmt(c.flops("float32"), 1e12), fmt(c.memory_bytes, 1e9), fmt(c.memory_bw, 1e9),
             *(f"{ridge_point(c, d):.3g}" if c.flops(d) and c.memory_bw else "-"
               for d in ("bfloat16", "float32")), c.source) for c in chips]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in (head, *rows))


def plot_roofline(analyses: Sequence[Analysis], path: str | Path, *, chip: Chip | None = None,
                  dtypes: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Save a log-log roofline PNG: the memory ceiling, one compute ceiling per dtype
    (ridge points marked) and each measured analysis at (intensity, achieved FLOP/s).

    chip defaults to the chip of the first analysis; dtypes to the analyses' dtypes.
    Returns the path written.
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, works headless

    chip = chip or analyses[0].chip
    dtypes = list(dict.fromkeys(dtypes or [a.dtype for a in analyses]))
    measured = [a for a in analyses if a.timing]
    ridges = {d: ridge_point(chip, d) for d in dtypes}
    intensities = [a.intensity for a in analyses] + list(ridges.values())
    lo, hi = min(intensities) / 4, max(intensities) * 4
    x = [lo * (hi / lo) ** (i / 200) for i in range(201)]

    fig = Figure(figsize=(8, 5.5))
    ax = fig.add_subplot()
    top = max(peak_flops(chip, d) for d in dtypes)
    ax.plot(x, [min(chip.memory_bw * i, top) for i in x], color="black",
            label=f"memory: {chip.memory_bw / 1e9:,.3g} GB/s")
    for d, ridge in ridges.items():
        peak = peak_flops(chip, d)
        line, = ax.plot([ridge, hi], [peak, peak], label=f"{d} peak: {peak / 1e9:,.4g} GFLOP/s")
        ax.axvline(ridge, color=line.get_color(), linestyle=":", linewidth=1)
        ax.annotate(f"ridge {ridge:.3g} FLOP/B", (ridge, peak), textcoords="offset points",
                    xytext=(4, -14), fontsize=8, color=line.get_color())
    # Labels: where points share an intensity the highest is labelled above and the rest
    # below; lone points alternate, so labels of neighbours do not run into each other.
    groups: dict[float, list[Analysis]] = {}
    for a in sorted(measured, key=lambda a: (a.intensity, -a.achieved_flops)):
        groups.setdefault(round(a.intensity, 6), []).append(a)
    lone = 0
    for group in groups.values():
        for i, a in enumerate(group):
            above = i == 0 and (len(group) > 1 or lone % 2 == 0)
            lone += len(group) == 1
            ax.scatter([a.intensity], [a.achieved_flops], s=18, zorder=3,
                       color="tab:red" if a.bound == "memory" else "tab:blue")
            ax.annotate(a.name, (a.intensity, a.achieved_flops), textcoords="offset points",
                        xytext=(4, 4 if above else -11), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    lowest = min([chip.memory_bw * lo] + [a.achieved_flops for a in measured])
    ax.set_ylim(lowest / 2, top * 2)
    ax.set_xlabel("arithmetic intensity (FLOPs per byte of memory traffic)")
    ax.set_ylabel("FLOP/s")
    ax.set_title(title or f"Roofline: {chip.name}")
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(loc="lower right", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def mfu(flops: float, seconds: float, chip: Chip, dtype: str = "bfloat16") -> float:
    """Model FLOPs utilisation: FLOP/s achieved over the chip's peak for dtype."""
    return flops / seconds / peak_flops(chip, dtype)


def mbu(nbytes: float, seconds: float, chip: Chip) -> float:
    """Memory bandwidth utilisation: bytes/s moved over the chip's memory bandwidth."""
    return nbytes / seconds / chip.memory_bw

