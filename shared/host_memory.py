"""Host memory: back the CPU runtime's large buffers with huge pages (lesson 06).

XLA's CPU runtime allocates a step's temporaries afresh on every call (activations
kept for the backward pass, gradients: gigabytes for the `small` training step) and
frees them after. glibc hands blocks that large out as new mappings, and the kernel
maps them one 4 KiB page at a time on first touch: a page fault per 4 KiB, and a
sizeable share of every step spent in the kernel (lesson 06 measures both). With the
glibc tunable glibc.malloc.hugetlb=1, malloc asks for transparent huge pages (2 MiB)
on those mappings, so the same memory costs 512 times fewer faults.

glibc reads tunables only when a process starts, so `relaunch_with_huge_pages` re-runs
the current command once with the tunable set. The training and benchmark commands
call it before any work; library code and notebooks are left as they are. Nothing
changes off Linux, on glibc older than 2.35 (no such tunable), or when the kernel's
transparent huge pages are switched off ("never").
"""

from __future__ import annotations

import os
import platform
import sys

TUNABLE = "glibc.malloc.hugetlb"


def huge_pages_possible() -> bool:
    """Linux with glibc >= 2.35, whose malloc knows the tunable."""
    libc, version = platform.libc_ver()
    if sys.platform != "linux" or libc != "glibc":
        return False
    return tuple(int(part) for part in version.split(".")[:2]) >= (2, 35)


def _tunables() -> dict[str, str]:
    """GLIBC_TUNABLES as a dict: "a=1:b=2" -> {"a": "1", "b": "2"}."""
    items = os.environ.get("GLIBC_TUNABLES", "").split(":")
    return dict(item.split("=", 1) for item in items if "=" in item)


def minor_faults() -> int | None:
    """Minor page faults of this process so far: first touches of newly mapped memory.
    None where the OS does not count them (no `resource` module off Unix)."""
    try:
        import resource
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def huge_pages_on() -> bool:
    """Whether this process started with the tunable set to a non-zero value."""
    return _tunables().get(TUNABLE, "0") != "0"


def relaunch_with_huge_pages() -> None:
    """Replace this process by the same command with glibc.malloc.hugetlb=1, once.

    Call it first thing in a command's `if __name__ == "__main__":` block, before any
    thread or JAX backend exists (exec keeps the process id, so a parent waiting on
    it is unaffected). Returns without doing anything where huge pages are not possible
    or the tunable is already set (by this function or by the user: set it to 0 to opt out).
    """
    if not huge_pages_possible() or TUNABLE in _tunables():
        return
    tunables = ":".join(filter(None, [os.environ.get("GLIBC_TUNABLES", ""), f"{TUNABLE}=1"]))
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, "GLIBC_TUNABLES": tunables})
