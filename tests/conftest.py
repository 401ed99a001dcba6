"""The repository tests run with 8 simulated CPU devices, set before any test runs JAX.

The sharding tests need several devices. Single-device code is unaffected: an
array or a jitted function given no sharding lives and runs on device 0, as with
one device (tests/test_sharding.py checks this).
"""

import contextlib
import os
import shutil
import subprocess
import tempfile

import pytest

from shared import aot
from shared.devices import simulate_cpu_devices

simulate_cpu_devices(8)

# One persistent compilation cache (lesson 10) for the session: this process and every process
# it starts (the real jobs, the exercise runs, the notebook kernels) read it through the
# environment. Many of them compile the same small programs, the training step above all;
# reading them back took the whole suite from 23 to 16 minutes on 2 Zen 4 cores. Code that
# names its own cache directory (lesson 10's cold and warm starts) still gets its own.
# The workers of `pytest -n` share the cache of the process that started them.
WORKER = "PYTEST_XDIST_WORKER" in os.environ
COMPILE_CACHE = (os.environ["JAX_COMPILATION_CACHE_DIR"] if WORKER
                 else tempfile.mkdtemp(prefix="course-tests-jax-cache-"))
os.environ.update(JAX_COMPILATION_CACHE_DIR=COMPILE_CACHE,
                  JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                  JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
aot.enable_persistent_cache(COMPILE_CACHE)
# Processes share a GPU here (the two workers, the notebook kernels, the jobs that tests start):
# none may take three quarters of its memory up front, as JAX does by default.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def pytest_sessionfinish(session, exitstatus):
    if not WORKER:
        shutil.rmtree(COMPILE_CACHE, ignore_errors=True)


@pytest.fixture
def one_line_error(capsys):
    """check(*words): the command printed exactly one line, "error: ...", holding each word."""
    def check(*words):
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("error: "), f"not one line: {err!r}"
        for w in words:
            assert w in err, f"{w!r} not in {err!r}"
        return err
    return check


@pytest.fixture
def read_only():
    """`with read_only(folder):` the folder cannot be written by this process: chmod where
    permissions bind, else (root, whom they do not stop) a read-only bind mount; skips the
    test where neither is possible."""
    @contextlib.contextmanager
    def make(folder):
        if os.geteuid() != 0:
            paths = [folder, *folder.rglob("*")]
            for p in paths:
                p.chmod(p.stat().st_mode & ~0o222)
            try:
                yield
            finally:
                for p in paths:
                    p.chmod(p.stat().st_mode | 0o200)
            return
        bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True)
        if bind.returncode or ro.returncode:
            if not bind.returncode:
                subprocess.run(["umount", str(folder)])
            pytest.skip("root without mount: cannot make a read-only folder here")
        try:
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    return make
