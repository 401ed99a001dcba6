"""Two processes on localhost train together and reach the loss one process reaches alone.

`python -m shared.train` joins a jax.distributed job from its flags; each process
holds 2 simulated CPU devices and builds only its own rows of every batch. The same
run in one process with 4 devices sees the same global batches on the same mesh
shape, so its losses must agree up to float32 rounding of the cross-process sums.
"""

import os
import re
import subprocess
import sys
import time

import pytest

from shared import devices

TIMEOUT_S = 240  # a bound, not a benchmark: three short runs on a loaded 2-core machine


def corpus(path):
    path.write_text("".join(f"def f{i % 13}(x, y):\n    return x * {i % 7} + y  # {i}\n"
                            for i in range(900)))
    return str(path)


def command(data, out, name, n_devices, extra=()):
    return [sys.executable, "-m", "shared.train", "--preset", "tiny", "--data", data,
            "--steps", "3", "--batch-size", "4", "--sample-tokens", "0", "--strategy", "fsdp",
            "--devices", str(n_devices), "--out", str(out), "--name", name, *extra]


def final_losses(output: str) -> list[float]:
    return [float(x) for x in re.findall(r"validation loss ([0-9.]+)", output)]


def run_all(commands, deadline):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    outputs = []
    with devices.started(commands, env) as procs:
        try:
            for p in procs:
                out, _ = p.communicate(timeout=max(deadline - time.monotonic(), 1))
                assert p.returncode == 0, f"exit {p.returncode}: {out.strip().splitlines()[-1:]}"
                outputs.append(out)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the runs did not finish within {TIMEOUT_S} s")
    return outputs


def test_two_processes_reach_the_loss_of_one(tmp_path):
    if sys.platform == "win32":
        pytest.skip("jax.distributed on the CPU (gloo collectives) needs Linux or macOS")
    data = corpus(tmp_path / "corpus.txt")
    deadline = time.monotonic() + TIMEOUT_S
    coordinator = f"localhost:{devices.free_port()}"
    two = run_all([command(data, tmp_path, "two", 2, ["--coordinator", coordinator,
                                                     "--num-processes", "2", "--process-id", str(i)])
                   for i in range(2)], deadline)
    (one,) = run_all([command(data, tmp_path, "one", 4)], deadline)
    want, got = final_losses(one), final_losses(two[0])
    assert want and got, f"no validation loss printed: {one[-300:]!r} / {two[0][-300:]!r}"
    assert not final_losses(two[1]), "only process 0 should print"
    # Same batches, same mesh shape: only the order of float32 sums can differ.
    assert abs(got[-1] - want[-1]) < 1e-4, f"two processes: loss {got[-1]}, one process: {want[-1]}"
    assert (tmp_path / "two" / "checkpoints" / "3").is_dir(), "the two-process run saves its last step"
