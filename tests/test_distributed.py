"""Device set-up: the too-late error, and two processes joined by jax.distributed on localhost."""

import re
import sys

import jax
import numpy as np
import pytest

from shared import devices
from shared.devices import DeviceSetupError


def test_simulate_devices_after_start():
    jax.devices()  # start the backends, whichever tests ran before this one
    devices.simulate_cpu_devices(8)  # what conftest asked for: fine again
    with pytest.raises(DeviceSetupError, match=r"already started with 8 CPU device\(s\)") as e:
        devices.simulate_cpu_devices(4)
    assert "\n" not in str(e.value), "the error should be one line"


@pytest.mark.parametrize("args, message", [
    (("localhost:1234", 2, None), "give all of coordinator address"),
    (("localhost", 2, 0), "must be host:port"),
    (("localhost:1234", 2, 2), r"process id must be in \[0, 2\)"),
])
def test_distributed_arguments_are_checked(args, message):
    with pytest.raises(DeviceSetupError, match=message):
        devices.initialize_distributed(*args)


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(DeviceSetupError, match="JAX_NUM_PROCESSES must be an integer"):
        devices.initialize_distributed()


@pytest.mark.skipif(sys.platform == "win32", reason="jax.distributed CPU collectives (gloo) need Linux or macOS")
def test_two_processes_compute_one_sum():
    lines = devices.launch_local(num_processes=2, local_devices=2, timeout_s=120)
    assert len(lines) == 2, f"want one result per process, got {lines}"
    # The same global array in this one process: 2 processes x 4 rows x 4 columns of 0, 1, 2, ...
    one_process = float(np.arange(2 * 4 * 4, dtype=np.float32).sum())
    for i, line in enumerate(lines):
        m = re.search(r"process (\d)/2: .*global devices (\d+).*sum ([\d.]+)", line)
        assert m, f"process {i} printed {line!r}"
        assert int(m.group(1)) == i and int(m.group(2)) == 4, f"process {i}: {line}"
        assert float(m.group(3)) == one_process, \
            f"process {i} summed {m.group(3)}, one process sums {one_process}"
