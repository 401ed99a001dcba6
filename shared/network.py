"""The network hierarchy: each level's bandwidth, what hides it, and a mesh of slices (lesson 04).

A chip reaches its own HBM, its neighbours in the same slice or node (ICI, NVLink), its host
(PCIe) and other slices or nodes (DCN, InfiniBand), each level slower than the one before.
Lesson 04's rule says a sharded matmul hides a collective when FLOPs / peak >= bytes / link,
so every level has an arithmetic intensity it asks for, peak FLOP/s / bytes/s of the level:

    intensity(chip, level) = chip.flops(dtype) / level_bandwidth(chip, level)

Levels (bytes/s one way, per chip, from shared.hardware.CHIPS and LINKS):

    hbm        Chip.memory_bw
    link       one fast link, Chip.link_bw (a TPU ICI port; a GPU's whole NVLink)
    fast       all of a chip's fast links together, link_bw * links (ICI or NVLink)
    pcie       LINKS.pcie_bw
    network    the chip's share of its host's cards, network_bw / chips_per_host (DCN, InfiniBand)

Which parallelism goes where (section 7 of the lesson): FSDP gathers every layer's weights,
so it needs B/n >= (peak / bw) * (b/2) * (n-1)/n tokens per chip over the level it spans;
DP all-reduces the gradients once per step, 6 FLOPs per weight per token against
2 b (n-1)/n bytes per weight, and after FSDP within a slice each chip all-reduces only its
1/n_within of them. So FSDP within a slice and DP across slices asks of the slow level
only (peak / bw) * (b/3) * (n_across-1)/n_across / n_within tokens per chip.

A hybrid mesh is [slices, chips per slice]: `jax.experimental.mesh_utils.create_hybrid_device_mesh`
builds it from the devices' `slice_index` on a multi-slice TPU; simulated CPU devices have
none (and all sit in one process), so `slice_mesh` then cuts the device list into consecutive
blocks itself and says so. `axes_of` reads which mesh axes each compiled collective runs
over from its replica groups, and `bytes_by_level` adds them up per level.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from shared import collectives, hardware
from shared.config import Error

LEVELS = ("hbm", "link", "fast", "pcie", "network")
SLICE, DATA = "slice", "data"  # the hybrid mesh's axes: across slices (slow), within one (fast)

# What the course was quoted for TPU v4 (FLOP/B), to set beside what the table gives.
CLASS_TPU_V4 = {"hbm": 224, "fast": 1018, "pcie": 34375, "network": 88000}


def level_name(chip: str, level: str) -> str:
    """'ICI', 'NVLink', 'DCN', ... : what the level is called on this chip."""
    links = hardware.LINKS[chip]
    return {"hbm": "HBM", "link": f"{links.fast} link", "fast": f"{links.fast} (all links)",
            "pcie": "PCIe", "network": f"{links.network} (per chip)"}[level]


def level_bandwidth(chip: str, level: str) -> float:
    """Bytes/s one way that one chip has at this level (see the module docstring)."""
    if chip not in hardware.LINKS:
        raise Error(f"no link table for {chip!r}; known: {', '.join(hardware.LINKS)}")
    spec, links = hardware.CHIPS[chip], hardware.LINKS[chip]
    bandwidths = {"hbm": spec.memory_bw, "link": spec.link_bw, "fast": spec.link_bw * links.links,
                  "pcie": links.pcie_bw, "network": links.network_bw_per_chip}
    if level not in bandwidths:
        raise Error(f"unknown level {level!r}; valid: {', '.join(LEVELS)}")
    return float(bandwidths[level])


def intensity(chip: str, level: str, dtype: str = "bfloat16") -> float:
    """FLOPs per byte a matmul must do to hide this level's traffic: peak / bandwidth."""
    return hardware.CHIPS[chip].flops(dtype) / level_bandwidth(chip, level)


def _gb(bw: float) -> str:
    gb = bw / 1e9
    return f"{gb:,.0f}" if gb >= 100 else f"{gb:.3g}"


