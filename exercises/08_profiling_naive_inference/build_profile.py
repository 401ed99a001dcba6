"""Build exercise (8.7-8.10): the profile reader: where a step's time went, op by op and kind by kind.

You write what reads a trace that jax.profiler recorded (`shared.profiling.trace` writes one
under logdir/plugins/profile/<run>/<host>.xplane.pb) without a browser: the time of every
compiled op (`op_times`, with exactly the contract of `shared.profiling.op_times`, so it is a
drop-in for it), what kind of work each op is (`categorize`), the seconds per training step
of each kind (`breakdown`), and the printed report (`summarize`, a drop-in for
`shared.profiling.summarize` with two more optional arguments). Check it with
`python -m pytest exercises/08_profiling_naive_inference/test_build_profile.py`; then read
three steps of your own training step with it (from this folder, in Python or the notebook):

    import jax
    from build_profile import summarize
    from shared import config, profiling, train
    from shared.bench.train import synthetic_batch
    mc, tc = config.preset("tiny").model, config.preset("tiny").train
    state, batch = train.init_state(mc, tc), synthetic_batch(tc.batch_size, mc.seq_len, mc.vocab_size)
    step = train.make_step(mc, tc)
    state, _ = step(state, batch)          # compiled, and run once ...
    jax.block_until_ready(state)           # ... to the end, outside the trace
    with profiling.trace("out/step") as logdir:
        for _ in range(3):
            state, metrics = step(state, batch)
        jax.block_until_ready(state)       # inside the block, or the work lands outside it
    summarize(logdir, top=10, steps=3, hlo=step.lower(state, batch).compile().as_text())

Words, as the profiler and XLA use them:

    trace     one .xplane.pb file: an XSpace of planes ("/host:CPU", "/device:GPU:0", ...), each
              plane of lines (a thread, a stream, "XLA Ops"), each line of timed events
    op        one compiled HLO instruction, named as in the compiled program: "dot.3",
              "loop_add_fusion", "copy_bitcast_fusion.8"; `module` is its program ("jit_step")
    run       one event of an op; an op inside a scanned layer runs once per layer per step
    step      one call of the traced program; the trace holds `steps` of them
    HLO text  the compiled program as `jitted.lower(...).compile().as_text()` prints it

Imports: the standard library, numpy, jax (its `jax.profiler.ProfileData` reads the XSpace
protobuf: planes, lines, events with `name`, `start_ns`, `end_ns`, `duration_ns` and `stats`,
a list of (name, value) pairs) and shared.config (for `Error`), nothing else from the course.
The tests read this file's imports and fail on shared.profiling: this exercise is where you
write it. Helper functions are yours to add; name them with a leading underscore.
"""

import os
from dataclasses import dataclass

CATEGORIES = ("matmul", "attention", "elementwise", "collective", "copy", "other")


# No `from __future__ import annotations` in this file: the course loads it by its path, and a
# dataclass in such a module cannot resolve annotations written as strings.
@dataclass(frozen=True)
class OpTime:
    name: str  # the HLO instruction, e.g. "dot.3" or "loop_add_fusion"
    module: str  # the compiled program it belongs to, e.g. "jit_step"
    count: int  # times it ran in the trace
    seconds: float  # summed over those runs


def op_times(logdir: str | os.PathLike) -> list[OpTime]:
    """Exercise 8.7: every compiled op in the newest trace under logdir, longest total first.

    - The trace is the newest (by modification time) *.xplane.pb anywhere under logdir; with
      none, raise FileNotFoundError.
    - An op's run is an event that carries an `hlo_op` stat (the op's name; its `hlo_module`
      stat is the program). Other events are the host's own (Python calls, dispatch, waits):
      they are not compiled ops, whatever their names or other stats.
    - Where the trace has device planes (names starting "/device:", on a GPU or TPU), count
      only each device plane's "XLA Ops" line: the plane's other lines show the same time again
      (kernels on streams, the program, the step), and the host planes hold launches, not
      device time. Without device planes (a CPU), the ops are on the host planes' threads.
    - An op that another op on the same line starts inside of (on that line, sorted by start,
      the next op begins before it ends) is a container, such as the `while` of a scan around
      its body: its time is its body's ops', so leave it out, or it is counted twice.
    - One OpTime per (name, module): count = its runs, seconds = their durations summed, over
      every line and device. The same name in two programs is two ops.
    Returns a list of OpTime sorted by seconds, longest first.
    """
    raise NotImplementedError("Exercise 8.7: the time of every compiled op in a trace, summed over its runs")


