"""Run folders: hold one for this process alone (locked), make it ready for a run
(prepare_run_dir), read back what a run trained (load_params: the parameters alone, for
sampling and serving)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
from pathlib import Path
from typing import Iterator

import jax

from shared import checkpoint
from shared import config as cfg
from shared.train.errors import RunError
from shared.train.step import abstract_state


def unwritable(path: Path, e: OSError) -> RunError:
    """The one-line error for a folder the run cannot write (read-only, no permission, full)."""
    why = {errno.EROFS: "the filesystem is read-only", errno.EACCES: "permission denied",
           errno.EPERM: "permission denied", errno.ENOSPC: "the disk is full",
           errno.EDQUOT: "the disk quota is full", errno.ENOTDIR: "a file is in the way"}
    full = e.errno in (errno.ENOSPC, errno.EDQUOT)
    return RunError(f"cannot write {path}: {why.get(e.errno, e.strerror)}; "
                    f"{'free some space or ' if full else ''}choose another --out")


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run folder for this process while the block runs: an advisory lock on
    <out>/.<name>.lock (beside the folder, so --force can delete the folder itself). A second
    run on the same folder gets a one-line RunError naming the process that holds it. The
    operating system drops the lock when the process ends, however it ends."""
    lock = run_dir.parent / f".{run_dir.name}.lock"
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise unwritable(run_dir.parent, e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise RunError(f"{run_dir} is in use by another run ({holder}); wait for it to "
                           f"end, or pass --name for another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}".encode(), 0)
        yield
    finally:
        os.close(fd)


def prepare_run_dir(run_dir: Path, resume: bool, force: bool) -> None:
    """Refuse to overwrite a run unless forced (then delete it), or to resume none."""
    # a folder whose run never saved a step (it failed or was stopped while starting) holds
    # nothing to lose: it may be started again without --force
    holds_run = checkpoint.config_path(run_dir).exists() and any(
        p.name.isdigit() for p in (run_dir / "checkpoints").glob("*"))
    if resume and not holds_run:
        raise RunError(f"cannot resume: {run_dir} holds no saved step of a run; start it "
                       f"without --resume")
    if holds_run and not resume:
        if not force:
            raise RunError(f"{run_dir} already holds a run; pass --resume to continue it, "
                           f"--force to delete it and start over, or --name for a new folder")
        if jax.process_index() == 0:
            shutil.rmtree(run_dir)
    if jax.process_index() == 0:
        probe(run_dir)


def probe(folder: Path) -> None:
    """Fail now, in one line, if the run could not save into `folder` later (read-only,
    no permission, a file in the way): a write that fails in the middle of a run is
    harder to recover from than one that never starts."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        test = folder / f".probe-{os.getpid()}"
        test.write_bytes(b"x")
        test.unlink()
    except OSError as e:
        raise unwritable(folder, e) from None


def load_params(run_dir: Path | str) -> tuple[cfg.ModelConfig, dict]:
    """(model config, parameters) of the latest checkpoint in a run folder.

    The restore target is the training state's shapes (jax.eval_shape: nothing is
    allocated), and only its parameters are read: the optimizer's moments, twice the
    parameters' size, stay on disk.
    """
    run_dir = Path(run_dir)
    mc, tc, _ = checkpoint.load_config(run_dir)
    like = abstract_state(mc, tc)["params"]
    _, params = checkpoint.restore(checkpoint.manager(run_dir), like, part="params")
    return mc, params
