"""Saving and restoring a run with orbax (lesson 07).

A run folder holds `config.json` (what was trained, written once) and
`checkpoints/<step>/` (the training state at that step, and the data loader's
position beside it). Orbax writes each step into a temporary folder and renames it
when complete, so a save interrupted half way never replaces or damages the previous
checkpoint. A checkpoint damaged later (a disk error, a deleted file) is moved to
`damaged/<step>/`, with a warning, and the previous one is used: nothing is deleted
or overwritten without being asked.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from shared import config as cfg


class CheckpointError(cfg.Error):
    """A run folder or checkpoint cannot be used; the message is one line."""


def config_path(run_dir: Path) -> Path:
    return Path(run_dir) / "config.json"


def save_config(run_dir: Path, model: cfg.ModelConfig, train: cfg.TrainConfig,
                extra: dict | None = None) -> None:
    path = config_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**cfg.to_dict(model, train), **(extra or {})}, indent=2))
    os.replace(tmp, path)  # atomic: a reader sees the old file or the new one, never half


def load_config(run_dir: Path) -> tuple[cfg.ModelConfig, cfg.TrainConfig, dict]:
    """(model config, train config, the whole saved dict) of a run folder."""
    path = config_path(run_dir)
    if not path.exists():
        raise CheckpointError(f"{run_dir} is not a run folder (no config.json)")
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is damaged: {e}") from None
    model, train = cfg.from_dict(saved)
    return model, train, saved


def manager(run_dir: Path, keep: int = 3) -> ocp.CheckpointManager:
    """Keeps the last `keep` checkpoints; saves run in the background (call wait)."""
    return ocp.CheckpointManager(
        Path(run_dir).absolute() / "checkpoints",  # orbax needs an absolute path
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "data": ocp.JsonCheckpointHandler()})


def save(mgr: ocp.CheckpointManager, step: int, state, data: dict | None = None) -> None:
    """Start saving `state` (a pytree of arrays) and `data` (JSON: the loader's position).
    A save that fails (here, or in the background: see wait) is a one-line CheckpointError;
    the steps saved before it stay intact, since orbax writes each step into a temporary
    folder and renames it only when complete."""
    need = sum(shard.data.nbytes for x in jax.tree.leaves(state) for shard in x.addressable_shards
               if shard.replica_id == 0)  # what this process writes
    free = shutil.disk_usage(mgr.directory).free
    if free < need:  # say so now: a write that runs out of space half-way is noisier to undo
        steps = mgr.all_steps()
        kept = f"the last saved step, {max(steps)}, is intact" if steps else "no step was saved"
        raise CheckpointError(f"saving step {step} into {mgr.directory} needs {need / 2**20:,.1f} "
                              f"MiB and the disk has {free / 2**20:,.1f} MiB free; {kept}")
    try:
        mgr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                               data=ocp.args.JsonSave(data or {})))
    except Exception as e:  # noqa: BLE001: orbax and tensorstore raise many types
        raise _write_error(mgr, e) from None


def wait(mgr: ocp.CheckpointManager) -> None:
    """Wait for the background saves; one that failed is a one-line CheckpointError."""
    try:
        mgr.wait_until_finished()
    except Exception as e:  # noqa: BLE001
        raise _write_error(mgr, e) from None


def quiet_background_errors(command_line: bool = False) -> None:
    """For the commands: a failed save or read is reported once, in one line, by this
    module's errors, so silence the copies orbax's writer threads log through absl. With
    `command_line` (the process is the command's own), also drop what threads started
    outside Python write to stderr: when a save or restore fails, orbax closes its event loop
    while tensorstore's C++ threads still hold callbacks for it, and each prints an "Event
    loop is closed" traceback, during the run or at exit."""
    logging.getLogger("absl").setLevel(logging.CRITICAL)
    if command_line and not isinstance(sys.stderr, _MuteForeignThreads):
        sys.stderr = _MuteForeignThreads(sys.stderr)


class _MuteForeignThreads:
    """sys.stderr, less what threads started outside Python write to it (see
    quiet_background_errors). Python's own threads and the main thread write as usual."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        if isinstance(threading.current_thread(), threading._DummyThread):  # a C++ thread
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def leave_now(code: int) -> None:
    """Exit with `code` without waiting for orbax's writer threads, for a command line that
    has said its error: after a failed save they keep reporting to event loops that are
    already closed (a traceback each, at exit), and every step saved before it is on disk."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _write_error(mgr: ocp.CheckpointManager, error: Exception) -> CheckpointError:
    text = str(error)
    why = next((why for marks, why in (
        (("RESOURCE_EXHAUSTED", "No space left", "Disk quota"), "the disk is full"),
        (("Read-only file system",), "the filesystem is read-only"),
        (("PERMISSION_DENIED", "Permission denied"), "permission denied"))
        if any(m in text for m in marks)), _reason(error))
    steps = mgr.all_steps()
    kept = f"the last saved step, {max(steps)}, is intact" if steps else "no step was saved"
    return CheckpointError(f"saving a checkpoint into {mgr.directory} failed: {why}; {kept}")


def restore(mgr: ocp.CheckpointManager, like, step: int | None = None, *, part: str | None = None):
    """(step, state) of the given or latest checkpoint, with the structure and dtypes of `like`.

    `like` may hold arrays placed on a mesh: the restored arrays are placed the same way;
    or shapes alone (jax.eval_shape's ShapeDtypeStructs, nothing allocated), which land on
    the default device unless they carry a sharding. With `part` (e.g. "params"), `like`
    is that entry of the saved state and only it is read: the rest stays on disk.
    Without a given step, a latest checkpoint that cannot be read is moved aside and
    the one before it is tried (with a warning); a given step that cannot be read, or
    a state of another structure or shape, is an error.
    """
    abstract = jax.tree.map(_abstract, like)
    reader = mgr if part is None else _part_reader(mgr)
    steps = [step] if step is not None else sorted(mgr.all_steps(), reverse=True)
    if not steps:
        raise CheckpointError(f"no checkpoint in {mgr.directory}")
    for s in steps:
        try:
            saved = mgr.item_metadata(s)["state"]
            saved = getattr(saved, "tree", saved)
        except Exception as e:
            reason = _reason(e)
        else:
            if part is not None:
                saved = saved.get(part) if isinstance(saved, dict) else None
            if saved is None or _shapes(saved) != _shapes(abstract):
                raise CheckpointError(f"checkpoint {s} in {mgr.directory} holds a state of another "
                                      f"structure or shape than this config's")
            try:
                restored = reader.restore(s, args=ocp.args.Composite(state=_restore_args(abstract, part)))
                return s, restored["state"][part] if part else restored["state"]
            except Exception as e:  # orbax and tensorstore raise many types for bad files
                reason = _reason(e)
        if step is not None:
            raise CheckpointError(f"checkpoint {s} in {mgr.directory} cannot be restored: {reason}")
        aside = set_aside(mgr, s)
        warnings.warn(f"checkpoint {s} is damaged ({reason}); moved it to {aside} and "
                      f"tried the one before it", stacklevel=2)
    raise CheckpointError(f"every checkpoint in {mgr.directory} is damaged (moved to damaged/)")


def _abstract(x) -> jax.ShapeDtypeStruct:
    """Shape, dtype and placement of a restore target's leaf (the default device if none)."""
    s = ocp.utils.to_shape_dtype_struct(x)
    if getattr(s, "sharding", None) is None:
        s = jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0]))
    return s


