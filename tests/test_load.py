"""Other programs' load on the cores: read from /proc/stat less this process's own CPU time
(shared.timing), and one line where it makes a calibrated peak or a measured time suspect
(shared.hardware.busy_note, the bench commands, the training meter). Readings are injected:
no test here depends on how busy the machine running it is."""

import dataclasses
import os
import subprocess
import sys
import time

import pytest

from shared import hardware, timing
from shared.bench import __main__ as bench
from shared.bench import train as bench_train
from shared.hardware import CHIPS, Chip
from shared.timing import CpuTimes, Load
from shared.train import meter

BUSY, QUIET = Load(1.3, 2), Load(0.02, 2)


def cpu(load: Load | None) -> Chip:
    """A calibrated chip whose calibration saw `load` (None: no reading)."""
    return Chip("CPU (test)", {"float32": 1e11, "bfloat16": 2e11}, 1e10, measured=True, load=load)


def fake_cpu_times(monkeypatch, others: float, cores: int = 2) -> list:
    """cpu_times() returns snapshots in which other programs keep `others` cores busy and this
    process one; returns the list of calls made."""
    calls = []

    def read(also=()):
        calls.append(None)
        wall = time.monotonic()
        return CpuTimes(wall, busy=(others + 1.0) * wall, ours=wall, cores=cores)

    monkeypatch.setattr(timing, "cpu_times", read)
    return calls


def test_load_between_subtracts_this_process():
    start, end = CpuTimes(10.0, 100.0, 5.0, 4), CpuTimes(12.0, 106.0, 8.0, 4)
    # 6 busy CPU-seconds in 2 s, 3 of them ours: the others kept (6 - 3) / 2 cores busy.
    assert timing.load_between(start, end) == Load(1.5, 4), "load_between: others = (busy - ours) / wall"
    assert timing.load_between(start, end._replace(busy=102.9)).others == 0.0, \
        "load_between: a tick-rounding deficit must read as 0 cores, not negative"
    assert timing.load_between(None, end) is None and timing.load_between(start, None) is None, \
        "load_between: no reading on either side means no load"


def test_busy_is_a_share_of_the_cores():
    assert Load(0.1 * 8, 8).busy and not Load(0.1 * 8 - 0.01, 8).busy, \
        f"Load.busy: others at {timing.BUSY:.0%} of the cores or more"


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="no /proc/stat on this system")
def test_cpu_times_counts_a_worker_process_as_ours():
    """A benchmark's worker (bench pytorch's PyTorch process) is not another program: its CPU
    time joins ours. The worker burns 0.3 CPU-seconds of its own (read in 10 ms ticks), then waits."""
    burn = "import sys, time\nwhile time.process_time() < 0.3: pass\nprint(flush=True)\nsys.stdin.read()"
    worker = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        worker.stdout.readline()  # it has burnt its share and waits
        alone, with_worker = timing.cpu_times(), timing.cpu_times(also=(worker.pid,))
    finally:
        worker.communicate()
    extra = with_worker.ours - alone.ours
    assert 0.25 <= extra < 2.0, \
        f"cpu_times(also=(pid,)): the worker's 0.3+ CPU-seconds counted as {extra:.2f}"
    assert timing.cpu_times(also=(worker.pid,)).ours - timing.cpu_times().ours < 0.05, \
        "cpu_times(also=...): a process that has exited adds nothing"


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="no /proc/stat on this system")
def test_cpu_times_reads_the_cores_this_process_may_use():
    now = timing.cpu_times()
    assert now.cores == len(os.sched_getaffinity(0)), f"cpu_times: {now.cores} cores counted"
    assert now.busy >= now.ours > 0, f"cpu_times: the cores' busy time {now.busy} includes ours {now.ours}"


def test_busy_calibration_warns_with_its_numbers():
    note = hardware.busy_note(cpu(BUSY))
    assert note and f"{BUSY.others:.1f} of {BUSY.cores} cores" in note and "peaks were calibrated" in note \
        and "MFU" in note and "quiet machine" in note, f"busy_note after a busy calibration: {note!r}"


def test_busy_work_warns_with_its_numbers():
    note = hardware.busy_note(cpu(QUIET), BUSY, "the steps ran")
    assert note and f"{BUSY} while the steps ran" in note and "calibrated" not in note, \
        f"busy_note with a quiet calibration and busy steps: {note!r}"