def categorize(name: str, hlo: str = "") -> str:
    """Exercise 8.8: the kind of work op `name` does, one of CATEGORIES.

    hlo: the compiled text of the op's program (optional). When it holds the instruction
    `%<name> = <shape> <opcode>(...)`, the op's words are its opcode; for a fusion also the
    opcodes of the instructions in the computation it `calls=` (and in those they call in
    turn), leaving out scalar ones (shape like `s32[]`: index arithmetic, a loop counter); for
    a custom-call also its custom_call_target and its backend_config, which name the kernel.
    Computations reached by `to_apply=`, `body=` or `condition=` do not count, and neither
    does an instruction's metadata: its op_name says where the op came from (named scopes such
    as "block/attention"), not what it does. Without hlo, or when hlo does not hold the op,
    the words are its name's: "bitcast_dynamic-update-slice_fusion.14" -> bitcast,
    dynamic-update-slice, fusion (the ".14" dropped, split at "_").

    The category is the first of these that the words show:
    - "collective": an opcode that moves data between devices: all-reduce, all-gather,
      reduce-scatter, all-to-all, collective-permute, collective-broadcast,
      ragged-all-to-all, or the -start / -done halves of one;
    - "attention": a fused attention kernel: a word containing "attention", "flash" or "fmha"
      (cuDNN's fused attention);
    - "matmul": a matrix product: dot or convolution, or a word containing "gemm" or
      "matmul" (cuBLAS calls, Triton's gemm fusions): a fusion that holds one is a matmul,
      whatever else it holds;
    - "copy": only data movement: the words, apart from fusion, wrapped, loop, input,
      parameter, constant, tuple and get-tuple-element, are all among copy, copy-start,
      copy-done, transpose, bitcast, bitcast-convert, reshape, broadcast, slice,
      dynamic-slice, dynamic-update-slice, concatenate, pad, reverse, gather, iota (and
      there is at least one);
    - "other": control flow, calls and host transfers: while, conditional, call,
      custom-call, infeed, outfeed, send, send-done, recv, recv-done;
    - "elementwise": everything else that computes (elementwise ops, reductions on one
      device, fusions of them).
    Returns the category, a string from CATEGORIES.
    """
    raise NotImplementedError("Exercise 8.8: the kind of work an op does, from its name or its compiled text")


def breakdown(ops: list[OpTime], steps: int = 1, hlo: str = "") -> dict[str, float]:
    """Exercise 8.9: seconds per step of each category, in CATEGORIES order.

    ops: OpTimes (op_times' answer, or shared.profiling.op_times'), their times summed over a
    trace of `steps` steps (an int >= 1; below 1, raise ValueError). hlo: the compiled text of
    the traced programs, several joined one after another (each starts with a line
    `HloModule <name>, ...`); each op is categorized with the text of its own program (the
    one named op.module), or by its name alone when hlo has none.
    Returns {category: seconds per step} with every category of CATEGORIES as a key, in that
    order (0.0 for a category without ops); the values add up to the ops' total time
    divided by steps.
    """
    raise NotImplementedError("Exercise 8.9: the seconds per step of each kind of work")


def summarize(logdir: str | os.PathLike, top: int = 10, steps: int = 1, hlo: str = "") -> list[OpTime]:
    """Exercise 8.10: print where the time went, per step, and return the top ops.

    Reads the newest trace under logdir as op_times does (no trace: FileNotFoundError; a
    trace without compiled ops: raise shared.config.Error, in one line), then prints
    - one line per category, in CATEGORIES order, that starts with the category's name and
      gives its milliseconds per step (breakdown's, three decimals) and its share of the time;
    - one line for each of the `top` longest ops that gives its name, program, category (with
      hlo as in breakdown), runs, milliseconds per step (three decimals) and share.
    Returns op_times(logdir)[:top]: the same OpTimes, totals over the trace.
    """
    raise NotImplementedError("Exercise 8.10: print the time per kind of work and the top ops, per step")