def intensity_rows(chips: Sequence[str] = tuple(hardware.LINKS), dtype: str = "bfloat16") -> list[str]:
    """A printable table: per chip, each level's bandwidth and the intensity it asks for."""
    head = f"{'chip':8s} {'peak':>9s}  " + "  ".join(f"{lv:>18s}" for lv in LEVELS)
    rows = [head, f"{'':8s} {'FLOP/s':>9s}  " + "  ".join(f"{'GB/s -> FLOP/B':>18s}" for _ in LEVELS)]
    for chip in chips:
        cells = [f"{_gb(level_bandwidth(chip, lv)):>7s} -> {intensity(chip, lv, dtype):7,.0f}"
                 for lv in LEVELS]
        rows.append(f"{chip:8s} {hardware.CHIPS[chip].flops(dtype):9.3g}  " + "  ".join(f"{c:>18s}" for c in cells))
    return rows


def class_comparison(dtype: str = "bfloat16") -> list[str]:
    """TPU v4's intensities from the table beside the figures the class was quoted."""
    out = []
    for level, quoted in CLASS_TPU_V4.items():
        ours, bw = intensity("TPU v4", level, dtype), level_bandwidth("TPU v4", level)
        implied = hardware.CHIPS["TPU v4"].flops(dtype) / quoted
        out.append(f"{level_name('TPU v4', level):22s} table {bw:9.3g} B/s -> {ours:7,.0f} FLOP/B;"
                   f" class {quoted:7,} FLOP/B (implies {implied:.3g} B/s, x{bw / implied:.2f} of ours)")
    return out


# ---- which parallelism fits which level ----

def fsdp_tokens(peak: float, bw: float, itemsize: int, n: int) -> float:
    """Tokens per chip, B/n, for FSDP's weight gathers over n chips on a level of bw to hide."""
    return peak / bw * itemsize / 2 * (n - 1) / n


def dp_tokens(peak: float, bw: float, itemsize: int, n_across: int, n_within: int = 1) -> float:
    """Tokens per chip for DP's gradient all-reduce over n_across groups to hide behind the step.

    6 FLOPs per weight per token against 2 b (n-1)/n bytes per weight; with FSDP over
    n_within chips inside each group, a chip all-reduces only its 1/n_within of the weights.
    """
    return peak / bw * itemsize / 3 * (n_across - 1) / n_across / n_within


def tp_width(peak: float, bw: float, itemsize: int, n: int) -> float:
    """Model width E at which TP's activation all-reduces over n chips hide (lesson 04)."""
    return peak / bw * itemsize / 2 * (n - 1)


def placement_rows(chip: str, n_within: int, n_across: int, tp: int = 8, itemsize: int = 2,
                   dtype: str = "bfloat16") -> list[tuple[str, str, str, float]]:
    """(plan, level, what it needs, amount) for n_across slices (nodes) of n_within chips each.

    Collectives over both mesh axes are taken as hierarchical (within, then across), so
    the slow level carries 1/n_within of what a flat ring would make every chip send.
    """
    peak = hardware.CHIPS[chip].flops(dtype)
    fast, slow = level_bandwidth(chip, "fast"), level_bandwidth(chip, "network")
    links = hardware.LINKS[chip]
    return [
        ("FSDP within a slice", links.fast, "tokens per chip",
         fsdp_tokens(peak, fast, itemsize, n_within)),
        ("DP across slices, FSDP within", links.network, "tokens per chip",
         dp_tokens(peak, slow, itemsize, n_across, n_within)),
        ("FSDP across slices too", links.network, "tokens per chip",
         fsdp_tokens(peak, slow, itemsize, n_across) / n_within),
        ("DP across slices, whole weights", links.network, "tokens per chip",
         dp_tokens(peak, slow, itemsize, n_across)),
        (f"TP {tp}-way within a slice", links.fast, "width E", tp_width(peak, fast, itemsize, tp)),
        (f"TP {n_across}-way across slices", links.network, "width E",
         tp_width(peak, slow, itemsize, n_across)),
    ]


def placement_table(chip: str, n_within: int, n_across: int, tp: int = 8, itemsize: int = 2) -> list[str]:
    """placement_rows as printable lines."""
    head = f"{chip}: {n_across} x {n_within} chips, b = {itemsize}"
    return [head] + [f"  {plan:32s} over {level:10s} needs {what} >= {amount:9,.0f}"
                     for plan, level, what, amount in placement_rows(chip, n_within, n_across, tp, itemsize)]