def _part_reader(mgr: ocp.CheckpointManager) -> ocp.CheckpointManager:
    """A manager of the same folder that can read part of a state (orbax's PyTree handler
    restores a subtree; the Standard one, which saves, only the whole)."""
    return ocp.CheckpointManager(mgr.directory, options=ocp.CheckpointManagerOptions(create=False),
                                 item_handlers={"state": ocp.PyTreeCheckpointHandler(),
                                                "data": ocp.JsonCheckpointHandler()})


def _restore_args(abstract, part: str | None):
    if part is None:
        return ocp.args.StandardRestore(abstract)
    target = {part: abstract}
    return ocp.args.PyTreeRestore(item=target, partial_restore=True,
                                  restore_args=ocp.checkpoint_utils.construct_restore_args(target))


def restore_data(mgr: ocp.CheckpointManager, step: int) -> dict:
    """The JSON saved beside the state at `step`."""
    try:
        return dict(mgr.restore(step, args=ocp.args.Composite(data=ocp.args.JsonRestore()))["data"])
    except Exception as e:
        raise CheckpointError(f"checkpoint {step} in {mgr.directory} has no readable data "
                              f"position: {_reason(e)}") from None


def restore_run(mgr: ocp.CheckpointManager, like) -> tuple[int, object, dict]:
    """(step, state, data) of the latest checkpoint whose state AND data position both read
    back: a step whose data is damaged is moved aside like a damaged state (with a warning),
    and the one before it is tried."""
    while True:
        step, state = restore(mgr, like)
        try:
            return step, state, restore_data(mgr, step)
        except CheckpointError as e:
            aside = set_aside(mgr, step)
            warnings.warn(f"{e}; moved it to {aside} and tried the one before it", stacklevel=2)


def _shapes(tree) -> list[tuple[int, ...]]:
    """The arrays' shapes, sorted: orbax's metadata tree orders some nodes differently."""
    return sorted(tuple(x.shape) for x in jax.tree.leaves(tree))


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) < 160 else text[:157] + "..."


def set_aside(mgr: ocp.CheckpointManager, step: int) -> Path:
    """Move checkpoint `step` to <run>/damaged/<step> (never overwriting) and forget it."""
    source = Path(mgr.directory) / str(step)
    target = Path(mgr.directory).parent / "damaged" / str(step)
    n = 1
    while target.exists():
        target, n = target.with_name(f"{step}.{n}"), n + 1
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))
    mgr.reload()
    return target
