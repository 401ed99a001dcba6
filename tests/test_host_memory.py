"""shared.host_memory: the relaunch sets glibc's huge-page tunable once, keeps other
tunables and respects an opt-out; with it, fresh memory costs far fewer page faults."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared import host_memory

pytestmark = pytest.mark.skipif(not host_memory.huge_pages_possible(),
                                reason="needs Linux with glibc >= 2.35")

SHOW = ("from shared import host_memory; import os; host_memory.relaunch_with_huge_pages(); "
        "print(os.environ.get('GLIBC_TUNABLES'), host_memory.huge_pages_on())")


def run(code: str, tunables: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    return proc.stdout.strip()


@pytest.mark.parametrize("before,after", [
    (None, "glibc.malloc.hugetlb=1 True"),
    ("glibc.malloc.arena_max=2", "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1 True"),
    ("glibc.malloc.hugetlb=0", "glibc.malloc.hugetlb=0 False"),  # the user's opt-out stands
])
def test_relaunch_sets_the_tunable_once(before, after):
    got = run(SHOW, before)
    assert got == after, f"GLIBC_TUNABLES {before!r} became {got!r} (tunables, on), expected {after!r}"


# 512 MiB from malloc, written once (numpy would not do: it asks for huge pages itself).
TOUCH = ("import ctypes, resource; libc = ctypes.CDLL(None); libc.malloc.restype = ctypes.c_void_p; "
         "f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt; p = libc.malloc(2**29); "
         "ctypes.memset(p, 1, 2**29); print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f)")


def thp_mode() -> str:
    path = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    text = path.read_text() if path.exists() else "[never]"
    return text[text.index("[") + 1:text.index("]")]


@pytest.mark.skipif(thp_mode() == "never", reason="transparent huge pages are switched off")
def test_huge_pages_cut_the_faults_of_fresh_memory():
    small = int(run(TOUCH, "glibc.malloc.hugetlb=0"))
    huge = int(run(TOUCH, "glibc.malloc.hugetlb=1"))
    # 512 MiB of fresh memory is 131,072 pages of 4 KiB, or 256 of 2 MiB; half is a margin
    # for a kernel that cannot find free huge pages for all of it.
    assert small > 100_000, f"touching 512 MiB took only {small} faults with 4 KiB pages"
    assert huge < small / 2, f"{huge} faults with huge pages against {small} without"
