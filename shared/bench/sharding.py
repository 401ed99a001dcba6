"""Sharding strategies and collectives on this machine's devices (8 simulated on a CPU)."""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import collectives, hardware, sharding
from shared.bench import _flags
from shared.config import ConfigError
from shared.course import mine
from shared.devices import simulate_cpu_devices
from shared.timing import LoadWatch, timeit

HELP = ("sharding strategies (step time, bytes per device from the HLO vs the model) and "
        "collectives (time vs the ring model) on the available devices")

COMMAND = "python -m shared.bench sharding"  # its pieces: shared.course.mine.BUILDS
MiB = 2**20
# The CPU sizes run in seconds on 2 cores; B > E so FSDP's weight gathers are the cheap choice.
SIZES = {"cpu": dict(B=2048, E=512, L=4, collective_mib=[1, 16]),
         "accelerator": dict(B=16384, E=8192, L=4, collective_mib=[16, 256])}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=8, help="simulated CPU devices (CPU only)")
    parser.add_argument("--model", type=int, default=2, help="model-axis size for fsdp_tp")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per row (the median is shown)")
    mine.add_switch(parser)


def link_bandwidth(chip: hardware.Chip, n: int) -> tuple[float, str]:
    """Bytes/s one device can send, for the ring model, and where the figure comes from."""
    if chip.link_bw:
        return chip.link_bw, f"{chip.link_bw / 1e9:.0f} GB/s per link, one way ({chip.source})"
    # Simulated devices copy through one shared memory: each byte sent is read and written
    # once, and all n devices send at the same time.
    bw = chip.memory_bw / (2 * n)
    return bw, (f"{bw / 1e9:.2f} GB/s = calibrated memory bandwidth {chip.memory_bw / 1e9:.1f} GB/s "
                f"/ (2 x {n} devices sharing it)")


def collective_by_hand(x, ws, mesh):
    """tp_gather with each layer's all-gather written as a ring overlapping the matmul."""
    for w in ws:
        x = jax.nn.relu(collectives.collective_matmul(x, w, mesh, sharding.MODEL))
    return x


def strategy_rows(devices, sizes, dtype, chip, link_bw, model, runs) -> list[str]:
    B, E, L = sizes["B"], sizes["E"], sizes["L"]
    peak = chip.flops(dtype)
    rows = [f"{'strategy':17s} {'mesh':>6s} {'step ms':>9s} {'GFLOP/dev':>9s} {'HLO MB/dev':>10s} "
            f"{'model MB/dev':>12s} {'compute ms':>10s} {'comm ms':>8s}  collectives in the HLO"]
    variants = [(s, s) for s in sharding.STACK] + [("tp_gather", "collective matmul")]
    for strategy, label in variants:
        mesh = sharding.stack_mesh(strategy, devices, model)
        x, ws = sharding.stack_init(jax.random.key(0), B, E, L, strategy, mesh, dtype)
        if label == "collective matmul":
            f = jax.jit(lambda x, ws: collective_by_hand(x, ws, mesh))
        else:
            f = jax.jit(lambda x, ws, s=strategy: sharding.stack_forward(x, ws, s, mesh))
        found = collectives.compiled_collectives(f, x, ws)
        predicted = sharding.stack_prediction(strategy, B, E, L, mesh, dtype)
        t = timeit(f, x, ws, warmup=1, runs=runs).median
        flops = 2 * B * E * E * L / len(devices)  # every strategy splits the work evenly
        hlo_bytes = sum(c.bytes_sent for c in found)
        model_bytes = sum(c.bytes_sent for c in predicted)
        shape = f"{mesh.shape[sharding.DATA]}x{mesh.shape[sharding.MODEL]}"
        rows.append(f"{label:17s} {shape:>6s} {t * 1e3:9.2f} {flops / 1e9:9.3f} {hlo_bytes / 1e6:10.2f} "
                    f"{model_bytes / 1e6:12.2f} {flops / peak * 1e3:10.2f} "
                    f"{model_bytes / link_bw * 1e3:8.2f}  {collectives.summarize(found)}")
        del x, ws
    return rows


