"""Run folders: make one ready for a run (prepare_run_dir), read back what a run
trained (load_params: the parameters alone, for sampling and serving)."""

from __future__ import annotations

import shutil
from pathlib import Path

import jax

from shared import checkpoint
from shared import config as cfg
from shared.train.errors import RunError
from shared.train.step import abstract_state


def prepare_run_dir(run_dir: Path, resume: bool, force: bool) -> None:
    """Refuse to overwrite a run unless forced (then delete it), or to resume none."""
    holds_run = checkpoint.config_path(run_dir).exists()
    if resume and not holds_run:
        raise RunError(f"cannot resume: {run_dir} holds no run")
    if holds_run and not resume:
        if not force:
            raise RunError(f"{run_dir} already holds a run; pass --resume to continue it, "
                           f"--force to delete it and start over, or --name for a new folder")
        if jax.process_index() == 0:
            shutil.rmtree(run_dir)


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
