"""Training: the optimizer, a jitted (and optionally sharded) step, the loop (lessons 01, 06-07).

    from shared import train
    result = train.train(mc, tc, "runs/mine")      # what `python -m shared.train` runs

The library, module by module:
    optim       optimizer, learning_rate: AdamW with warmup and cosine decay
    step        Placement (mesh and strategy), init_state, make_step (the loop's step),
                make_train_step (lesson 01's), check_finite, memory_report, param_names
    evaluation  make_eval (validation loss), loader (the training batches)
    meter       Throughput: tokens/s and MFU over an interval of steps
    runs        prepare_run_dir, load_params (a trained run's parameters alone)
    loop        train() = start, compile_step, run_steps; Result
    errors      RunError, NonFiniteError
The command line (flags, run-folder safety, huge pages, the end-of-run sample) is
`__main__`: `python -m shared.train --help`.
"""

from shared.train.errors import NonFiniteError, RunError
from shared.train.evaluation import loader, make_eval
from shared.train.loop import Result, Run, compile_step, run_steps, start, train
from shared.train.meter import Rate, Throughput
from shared.train.optim import learning_rate, optimizer
from shared.train.runs import load_params, prepare_run_dir
from shared.train.step import (Placement, abstract_state, check_finite, init_state, make_step,
                               make_train_step, memory_report, param_names)

__all__ = ["NonFiniteError", "Placement", "Rate", "Result", "Run", "RunError", "Throughput",
           "abstract_state", "check_finite", "compile_step", "init_state", "learning_rate",
           "load_params", "loader", "make_eval", "make_step", "make_train_step",
           "memory_report", "optimizer", "param_names", "prepare_run_dir", "run_steps", "start", "train"]
