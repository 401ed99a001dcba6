"""Checkpoints: a damaged latest one falls back to the previous one; nothing is overwritten unasked."""

import shutil
import warnings
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from shared import checkpoint, train


def state_at(step: int) -> dict:
    return {"w": jnp.full((4, 3), float(step)), "step": jnp.asarray(step, jnp.int32)}


def saved_run(tmp_path: Path, steps=(1, 2)):
    mgr = checkpoint.manager(tmp_path / "run", keep=3)
    for s in steps:
        checkpoint.save(mgr, s, state_at(s), {"position": 10 * s})
    mgr.wait_until_finished()
    return mgr


def damage(mgr, step: int) -> None:
    """Delete the array data of a saved checkpoint, as a disk error or a stray rm would."""
    for folder in (Path(mgr.directory) / str(step) / "state").rglob("d"):
        shutil.rmtree(folder)


def test_damaged_latest_falls_back_to_the_previous_one(tmp_path):
    mgr = saved_run(tmp_path)
    damage(mgr, 2)
    with pytest.warns(UserWarning, match=r"checkpoint 2 is damaged .*moved it to .*damaged"):
        step, state = checkpoint.restore(mgr, state_at(0))
    assert step == 1, f"the previous complete checkpoint is step 1, restored {step}"
    np.testing.assert_array_equal(state["w"], np.full((4, 3), 1.0), "step 1's values must come back")
    assert checkpoint.restore_data(mgr, 1) == {"position": 10}, "the loader position saved with step 1"
    aside = tmp_path / "run" / "damaged" / "2"
    assert aside.is_dir(), "the damaged checkpoint is kept for inspection, not deleted"
    assert mgr.all_steps() == [1], f"the manager must forget the damaged step: {mgr.all_steps()}"


def test_a_named_damaged_step_is_an_error_not_a_fallback(tmp_path):
    mgr = saved_run(tmp_path)
    damage(mgr, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no silent fallback to another step
        with pytest.raises(checkpoint.CheckpointError, match=r"checkpoint 2 .* cannot be restored"):
            checkpoint.restore(mgr, state_at(0), step=2)
    assert (Path(mgr.directory) / "2").is_dir(), "an explicitly named step is not moved aside"


def test_every_checkpoint_damaged_is_one_clear_error(tmp_path):
    mgr = saved_run(tmp_path)
    damage(mgr, 1)
    damage(mgr, 2)
    with pytest.warns(UserWarning), pytest.raises(checkpoint.CheckpointError, match="every checkpoint"):
        checkpoint.restore(mgr, state_at(0))


def test_a_state_of_another_shape_is_refused(tmp_path):
    mgr = saved_run(tmp_path, steps=(1,))
    other = {"w": jnp.zeros((5, 3)), "step": jnp.asarray(0, jnp.int32)}
    with pytest.raises(checkpoint.CheckpointError, match="another structure or shape"):
        checkpoint.restore(mgr, other)
    assert mgr.all_steps() == [1], "a mismatch is the caller's error; the checkpoint stays"


def test_an_existing_run_is_not_overwritten_without_being_asked(tmp_path):
    run = tmp_path / "run"
    saved_run(tmp_path, steps=(1,))
    (run / "config.json").write_text("{}")
    with pytest.raises(train.RunError, match="already holds a run; pass --resume"):
        train.prepare_run_dir(run, resume=False, force=False)
    assert (run / "checkpoints" / "1").is_dir(), "refusing must leave the run untouched"
    train.prepare_run_dir(run, resume=True, force=False)  # continuing it is allowed
    assert (run / "checkpoints" / "1").is_dir()
    train.prepare_run_dir(run, resume=False, force=True)  # --force: asked to start over
    assert not any(run.iterdir()), "--force deletes the old run (and leaves the folder ready)"


def test_resume_needs_a_run(tmp_path):
    with pytest.raises(train.RunError, match="holds no saved step of a run"):
        train.prepare_run_dir(tmp_path / "nothing", resume=True, force=False)
