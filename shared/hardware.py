"""What device this is, and its peak FLOP/s and memory bandwidth (lesson 01).

Accelerators are looked up in a table of published figures (each with its source);
the CPU is measured by a short calibration, because no table knows a learner's
laptop. An accelerator missing from the table is reported as unknown, never guessed.
A calibration while other programs keep the cores busy comes out low; busy_note() says so.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from shared.timing import Load, LoadWatch, in_place, timeit

GB = 1e9  # a decimal gigabyte, as NVIDIA and most Cloud TPU pages quote memory
GiB = 2**30  # a binary gibibyte, as the Cloud TPU v4 and v5p pages quote it


@dataclass(frozen=True)
class Chip:
    name: str
    peak_flops: dict[str, float | None]  # by compute dtype: "bfloat16", "float32", "int8"
    memory_bw: float | None  # bytes/s read + written between the chip and its main memory (HBM or DRAM)
    memory_bytes: float | None = None  # bytes of main memory (HBM), written N * GB or N * GiB as quoted
    link_bw: float | None = None  # bytes/s one way over one chip-to-chip link
    source: str = ""
    measured: bool = False  # True when the figures come from calibration on this machine
    # bytes/s of a read-only stream where it differs from memory_bw: a few CPU cores cannot
    # keep enough reads in flight to fill the memory bus; HBM datasheets quote one figure.
    read_only_bw: float | None = None
    notes: dict[str, str] = field(default_factory=dict, compare=False)
    # other programs' use of the cores while the figures were calibrated (None: not measured here)
    load: Load | None = field(default=None, compare=False)

    def flops(self, dtype: str = "bfloat16") -> float | None:
        return self.peak_flops.get(str(jnp.dtype(dtype)))

    @property
    def read_bw(self) -> float | None:
        """Bytes/s when only reading, as a decode step reading its weights does."""
        return self.read_only_bw or self.memory_bw


# Dense peaks as published: the vendor's datasheet or Cloud TPU page that each row names in
# `source` (per-link figures from jax-ml/scaling-book, "How to Scale Your Model", chapters
# on TPUs and GPUs). Memory sizes are bytes, written in the unit the source quotes: Google
# gives v4 and v5p in GiB, v5e and v6e in GB, NVIDIA gives GB.
CHIPS: dict[str, Chip] = {
    "TPU v4": Chip(name="TPU v4", peak_flops={"bfloat16": 2.75e14, "int8": 2.75e14},
                   memory_bw=1.2e12, memory_bytes=32 * GiB, link_bw=4.5e10,
                   source="cloud.google.com/tpu/docs/v4; jax-ml/scaling-book"),
    "TPU v5e": Chip(name="TPU v5e", peak_flops={"bfloat16": 1.97e14, "int8": 3.94e14},
                    memory_bw=8.2e11, memory_bytes=16 * GB, link_bw=4.5e10,
                    source="cloud.google.com/tpu/docs/v5e; jax-ml/scaling-book"),
    "TPU v5p": Chip(name="TPU v5p", peak_flops={"bfloat16": 4.59e14, "int8": 9.18e14},
                    memory_bw=2.765e12, memory_bytes=95 * GiB, link_bw=1.0e11,
                    source="cloud.google.com/tpu/docs/v5p; jax-ml/scaling-book "
                           "(1.2e12 bidirectional per chip over 6 links)"),
    "TPU v6e": Chip(name="TPU v6e", peak_flops={"bfloat16": 9.18e14, "int8": 1.836e15},
                    memory_bw=1.638e12, memory_bytes=32 * GB, link_bw=1.0e11,
                    source="cloud.google.com/tpu/docs/v6e (8e11 bidirectional per chip over 4 links)"),
    "A100": Chip(name="NVIDIA A100 SXM 80GB", peak_flops={"bfloat16": 3.12e14, "int8": 6.24e14},
                 memory_bw=2.039e12, memory_bytes=80 * GB, link_bw=3e11,
                 source="NVIDIA A100 datasheet; NVLink 3 per direction"),
    "H100": Chip(name="NVIDIA H100 SXM", peak_flops={"bfloat16": 9.89e14, "int8": 1.979e15},
                 memory_bw=3.35e12, memory_bytes=80 * GB, link_bw=4.5e11,
                 source="NVIDIA H100 datasheet; NVLink 4 per direction"),
    "H200": Chip(name="NVIDIA H200", peak_flops={"bfloat16": 9.89e14, "int8": 1.979e15},
                 memory_bw=4.8e12, memory_bytes=141 * GB, link_bw=4.5e11,
                 source="NVIDIA H200 datasheet"),
    "B200": Chip(name="NVIDIA B200", peak_flops={"bfloat16": 2.25e15, "int8": 4.5e15},
                 memory_bw=8.0e12, memory_bytes=192 * GB, link_bw=9e11,
                 source="NVIDIA B200 datasheet (int8 column: fp8)"),
}


@dataclass(frozen=True)
class Links:
    """The levels of the network below a chip's HBM (lesson 04), bytes/s one way.

    A chip talks to its neighbours over a fast level (TPU: ICI links in a torus; GPU: NVLink
    through the node's NVSwitches), to its host over PCIe, and to chips in other slices or
    nodes through its host's network card (TPU: the data-center network, DCN; GPU:
    InfiniBand or Ethernet, one card per GPU). `Chip.link_bw` is one fast link; `links` says
    how many of them a chip has. The network is quoted per host and shared by its chips.
    """
    fast: str  # "ICI" or "NVLink": within a slice (TPU) or a node (GPU)
    links: int  # how many of Chip.link_bw a chip drives at once (TPU: torus ports; GPU: 1, see below)
    pcie_bw: float  # host <-> chip, one way, per chip
    network: str  # "DCN" or "InfiniBand": across slices or nodes
    network_bw: float  # one host's (node's) network cards together, one way
    chips_per_host: int  # chips sharing those cards
    domain: int  # most chips one fast level joins: a TPU pod, a GPU NVLink node
    source: str = ""

    @property
    def network_bw_per_chip(self) -> float:
        return self.network_bw / self.chips_per_host


Gbit = 1e9 / 8  # bytes/s of one gigabit per second, as network cards are quoted

# One row per CHIPS entry. TPU figures: jax-ml/scaling-book, "How to Think About TPUs"
# (https://jax-ml.github.io/scaling-book/tpus/, section "TPU Specs": PCIe ~1.6e10 B/s per TPU,
# 3.2e10 on v6e; DCN ~6.25e9 B/s per TPU, 12.5e9 on v6e, 3.125e9 on v5e; v4 and v5p are 3-D
# tori, six neighbours; v5e and v6e 2-D tori, four) and the Cloud TPU pages named per row.
# GPU figures: NVIDIA's datasheets (NVLink and PCIe are quoted there as both directions
# together; halved here) and the DGX systems' network cards (one card per GPU); the
# scaling book's "How to Think About GPUs" (https://jax-ml.github.io/scaling-book/gpus/)
# gives the same 450e9 NVLink and 400e9 per-node InfiniBand for an H100 node.
LINKS: dict[str, Links] = {
    # cloud.google.com/tpu/docs/v4: 4096-chip pod, 3-D torus; 4 chips per host (2x2x1).
    # DCN: scaling book's 6.25e9 per TPU x 4 chips; ICI 4.5e10 per link (Chip.link_bw) x 6.
    "TPU v4": Links("ICI", 6, 1.6e10, "DCN", 4 * 6.25e9, 4, 4096,
                    "scaling-book tpus (PCIe, DCN per TPU, 6 links); cloud.google.com/tpu/docs/v4"),
    # cloud.google.com/tpu/docs/v5e: 4 ICI ports, 8 chips per host, "2 x 100 Gbps NIC" per host
    # (= the scaling book's 3.125e9 per chip). Google's 400 GB/s bidirectional ICI per chip is
    # 5e10 per port one way; Chip.link_bw keeps the scaling book's 4.5e10.
    "TPU v5e": Links("ICI", 4, 1.6e10, "DCN", 2 * 100 * Gbit, 8, 256,
                     "cloud.google.com/tpu/docs/v5e (NICs, ports); scaling-book tpus (PCIe)"),
    # cloud.google.com/tpu/docs/v5p: 1200 GB/s bidirectional ICI per chip (6 x 1e11 one way),
    # "DCN bandwidth per chip 50 Gbps" (= 6.25e9 B/s), 4 chips per host, 8960-chip pod.
    "TPU v5p": Links("ICI", 6, 1.6e10, "DCN", 4 * 50 * Gbit, 4, 8960,
                     "cloud.google.com/tpu/docs/v5p (ICI, DCN per chip); scaling-book tpus (PCIe)"),
    # cloud.google.com/tpu/docs/v6e: 800 GB/s bidirectional ICI per chip over 4 ports, 8 chips
    # per host, PCIe Gen5; PCIe 3.2e10 and DCN 12.5e9 per TPU from the scaling book.
    "TPU v6e": Links("ICI", 4, 3.2e10, "DCN", 8 * 12.5e9, 8, 256,
                     "cloud.google.com/tpu/docs/v6e (ports, chips per host); scaling-book tpus (PCIe, DCN)"),
    # A GPU's NVLink ports all go to the NVSwitches, so one GPU can send Chip.link_bw (its
    # whole NVLink bandwidth, one way) to any peer: links = 1. A100 datasheet
    # (nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf):
    # NVLink 600 GB/s, PCIe Gen4 64 GB/s; DGX A100: 8 x ConnectX-6 200 Gb/s HDR InfiniBand.
    "A100": Links("NVLink", 1, 32e9, "InfiniBand", 8 * 200 * Gbit, 8, 8,
                  "NVIDIA A100 datasheet (NVLink 600 GB/s, PCIe Gen4 64 GB/s); DGX A100 (8 x 200 Gb/s)"),
    # nvidia.com/en-us/data-center/h100: NVLink 900 GB/s, PCIe Gen5 128 GB/s; DGX H100: eight
    # single-port ConnectX-7, 400 Gb/s InfiniBand (docs.nvidia.com/dgx-basepod, core components).
    "H100": Links("NVLink", 1, 64e9, "InfiniBand", 8 * 400 * Gbit, 8, 8,
                  "NVIDIA H100 datasheet (NVLink 900 GB/s, PCIe Gen5 128 GB/s); DGX H100 (8 x 400 Gb/s)"),
    # nvidia.com/en-us/data-center/h200: NVLink 900 GB/s, PCIe Gen5 128 GB/s; DGX H200 has the
    # DGX H100's eight 400 Gb/s ConnectX-7 (docs.nvidia.com/dgx-basepod, core components).
    "H200": Links("NVLink", 1, 64e9, "InfiniBand", 8 * 400 * Gbit, 8, 8,
                  "NVIDIA H200 datasheet (NVLink 900 GB/s, PCIe Gen5 128 GB/s); DGX H200 (8 x 400 Gb/s)"),
    # NVLink 5: 1.8 TB/s per GPU (docs.nvidia.com/dgx/dgxgb200-user-guide/networking.html);
    # DGX B200 user guide (docs.nvidia.com/dgx/dgxb200-user-guide): PCIe Gen5 hosts, eight
    # single-port ConnectX-7 up to 400 Gb/s; PCIe Gen5 x16 is 64e9 each way.
    "B200": Links("NVLink", 1, 64e9, "InfiniBand", 8 * 400 * Gbit, 8, 8,
                  "NVIDIA NVLink 5 (1.8 TB/s per GPU); DGX B200 user guide (PCIe Gen5, 8 x 400 Gb/s)"),
}

# device_kind strings as JAX reports them, matched in order (v5 lite is v5e, v6 lite is v6e).
_KINDS = [("v5 lite", "TPU v5e"), ("v5e", "TPU v5e"), ("v6 lite", "TPU v6e"), ("v6e", "TPU v6e"),
          ("v5p", "TPU v5p"), ("tpu v5", "TPU v5p"), ("tpu v4", "TPU v4"), ("a100", "A100"),
          ("h100", "H100"), ("h200", "H200"), ("b200", "B200")]


def lookup(device_kind: str) -> Chip | None:
    kind = device_kind.lower()
    return next((CHIPS[name] for key, name in _KINDS if key in kind), None)


def _matmul_peak(dtype, n: int = 2048) -> float:
    """Best FLOP/s of an n^3 matmul with float32 (int32 for int8) accumulation.

    The best over half a second of runs, not five: a peak measured while other programs
    briefly use the cores comes out low, and every MFU divided by it comes out high.
    """
    acc = jnp.int32 if jnp.dtype(dtype) == jnp.int8 else jnp.float32
    a = jnp.ones((n, n), dtype)
    b = jnp.ones((n, n), dtype)
    f = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=acc))
    return 2 * n**3 / timeit(f, a, b, warmup=2, runs=5, min_time=0.5).min


def _stream_bandwidths(mbytes: int = 256) -> tuple[float, float]:
    """Best bytes/s (read + write, read only) over an array far larger than any cache.

    Read + write is an in-place update (x donated, so the result overwrites it): a copy
    into a new buffer would also time the operating system handing over fresh pages,
    which on a CPU costs more than the streaming itself. Read only is a row sum, split
    over the cores by rows.
    """
    x = jnp.ones((4096, mbytes * 2**20 // 4 // 4096), jnp.float32)  # [rows, columns]
    update = timeit(in_place(lambda x: x + 1.0, x), warmup=2, runs=5).min
    read = timeit(jax.jit(lambda x: x.sum(axis=1)), x, warmup=2, runs=5).min
    return 2 * x.nbytes / update, x.nbytes / read


@functools.cache
def _calibrated_cpu(device_kind: str, dtypes: tuple[str, ...], memory: bool) -> Chip:
    # Best of two sizes: 1024^3 runs from cache, 2048^3 from memory; the peak is the higher.
    watch = LoadWatch()
    peaks = {str(jnp.dtype(d)): max(_matmul_peak(d, n) for n in (1024, 2048)) for d in dtypes}
    read_write, read = _stream_bandwidths() if memory else (None, None)
    streams = ", in-place update and row sum of 256 MiB" if memory else ""
    return Chip(f"CPU ({device_kind or 'host'})", peaks, read_write, read_only_bw=read,
                source=f"calibrated on this machine: best of 1024^3 and 2048^3 matmuls{streams}",
                measured=True, load=watch.read())


def detect(dtypes: tuple[str, ...] = ("float32", "bfloat16"), memory: bool = True) -> Chip:
    """The first device's chip: table figures for accelerators, a calibration for the CPU.

    On a CPU the calibration measures the matmul peak of each of `dtypes` (about a second
    each) and, with `memory`, the memory bandwidths, once per process for each request: a
    training run asks only for its compute dtype's peak, the one its MFU divides by.
    """
    device = jax.devices()[0]
    if device.platform == "cpu":
        return _calibrated_cpu(device.device_kind, tuple(str(jnp.dtype(d)) for d in dtypes), memory)
    chip = lookup(device.device_kind)
    return chip or Chip(f"unknown accelerator ({device.device_kind})", {}, None,
                        source="not in the table; add its datasheet figures to shared/hardware.py")


def busy_note(chip: Chip, work: Load | None = None, doing: str = "the work ran") -> str | None:
    """One line when other programs kept the cores busy while the chip was calibrated or while
    `doing` (`work`: the load then), else None: also for a datasheet peak, or with no reading.

    A calibration shares the cores with them, so its peaks come out low and every MFU or MBU
    divided by them high; work sharing the cores takes longer, so its MFU comes out low.
    """
    calibrating = chip.load is not None and chip.load.busy
    working = work is not None and work.busy
    if not chip.measured or not (calibrating or working):
        return None
    used = [f"{chip.load} while the peaks were calibrated"] * calibrating + [f"{work} while {doing}"] * working
    effects = (["the calibrated peaks may be low and MFU or MBU high"] * calibrating
               + ["times may be long and MFU or MBU low"] * working)
    return (f"the machine was busy (other programs used {' and '.join(used)}): "
            f"{'; '.join(effects)}; rerun on a quiet machine")


def cpu() -> str:
    """This machine's CPU as a figure or a benchmark names it: '2 cores of AMD EPYC' (the cores
    this process may use; the model name from /proc/cpuinfo where the system has it)."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name")), name)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores of {name}"


def describe(chip: Chip) -> str:
    """One line: the peaks, the memory bandwidth and their source. A table's missing figure
    shows as unknown; a calibration shows only what it measured (detect's dtypes and memory)."""
    fmt = lambda x, unit: f"{x / 1e9:,.0f} G{unit}" if x else "unknown"
    rows = [(d, chip.flops(d), "FLOP/s") for d in ("float32", "bfloat16")] + [("memory", chip.memory_bw, "B/s")]
    shown = [f"{label} {fmt(x, unit)}" for label, x, unit in rows if x or not chip.measured]
    reads = f", reading only {fmt(chip.read_only_bw, 'B/s')}" if chip.read_only_bw else ""
    return f"{chip.name}: {', '.join(shown)}{reads} ({chip.source})"
