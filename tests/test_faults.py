"""Runs survive what happens to real runs: a second run on the same folder, SIGTERM, a folder
that cannot be written, a full disk, a damaged data position, an interrupted extension, bad
flags. Each ends in one line and a non-zero exit, and nothing already saved is lost."""

import dataclasses
import errno
import os
import signal
import subprocess
import sys
import time
import warnings

import jax
import numpy as np
import pytest

from shared import checkpoint
from shared import config as cfg
from shared import train
from shared.train import __main__ as train_cli
from shared.train import loop, runs

MC = cfg.ModelConfig(seq_len=32, d_model=32, n_layers=1, n_heads=2, d_ff=64)
TC = cfg.TrainConfig(batch_size=4, steps=6, warmup_steps=0, eval_every=100, eval_batches=1,
                     checkpoint_every=2)
TEXT = "".join(f"def f{i % 7}(x):\n    return x * {i % 5}\n" for i in range(400))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(TEXT)
    return str(path)


def _train(run_dir, corpus, **kw):
    return train.train(MC, kw.pop("tc", TC), run_dir, data_path=corpus, progress=False, **kw)


def _params(state) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(state["params"])]



def test_a_second_run_on_the_same_folder_is_refused(corpus, tmp_path, one_line_error):
    run_dir = tmp_path / "tiny"
    with runs.locked(run_dir):  # as a run in another process holds it
        code = train_cli.main(["--out", str(tmp_path), "--name", "tiny", "--data", corpus,
                               "--steps", "2", "--sample-tokens", "0"])
    assert code == 2
    one_line_error("in use by another run", f"process {os.getpid()}")
    assert not (run_dir / "config.json").exists(), "the refused run wrote into the folder"


def test_sigterm_saves_at_a_step_boundary_and_the_resumed_run_is_bitwise_the_same(
        corpus, tmp_path, monkeypatch):
    whole = _train(tmp_path / "whole", corpus)
    compile_step = loop.compile_step

    def compile_then_terminate(run):  # the signal arrives while the job runs, as a scheduler's would
        os.kill(os.getpid(), signal.SIGTERM)
        return compile_step(run)

    monkeypatch.setattr(loop, "compile_step", compile_then_terminate)
    with pytest.raises(train.RunError, match=r"stopped by SIGTERM after step 1; saved\. Continue with"):
        _train(tmp_path / "cut", corpus)
    monkeypatch.setattr(loop, "compile_step", compile_step)
    assert checkpoint.manager(tmp_path / "cut").all_steps() == [1]
    resumed = _train(tmp_path / "cut", corpus, resume=True)
    for a, b in zip(_params(resumed.state), _params(whole.state)):
        np.testing.assert_array_equal(a, b, err_msg="resumed after SIGTERM differs from the whole run")



def test_a_read_only_run_folder_is_one_line_and_keeps_its_checkpoints(
        corpus, tmp_path, read_only, one_line_error):
    _train(tmp_path / "tiny", corpus, tc=dataclasses.replace(TC, steps=2))
    before = sorted(p.name for p in (tmp_path / "tiny" / "checkpoints").iterdir())
    with read_only(tmp_path / "tiny"):
        code = train_cli.main(["--out", str(tmp_path), "--name", "tiny", "--resume", "--steps", "4",
                               "--sample-tokens", "0"])
    assert code == 2
    one_line_error("cannot write", "read-only" if os.geteuid() == 0 else "permission denied")
    assert sorted(p.name for p in (tmp_path / "tiny" / "checkpoints").iterdir()) == before


def test_out_on_a_file_is_one_line(tmp_path, one_line_error):
    (tmp_path / "file").write_text("not a folder")
    assert train_cli.main(["--out", str(tmp_path / "file"), "--steps", "1", "--sample-tokens", "0"]) == 2
    one_line_error("cannot write")


def test_a_full_disk_is_one_line_and_keeps_the_last_step(corpus, tmp_path, monkeypatch):
    run_dir = tmp_path / "tiny"
    _train(run_dir, corpus, tc=dataclasses.replace(TC, steps=2))
    real = checkpoint.shutil.disk_usage
    monkeypatch.setattr(checkpoint.shutil, "disk_usage",
                        lambda p: real(p)._replace(free=1000))  # a disk with 1000 bytes left
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"needs .* MiB and the disk has 0\.0 MiB free; the last saved step, 2, is intact"):
        _train(run_dir, corpus, resume=True, tc=dataclasses.replace(TC, steps=4))
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", real)
    assert checkpoint.manager(run_dir).all_steps() == [2]
    assert _train(run_dir, corpus, resume=True, tc=dataclasses.replace(TC, steps=4)).state["step"] == 4