def collective_rows(devices, sizes, dtype, link_bw, runs) -> list[str]:
    n = len(devices)
    mesh = sharding.make_mesh({"x": n}, devices)
    itemsize = jnp.dtype(dtype).itemsize
    rows = [f"{'collective':20s} {'m MiB':>6s} {'measured ms':>11s} {'model ms':>9s} {'measured/model':>14s}"]
    for mib in sizes["collective_mib"]:
        v = mib * MiB // itemsize  # elements of m
        for kind, fn in collectives.COLLECTIVES.items():
            per_device = v // n if kind == "all-gather" else v  # all-gather's input is m/n
            x = jax.device_put(jnp.ones((n, per_device), dtype), NamedSharding(mesh, P("x")))
            f = jax.jit(lambda x, fn=fn: fn(x, mesh, "x"))
            measured = timeit(f, x, warmup=1, runs=runs).median
            model = collectives.collective_seconds(kind, v * itemsize, n, link_bw)
            rows.append(f"{kind:20s} {mib:6d} {measured * 1e3:11.2f} {model * 1e3:9.2f} "
                        f"{measured / model:14.1f}")
            del x
    return rows


def check(args: argparse.Namespace) -> None:
    """Every flag's bad values, one line each, before any JAX work (shared.bench._flags). The
    sizes split evenly over a power of two of devices (B = 2048, E = 512 on a CPU)."""
    _flags.power_of_two(args, "devices", 2, 512)
    _flags.power_of_two(args, "model", 1, 512)
    if args.model > args.devices:
        raise ConfigError(f"--model {args.model} must divide --devices {args.devices} "
                          f"(a power of two up to {args.devices})")
    _flags.at_least(args, 1, "runs")


def run(args: argparse.Namespace) -> None:
    check(args)
    start = time.perf_counter()
    simulate_cpu_devices(args.devices)  # only the CPU backend; must precede any JAX work
    devices = jax.devices()
    platform = devices[0].platform
    if len(devices) < 2:
        if platform != "cpu":
            print(f"sharding needs several devices and this machine has 1 {platform} device; "
                  f"run `JAX_PLATFORMS=cpu python -m shared.bench sharding` to use "
                  f"{args.devices} simulated CPU devices instead", file=sys.stderr)
            sys.exit(1)
        print(f"sharding needs several devices; got 1 (--devices {args.devices})", file=sys.stderr)
        sys.exit(1)
    on_cpu = platform == "cpu"
    sizes = SIZES["cpu" if on_cpu else "accelerator"]
    dtype = "float32" if on_cpu else "bfloat16"
    chip = hardware.detect()
    link_bw, link_about = link_bandwidth(chip, len(devices))
    print(hardware.describe(chip))
    print(f"{len(devices)} {platform} devices{' (simulated: one CPU, one memory)' if on_cpu else ''}; "
          f"ring model link: {link_about}")
    print(f"\nStack of {sizes['L']} layers x [{sizes['B']}, {sizes['E']}] @ [{sizes['E']}, {sizes['E']}], "
          f"{dtype}, forward step. compute ms = FLOPs / peak; comm ms = model bytes / link.")
    pieces = mine.chosen(args, COMMAND)
    if args.mine or args.solutions:
        print("your pieces: " + mine.describe(pieces, args.solutions, COMMAND)
              + " (the fsdp row runs it)")
    watch = LoadWatch()
    with mine.plugged_in(pieces):
        print("\n".join(strategy_rows(devices, sizes, dtype, chip, link_bw, args.model, args.runs)))
    print(f"\nCollectives over all {len(devices)} devices, m as in shared.collectives "
          f"(the gathered, unreduced or per-device buffer), {dtype}.")
    print("\n".join(collective_rows(devices, sizes, dtype, link_bw, args.runs)))
    note = hardware.busy_note(chip, watch.read(), "the rows were timed")
    if note:
        print(note)
    print(f"({time.perf_counter() - start:.0f} s in all)")
