"""Several devices: simulated CPU devices, or processes joined by jax.distributed (lessons 03-04).

One machine: `simulate_cpu_devices(8)` right after `import jax` makes the CPU appear
as 8 devices, so every sharding idea runs on a laptop (all 8 share the same cores
and memory: they show what is communicated, not how fast a network would be).

Several processes (one per host on a real cluster, or several on localhost here):
`initialize_distributed` joins them into one JAX runtime; `jax.devices()` then lists
every process's devices, and `global_array` assembles one array from the part each
process holds. Demo: `python -m shared.devices --launch 2` starts two processes on
localhost, each with 2 CPU devices, that compute one sharded sum together (the
demo is this package's __main__).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
from typing import Iterator, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from shared.config import Error


class DeviceSetupError(Error, RuntimeError):
    """Devices cannot be set up as asked; the message is one line saying what to do.
    (A RuntimeError too, as it was before the common Error class.)"""


def simulate_cpu_devices(n: int = 8) -> None:
    """Make the CPU backend present n devices. Call before any JAX operation runs.

    Idempotent: calling it again with the same n, even after JAX started, is fine.
    Accelerators are unaffected; on a GPU machine the CPU devices are there beside
    the GPUs (`jax.devices("cpu")`), which is what `sharding_devices` falls back to.
    """
    if n < 1:
        raise DeviceSetupError(f"simulate_cpu_devices needs n >= 1, got {n}")
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # JAX refuses once its backends have started
        have = len(jax.devices("cpu"))
        if have != n:
            raise DeviceSetupError(
                f"JAX already started with {have} CPU device(s); call simulate_cpu_devices({n}) "
                "right after `import jax`, before any JAX operation (in a notebook: restart "
                "the kernel)") from None


def sharding_devices(n: int = 8) -> list[jax.Device]:
    """The devices to shard over: the accelerators if there are several, else n CPU devices.

    Sharding needs several devices; a machine with one GPU or TPU falls back to the
    simulated CPU devices, which needs simulate_cpu_devices(n) to have run first.
    """
    devices = jax.devices()
    if len(devices) > 1:
        return devices
    cpus = jax.devices("cpu")
    if len(cpus) < 2:
        raise DeviceSetupError(
            f"sharding needs several devices and this process has 1 {devices[0].platform} "
            f"device; call shared.devices.simulate_cpu_devices({n}) right after `import jax`")
    return cpus[:n]


# ---- several processes ----

def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--coordinator", help="host:port of process 0 (env JAX_COORDINATOR_ADDRESS)")
    parser.add_argument("--num-processes", type=int, help="processes in the job (env JAX_NUM_PROCESSES)")
    parser.add_argument("--process-id", type=int, help="this process's rank, 0-based (env JAX_PROCESS_ID)")


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, *, timeout_s: int = 60) -> None:
    """Join this process to a multi-process JAX job; arguments default to environment variables.

    JAX_COORDINATOR_ADDRESS (host:port where process 0 listens), JAX_NUM_PROCESSES and
    JAX_PROCESS_ID. With none of them set, JAX's own cluster detection runs (TPU pods,
    SLURM, ...). Must run before any JAX operation. On the CPU, cross-process
    collectives go over TCP with gloo.
    """
    env = os.environ
    coordinator = coordinator or env.get("JAX_COORDINATOR_ADDRESS")
    try:
        num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
        process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    except ValueError as e:
        raise DeviceSetupError(str(e)) from None
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise DeviceSetupError("give all of coordinator address, number of processes and process "
                               "id (flags or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID)")
    if all(given):
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit():
            raise DeviceSetupError(f"coordinator address must be host:port, got {coordinator!r}")
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise DeviceSetupError(f"process id must be in [0, {num_processes}), got {process_id}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=timeout_s)
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DeviceSetupError(f"jax.distributed.initialize failed: {first}") from None


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    if not value.strip().lstrip("-").isdigit():
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def global_array(local_data: np.ndarray, mesh: Mesh, spec: P) -> jax.Array:
    """One global array from each process's part: the parts are stacked in process order
    along the sharded dimensions (each process passes an equal-sized part)."""
    return jax.make_array_from_process_local_data(NamedSharding(mesh, spec), local_data)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def started(commands: Sequence[Sequence[str]], env: dict[str, str] | None = None) -> Iterator[list[subprocess.Popen]]:
    """Start every command at once, stdout and stderr captured together as text; on leaving
    the block (finished, failed or timed out) kill whichever are still running."""
    procs = [subprocess.Popen(list(c), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for c in commands]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def launch_local(num_processes: int = 2, local_devices: int = 2, timeout_s: float = 60) -> list[str]:
    """Run the demo (shared/devices/__main__.py) as num_processes processes on localhost; return
    each one's result line.

    Every process is killed if the job has not finished within timeout_s.
    """
    coordinator = f"localhost:{free_port()}"
    commands = [[sys.executable, "-m", "shared.devices", "--coordinator", coordinator,
                 "--num-processes", str(num_processes), "--process-id", str(i),
                 "--local-devices", str(local_devices)] for i in range(num_processes)]
    deadline = time.monotonic() + timeout_s
    results = []
    with started(commands) as procs:
        try:
            for i, p in enumerate(procs):
                out, _ = p.communicate(timeout=max(deadline - time.monotonic(), 0.1))
                lines = out.strip().splitlines() or [""]
                if p.returncode:
                    raise DeviceSetupError(f"process {i} exited with {p.returncode}: {lines[-1]}")
                results.append(next((l for l in lines if l.startswith("process ")), lines[-1]))
        except subprocess.TimeoutExpired:
            raise DeviceSetupError(f"the {num_processes} processes did not finish in {timeout_s:.0f} s") from None
    return results