def test_a_write_that_fails_half_way_is_one_line():
    """When the disk fills during a save (after the free-space check), orbax's error becomes
    one line that says why and what is still saved."""
    class Manager:
        directory = "/runs/tiny/checkpoints"

        def all_steps(self):
            return [4, 6]

        def wait_until_finished(self):
            raise ValueError('RESOURCE_EXHAUSTED: Error writing "opt_state" in OCDBT database\n...')

    with pytest.raises(checkpoint.CheckpointError) as caught:
        checkpoint.wait(Manager())
    assert str(caught.value) == ("saving a checkpoint into /runs/tiny/checkpoints failed: the disk is "
                                 "full; the last saved step, 6, is intact")


def test_a_damaged_data_position_falls_back_to_the_step_before(corpus, tmp_path):
    run_dir = tmp_path / "tiny"
    whole = _train(tmp_path / "whole", corpus)
    _train(run_dir, corpus, stop_after=4)  # saved steps 2 and 4 of the same 6-step run
    for f in (run_dir / "checkpoints" / "4" / "data").rglob("*"):
        if f.is_file():
            f.write_text("{not json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = _train(run_dir, corpus, resume=True)
    assert any("no readable data position" in str(w.message) for w in caught), \
        [str(w.message) for w in caught]
    assert (run_dir / "damaged" / "4").exists()
    for a, b in zip(_params(resumed.state), _params(whole.state)):
        np.testing.assert_array_equal(a, b, err_msg="the run resumed from step 2 differs")


def test_an_extended_run_that_is_interrupted_continues_the_extension(corpus, tmp_path):
    run_dir = tmp_path / "tiny"
    _train(run_dir, corpus, tc=dataclasses.replace(TC, steps=2))
    _train(run_dir, corpus, resume=True, tc=dataclasses.replace(TC, steps=6), stop_after=4)
    assert checkpoint.load_config(run_dir)[1].steps == 6, "config.json forgot the extension"


def test_a_run_that_never_saved_can_start_again(corpus, tmp_path, one_line_error):
    args = ["--out", str(tmp_path), "--name", "tiny", "--data", corpus, "--sample-tokens", "0"]
    assert train_cli.main(args + ["--seed", "-1"]) == 2
    one_line_error("seed must be >= 0")
    assert not (tmp_path / "tiny" / "config.json").exists()
    checkpoint.save_config(tmp_path / "tiny", MC, TC, {"data": corpus})  # a start that died
    with pytest.raises(train.RunError, match="holds no saved step"):
        _train(tmp_path / "tiny", corpus, resume=True)
    assert _train(tmp_path / "tiny", corpus, tc=dataclasses.replace(TC, steps=1)).state["step"] == 1


def test_unwritable_names_the_reason():
    assert "read-only" in str(runs.unwritable(os.path.abspath("x"), OSError(errno.EROFS, "x")))
    assert "free some space" in str(runs.unwritable(os.path.abspath("x"), OSError(errno.ENOSPC, "x")))


def test_kill_9_during_saves_resumes_bitwise(corpus, tmp_path):
    """SIGKILL (no handler can run) while a run saves every step: the folder resumes to the
    same final state as a run never killed."""
    run_dir = tmp_path / "killed"
    tc = dataclasses.replace(TC, steps=40, checkpoint_every=1, keep_checkpoints=2)
    script = (f"import dataclasses\nfrom shared import config as cfg, train\n"
              f"mc = cfg.ModelConfig(**{dataclasses.asdict(MC)!r})\n"
              f"tc = cfg.TrainConfig(**{dataclasses.asdict(tc)!r})\n"
              f"train.train(mc, tc, {str(run_dir)!r}, data_path={corpus!r}, progress=False)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.DEVNULL)
    saved = lambda: [p for p in (run_dir / "checkpoints").glob("*") if p.name.isdigit()]
    deadline = time.monotonic() + 120
    while len(saved()) < 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.kill()  # mid-run: with a save every step, one is almost always being written
    child.wait()
    assert len(saved()) >= 2, "the run saved nothing before it was killed"
    resumed = _train(run_dir, corpus, resume=True, tc=tc)
    whole = _train(tmp_path / "whole", corpus, tc=tc)
    for a, b in zip(_params(resumed.state), _params(whole.state)):
        np.testing.assert_array_equal(a, b, err_msg="resumed after kill -9 differs from the whole run")
