"""Saving and restoring a run with orbax.

A run folder holds `config.json` (what was trained, written once) and
`checkpoints/<step>/` (the training state at that step). Orbax writes each step
into a temporary folder and renames it when complete, so a save interrupted half
way never replaces or damages the previous checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from shared import config as cfg


class CheckpointError(ValueError):
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
    """Keeps the last `keep` checkpoints; saves run in the background (call wait_until_finished)."""
    return ocp.CheckpointManager(
        Path(run_dir).absolute() / "checkpoints",  # orbax needs an absolute path
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


def save(mgr: ocp.CheckpointManager, step: int, state) -> None:
    mgr.save(step, args=ocp.args.StandardSave(state))


def restore(mgr: ocp.CheckpointManager, like, step: int | None = None):
    """(step, state) of the given or latest checkpoint, with the structure and dtypes of `like`."""
    step = mgr.latest_step() if step is None else step
    if step is None:
        raise CheckpointError(f"no checkpoint in {mgr.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
        return step, mgr.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # orbax raises many types for unreadable or mismatched data
        raise CheckpointError(f"checkpoint {step} in {mgr.directory} cannot be restored: "
                              f"{str(e).splitlines()[0]}") from None