@pytest.mark.parametrize("chip,work", [(cpu(QUIET), QUIET), (cpu(None), None), (cpu(QUIET), None),
                                       (dataclasses.replace(CHIPS["H100"], load=BUSY), BUSY)],
                         ids=["quiet", "no reading", "no work reading", "datasheet peak"])
def test_silent_when_quiet_unread_or_datasheet(chip, work):
    note = hardware.busy_note(chip, work)
    assert note is None, f"busy_note should say nothing here, said {note!r}"


def test_no_proc_stat_means_no_reading(monkeypatch):
    monkeypatch.setattr(timing, "cpu_times", lambda also=(): None)
    assert timing.LoadWatch().read() is None, "LoadWatch without /proc/stat: None, no error"


@pytest.mark.parametrize("others", [1.5, 0.0], ids=["busy", "quiet"])
def test_meter_marks_a_busy_run(monkeypatch, others):
    fake_cpu_times(monkeypatch, others)
    monkeypatch.setattr(meter, "LOAD_EVERY_S", 0.0)
    m = meter.Throughput(100, 1e9, cpu(QUIET), "float32")
    m.start()
    m.count()
    rate = m.read()
    note = m.note()
    if others:
        # rel 1e-3: the fake readings are microseconds apart on a clock of days of uptime, so
        # their differences keep only about six digits.
        assert rate.busy and rate.busy.others == pytest.approx(others, rel=1e-3) \
            and rate.busy.cores == 2, \
            f"Throughput.read: busy marker {rate.busy}, expected {others} of 2 cores"
        assert note and "while training ran" in note, f"Throughput.note after a busy run: {note!r}"
    else:
        assert rate.busy is None and note is None, f"quiet run marked: {rate.busy}, {note!r}"


def test_meter_reads_the_load_at_most_every_few_seconds(monkeypatch):
    calls = fake_cpu_times(monkeypatch, 1.5)
    m = meter.Throughput(100, 1e9, cpu(QUIET), "float32")
    m.start()
    started = len(calls)
    for _ in range(50):  # milliseconds in all, far less than LOAD_EVERY_S
        m.count()
        m.read()
    assert len(calls) == started, f"Throughput.read: {len(calls) - started} load reads for 50 rates " \
        f"within {meter.LOAD_EVERY_S} s"


def test_datasheet_meter_never_reads_the_load(monkeypatch):
    calls = fake_cpu_times(monkeypatch, 1.5)
    m = meter.Throughput(100, 1e9, CHIPS["H100"], "bfloat16")
    m.start()
    m.count()
    assert m.read().busy is None and m.note() is None and not calls, \
        "a datasheet peak: the meter should not read or report the cores' load"


@pytest.mark.parametrize("others", [1.5, 0.0], ids=["busy", "quiet"])
def test_bench_train_prints_the_line(monkeypatch, capsys, others):
    fake_cpu_times(monkeypatch, others)
    monkeypatch.setattr(hardware, "detect", lambda: cpu(QUIET))
    monkeypatch.setattr(bench_train, "measure", lambda mc, tc, steps: bench_train.Measurement(
        seconds=0.01, compile_s=0.1, peak_bytes=2**20, temp_bytes=2**20, faults=None))
    assert bench.main(["train", "--preset", "tiny", "--steps", "1", "--dtype", "float32",
                       "--remat", "none", "--goodput-steps", "0"]) == 0
    out = capsys.readouterr().out
    line = f"the machine was busy (other programs used {others:.1f} of 2 cores while the steps ran)"
    assert (line in out) == bool(others), f"bench train with others at {others} cores printed:\n{out}"


def test_a_training_run_calibrates_only_the_peak_its_mfu_divides_by():
    """python -m shared.train prints and divides by one peak: calibrating the other dtype and
    the memory too would cost seconds of every run for figures it never shows."""
    chip = meter.chip_for("float32")
    assert chip.measured and set(chip.peak_flops) == {"float32"} and chip.memory_bw is None, \
        f"a float32 run's chip should hold only the float32 peak, got {chip.peak_flops}, memory {chip.memory_bw}"
    line = hardware.describe(chip)
    assert "bfloat16" not in line and "memory" not in line and "float32" in line, \
        f"describe should show only what was calibrated: {line}"
