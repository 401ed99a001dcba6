"""Training: the optimizer, a jitted (and optionally sharded) step, the loop (lessons 01, 06-07).

    from shared import train
    result = train.train(mc, tc, "runs/mine")      # what `python -m shared.train` runs

The library, module by module:
    optim       optimizer, learning_rate: AdamW with warmup and cosine decay
    step        Placement (mesh and strategy), init_state, make_step (the loop's step),
                make_train_step (lesson 01's), check_finite, memory_report, param_names
    evaluation  make_eval (validation loss), loader (the training batches)
    meter       Throughput: tokens/s and MFU over an interval of steps; chip_for (its peak)
    runs        prepare_run_dir, load_params (a trained run's parameters alone)
    loop        train() = start, compile_step, run_steps; Result
    errors      RunError, NonFiniteError
The command line (flags, run-folder safety, huge pages, the end-of-run sample) is
`__main__`: `python -m shared.train --help`.
"""

import importlib

# Each name and the module that defines it. They load on first use (PEP 562), not with the
# package: `python -m shared.train` relaunches itself with huge pages (__main__) before JAX
# loads, instead of loading it twice.
_WHERE = {
    "errors": ("NonFiniteError", "RunError"),
    "evaluation": ("loader", "make_eval"),
    "loop": ("Result", "Run", "compile_step", "run_steps", "start", "train"),
    "meter": ("Rate", "Throughput", "chip_for"),
    "optim": ("learning_rate", "optimizer"),
    "runs": ("load_params", "prepare_run_dir"),
    "step": ("Placement", "abstract_state", "check_finite", "init_state", "make_step",
             "make_train_step", "memory_report", "param_names"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _WHERE:  # a submodule: shared.train.step
        return importlib.import_module(f"{__name__}.{name}")
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:  # what tab completion offers before anything has loaded
    return sorted({*globals(), *_WHERE, *_MODULE_OF})