# ---- a mesh of slices ----

def slice_devices(n_slices: int, per_slice: int, devices: Sequence | None = None) -> tuple[np.ndarray, str]:
    """A [n_slices, per_slice] array of devices, and how it was built.

    On a multi-slice TPU every device has a `slice_index` and jax's hybrid helper lays the
    slow (DCN) axis over slices and the fast one within. Simulated CPU devices have no
    slice_index and share one process, which that helper rejects (it groups by slice or by
    process); there, consecutive blocks of per_slice devices stand for the slices.
    """
    devices = list(jax.devices() if devices is None else devices)
    if len(devices) != n_slices * per_slice:
        raise Error(f"{n_slices} slices x {per_slice} need {n_slices * per_slice} devices, got {len(devices)}")
    if all(hasattr(d, "slice_index") for d in devices) and \
            len({d.slice_index for d in devices}) == n_slices:
        from jax.experimental import mesh_utils
        grid = mesh_utils.create_hybrid_device_mesh((1, per_slice), (n_slices, 1), devices)
        return grid, "jax.experimental.mesh_utils.create_hybrid_device_mesh (devices' slice_index)"
    grid = np.array(devices, dtype=object).reshape(n_slices, per_slice)
    return grid, (f"no slice_index on {devices[0].platform} devices: slice i is devices "
                  f"{per_slice}i..{per_slice}i+{per_slice - 1}, a [{n_slices}, {per_slice}] array built by hand")


def slice_mesh(n_slices: int, per_slice: int, devices: Sequence | None = None) -> Mesh:
    """Mesh {slice: n_slices, data: per_slice} with Auto axes (as shared.sharding's meshes)."""
    grid, _ = slice_devices(n_slices, per_slice, devices)
    return Mesh(grid, (SLICE, DATA), axis_types=(AxisType.Auto, AxisType.Auto))


# ---- collectives split by the mesh axes they run over ----

def _instruction_lines(hlo_text: str) -> list[str]:
    """Collective instruction lines, in the order shared.collectives.hlo_collectives reads them."""
    return [line for line in hlo_text.splitlines()
            if line.startswith("  ") and collectives._INSTRUCTION.match(line)]


def axes_of(group: Sequence[int], mesh: Mesh) -> tuple[str, ...]:
    """Mesh axes along which a group's devices differ (partition i is mesh.devices.flat[i])."""
    coords = np.array([np.unravel_index(i, mesh.devices.shape) for i in group])
    return tuple(name for k, name in enumerate(mesh.axis_names) if len(set(coords[:, k])) > 1)


@dataclass(frozen=True)
class Placed:
    """A compiled collective with the mesh axes it runs over (group size read from its groups)."""
    collective: collectives.Collective
    axes: tuple[str, ...]


def placed_collectives(hlo_text: str, mesh: Mesh) -> list[Placed]:
    """Every collective of a compiled program, with the mesh axes its groups span.

    Kinds, shapes, bytes and execution counts come from shared.collectives.hlo_collectives;
    the groups are read here, and each collective's `group` is set to its groups' size.
    """
    found = collectives.hlo_collectives(hlo_text)
    partitions = re.search(r"num_partitions=(\d+)", hlo_text)
    n = int(partitions.group(1)) if partitions else 1
    lines, placed, start = _instruction_lines(hlo_text), [], 0
    for c in found:  # hlo_collectives skips collectives of computations never run: align by kind
        while start < len(lines) and collectives._INSTRUCTION.match(lines[start]).group("kind") != c.kind:
            start += 1
        groups = collectives.replica_groups(lines[start], n)
        start += 1
        axes = sorted({a for g in groups for a in axes_of(g, mesh)}, key=mesh.axis_names.index)
        size = (len(groups) if c.kind == "collective-permute" else len(groups[0])) if groups else 0
        placed.append(Placed(dataclasses.replace(c, group=size), tuple(axes)))
    return placed


