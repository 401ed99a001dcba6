"""`python -m shared.devices`: one process of the multi-process demo, or --launch N of them.

    python -m shared.devices --launch 2     # two processes on localhost, 2 CPU devices each

Each process holds rows of one global array; together they sum it on every device.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from shared.devices import (DeviceSetupError, add_distributed_arguments, global_array,
                            initialize_distributed, launch_local, simulate_cpu_devices)


def demo() -> str:
    """Each process holds rows of one global [R, 4] array; together they sum it on every device."""
    me, n = jax.process_index(), jax.process_count()
    mesh = Mesh(np.array(jax.devices()), ("data",))  # every process's devices, in process order
    rows = 2 * len(jax.local_devices())  # rows each process holds
    total_rows = rows * n
    local = np.arange(me * rows * 4, (me + 1) * rows * 4, dtype=np.float32).reshape(rows, 4)
    x = global_array(local, mesh, P("data"))  # [total_rows, 4], split over all devices
    total = jax.jit(lambda x: x.sum(), out_shardings=NamedSharding(mesh, P()))(x)
    expected = total_rows * 4 * (total_rows * 4 - 1) / 2  # 0 + 1 + ... + (4R - 1)
    return (f"process {me}/{n}: local devices {len(jax.local_devices())}, global devices "
            f"{len(jax.devices())}, global array {x.shape} built from local {local.shape}, "
            f"sum {float(total.addressable_data(0)):.1f}, expected {expected:.1f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.devices", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_distributed_arguments(parser)
    parser.add_argument("--local-devices", type=int, default=2, help="CPU devices per process")
    parser.add_argument("--launch", type=int, metavar="N",
                        help="start N processes of this demo on localhost and print their output")
    args = parser.parse_args(argv)
    try:
        if args.launch:
            print("\n".join(launch_local(args.launch, args.local_devices)))
            return 0
        simulate_cpu_devices(args.local_devices)
        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
        print(demo(), flush=True)
        jax.distributed.shutdown()
    except DeviceSetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