def bytes_by_axes(placed: Sequence[Placed]) -> dict[tuple[str, ...], float]:
    """Bytes each device sends per call, summed per set of mesh axes (ring model)."""
    out: dict[tuple[str, ...], float] = {}
    for p in placed:
        out[p.axes] = out.get(p.axes, 0.0) + p.collective.bytes_sent
    return out


def bytes_by_level(placed: Sequence[Placed], slow_axes: Sequence[str] = (SLICE,)) -> dict[str, float]:
    """{'fast': bytes, 'network': bytes}: a collective spanning any slow axis crosses the network."""
    out = {"fast": 0.0, "network": 0.0}
    for p in placed:
        out["network" if set(p.axes) & set(slow_axes) else "fast"] += p.collective.bytes_sent
    return out


def describe_placed(placed: Sequence[Placed], levels: dict[str, str] | None = None) -> list[str]:
    """One line per collective: kind, shape, axes (and their level), bytes each device sends."""
    levels = levels or {SLICE: "DCN", DATA: "ICI"}
    return [f"{p.collective.count}x {p.collective.kind:15s} {p.collective.shape:32s} over "
            f"{'+'.join(p.axes) or '-':10s} ({'/'.join(levels.get(a, a) for a in p.axes) or '-'}): "
            f"{collectives.format_bytes(p.collective.bytes_sent)}" for p in placed]


# ---- the hybrid step: FSDP within a slice, DP across slices ----

def hybrid_step_prediction(B: int, E: int, L: int, n_slices: int, per_slice: int, itemsize: int,
                           grad_reduce: str = "reduce-scatter") -> dict[str, float]:
    """Bytes each device sends per training step of L square layers, per level.

    Weights W[E_data, E] split by rows within a slice, whole across slices; x[B_(slice,data), E].
    fast (within a slice): all-gather each W before its layer, E^2 b (n-1)/n, and reduce its
    gradient over the slice: a reduce-scatter (GPU, TPU) sends the same again, an all-reduce
    then a slice (what XLA does on the CPU) twice that.
    network (across slices): all-reduce of each chip's gradient rows, 2 (E^2 b / n) (s-1)/s.
    """
    if grad_reduce not in ("reduce-scatter", "all-reduce"):
        raise Error(f"grad_reduce must be 'reduce-scatter' or 'all-reduce', not {grad_reduce!r}")
    weight = E * E * itemsize
    share = weight * (per_slice - 1) / per_slice
    fast = L * (share + (2 * share if grad_reduce == "all-reduce" else share))
    network = L * 2 * (weight / per_slice) * (n_slices - 1) / n_slices
    return {"fast": fast, "network": network}


def grad_reduce_for(platform: str) -> str:
    """How XLA reduces a gradient that stays split: a reduce-scatter on GPU and TPU, not on CPU."""
    return "all-reduce" if platform == "cpu" else "reduce-scatter"


def hybrid_init(key: jax.Array, B: int, E: int, L: int, mesh: Mesh, dtype=jnp.float32):
    """L weights W[E_data, E] (FSDP within a slice, whole across) and x[B_(slice,data), E]."""
    keys = jax.random.split(key, L + 1)
    w_sharding = NamedSharding(mesh, P(DATA, None))
    ws = [jax.device_put(jax.random.normal(k, (E, E), dtype) / math.sqrt(E), w_sharding)
          for k in keys[:L]]
    x = jax.device_put(jax.random.normal(keys[L], (B, E), dtype), NamedSharding(mesh, P((SLICE, DATA), None)))
    return ws, x


def stack_loss(ws, x):
    """Mean square of relu(... relu(x @ W_0) ... @ W_L-1): lesson 04's stack, as a loss."""
    for w in ws:
        x = jax.nn.relu(x @ w)
    return jnp.mean(x * x)


def sgd_step(ws, x, lr: float = 0.1):
    """One SGD step on stack_loss: the whole training step, unsharded."""
    grads = jax.grad(stack_loss)(ws, x)
    return [w - lr * g for w, g in zip(ws, grads)]


def hybrid_step(mesh: Mesh, lr: float = 0.1):
    """sgd_step jitted so that the new weights keep W[E_data, E] on this mesh."""
    return jax.jit(lambda ws, x: sgd_step(ws, x, lr), out_shardings=NamedSharding(mesh, P(DATA, None)))
