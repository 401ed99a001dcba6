"""Checks for the build exercise 8.7-8.10 (build_profile.py): the profile reader, written by you.

Two oracles. shared.profiling's reading of the same trace: a tiny program recorded once per
test session (a matmul inside an "attention" named scope, an elementwise chain, a layout
copy, a loop whose body runs inside a `while`, and a psum over 8 simulated devices). And
hand-made facts: synthetic traces written as XSpace text protos (a CPU's host threads with
Python's events beside the ops, a GPU's device planes whose other lines repeat the ops' time, a
loop around its body, one op run several times), op names as XLA's CPU, GPU and TPU backends
write them, and a small compiled-HLO text.

Every check_* function takes the module under test, so tests/test_wrong_answers.py runs the
same checks on kept wrong builds (tests/wrong/build_profile_*.py) and proves each is rejected by
the check about its mistake; the test_* functions at the bottom are thin wrappers over them.
"""

import atexit
import contextlib
import functools
import io
import math
import re
import shutil
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

from shared import profiling as core
from shared.config import Error
from shared.course import imports
from shared.devices import DeviceSetupError, simulate_cpu_devices

try:
    simulate_cpu_devices(8)  # for the psum; must come before JAX's first operation
except DeviceSetupError:
    pass  # JAX started earlier with one device: the trace has no psum (the HLO facts still check collectives)

CALLS = 3  # calls of the traced program: the "steps" of the trace
REL = 1e-9  # sums of the same durations in another order
OpTime = core.OpTime  # the tests' inputs to breakdown: any objects with these four fields will do


# ---- the answer is not one import away ----

ALLOWED = ("jax", "jaxlib", "numpy", "stdlib", "shared.config")
NOT_ALLOWED = {
    "shared.profiling": "it holds the course's profile reader, which this exercise writes",
}
CATEGORIES = ("matmul", "attention", "elementwise", "collective", "copy", "other")


def check_imports(m):
    """Fails on the first module the answer's file imports that it may not; returns m."""
    return imports.check(m, ALLOWED, NOT_ALLOWED)


# ---- the recorded trace: a program whose ops we know ----

def _program(a, b):
    with jax.named_scope("attention"):  # a projection in attention's scope is still a matmul
        c = a @ b
    d = jnp.tanh(c * 2.0 + 1.0) * 3.0  # an elementwise chain
    e = jax.lax.fori_loop(0, 4, lambda i, x: jnp.sin(x) * 1.5 + x, d)  # a loop around its body
    return e, jnp.swapaxes(a.reshape(16, 16, 256), 0, 1)  # a layout change: copies, no arithmetic


def _psum_rows(x):
    return jax.lax.psum(x, "d")


@functools.cache
def _recorded() -> tuple[Path, str]:
    """(trace folder, the compiled text of its programs), recorded once per test session."""
    folder = Path(tempfile.mkdtemp(prefix="build_profile_"))
    atexit.register(shutil.rmtree, folder, True)
    a = jnp.linspace(-1.0, 1.0, 256 * 256).reshape(256, 256)
    programs = [(jax.jit(_program), (a, a.T))]
    if len(jax.devices()) >= 8:
        mesh = jax.make_mesh((8,), ("d",), axis_types=(jax.sharding.AxisType.Explicit,))
        x = jax.device_put(jnp.ones((8, 1024)), NamedSharding(mesh, P("d")))
        programs.append((jax.jit(jax.shard_map(_psum_rows, mesh=mesh, in_specs=P("d"), out_specs=P())), (x,)))
    for fn, args in programs:
        jax.block_until_ready(fn(*args))  # compiled outside the trace
    with core.trace(folder / "trace"):
        for _ in range(CALLS):
            for fn, args in programs:
                jax.block_until_ready(fn(*args))
    hlo = "\n".join(fn.lower(*args).compile().as_text() for fn, args in programs)
    return folder / "trace", hlo


@functools.cache
def _core_ops() -> dict[tuple[str, str], core.OpTime]:
    return {(o.name, o.module): o for o in core.op_times(_recorded()[0])}


def _module_text(hlo: str, module: str) -> str:
    return next(part for part in re.split(r"^(?=HloModule )", hlo, flags=re.MULTILINE)
                if part.startswith(f"HloModule {module},"))


def _what_it_holds(hlo: str, op: core.OpTime) -> str | None:
    """What the test program's op is, from its compiled text: the op holding the dot, the
    all-reduce, the tanh/sin chain, or pure layout; None for the rest (loop counters)."""
    text = _module_text(hlo, op.module)
    line = re.search(rf"^\s*(?:ROOT )?%{re.escape(op.name)} = \S+ ([a-z-]+)\((.*)$", text, re.MULTILINE)
    if line is None:
        return None
    own, rest = line[1], line[2]
    held = {own}
    for called in re.findall(r"calls=%([\w.\-]+)", rest):
        body = re.search(rf"^%{re.escape(called)} .*?\n}}", text, re.MULTILINE | re.DOTALL)[0]
        held |= set(re.findall(r"= \S+ ([a-z-]+)\(", body))
    if "dot" in held:
        return "matmul"
    if own == "all-reduce":
        return "collective"
    if held & {"tanh", "sine"}:
        return "elementwise"
    if "s32[]" not in line[0] and held - {"fusion", "parameter"} <= {"copy", "transpose", "bitcast"}:
        return "copy"
    return None


def _numbers(line: str) -> list[str]:
    return re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", line)


def _capture(fn, *args, **kw):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = fn(*args, **kw)
    return result, out.getvalue()


# ---- synthetic traces, written as XSpace text protos ----

def _event(name, start_us, duration_us, module=None, op=None):
    """An event; one that carries an hlo_op stat (op, with its module) is a compiled op's run."""
    stats = {"hlo_op": op} if op else {}
    return name, start_us, duration_us, stats | ({"hlo_module": module} if module else {})


def _op(name, start_us, duration_us, module="jit_step"):
    return _event(name, start_us, duration_us, module, name)


def _write_trace(folder: Path, planes: list[tuple[str, dict[str, list]]]) -> Path:
    """Write an XSpace of `planes` ([(plane name, {line name: [events]})]) where
    jax.profiler.trace puts one; returns the trace folder."""
    text = []
    for plane_id, (plane, lines) in enumerate(planes, 1):
        names = sorted({e[0] for events in lines.values() for e in events})
        ids = {name: i for i, name in enumerate(names, 1)}
        body = [f'id: {plane_id} name: "{plane}"']
        for line_id, (line, events) in enumerate(lines.items(), 1):
            evs = []
            for name, start, duration, stats in events:
                st = " ".join(f'stats {{ metadata_id: {1 if k == "hlo_op" else 2} str_value: "{v}" }}'
                              for k, v in stats.items())
                evs.append(f"events {{ metadata_id: {ids[name]} offset_ps: {round(start * 1e6)} "
                           f"duration_ps: {round(duration * 1e6)} {st} }}")
            body.append(f'lines {{ id: {line_id} name: "{line}" timestamp_ns: 1000000 {" ".join(evs)} }}')
        body += [f'event_metadata {{ key: {i} value {{ id: {i} name: "{n}" }} }}' for n, i in ids.items()]
        body += ['stat_metadata { key: 1 value { id: 1 name: "hlo_op" } }',
                 'stat_metadata { key: 2 value { id: 2 name: "hlo_module" } }']
        text.append("planes { " + " ".join(body) + " }")
    path = folder / "plugins" / "profile" / "2026_01_01_00_00_00" / "host.xplane.pb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jax.profiler.ProfileData.text_proto_to_serialized_xspace("\n".join(text)))
    return folder


# A CPU trace: no device plane, the ops on the host's threads beside Python's events.
CPU_PLANES = [
    ("/host:CPU", {
        "python": [_event("PjitFunction(step)", 0, 60), _event("$api.py:2479 block_until_ready", 10, 45)],
        "tf_XLAPjRtCpuClient/1": [
            _op("while.3", 5, 20),  # a loop: its body's ops below run inside it
            _op("fusion.4", 6, 3), _op("fusion.5", 10, 8),
            _op("dot.1", 30, 4),
            _event("ThunkExecutor::Execute (wait for completion)", 34, 10, "jit_step"),
        ],
        "tf_XLAEigen/2": [_op("dot.1", 1, 2), _op("dot.1", 45, 1), _op("fusion.4", 50, 1),
                          _op("dot.1", 52, 9, module="jit_eval")],  # another program's dot.1
    }),
    ("/host:metadata", {}),
]
# (op, module) -> (runs, µs)
CPU_WANT = {("dot.1", "jit_step"): (3, 7.0), ("fusion.4", "jit_step"): (2, 4.0),
            ("fusion.5", "jit_step"): (1, 8.0), ("dot.1", "jit_eval"): (1, 9.0)}

# A GPU trace: each device plane lists the ops on its "XLA Ops" line; its other lines repeat
# that time (kernels on a stream, the module, the step), and the host launched the work.
_GPU0_OPS = [_op("dot.1", 1, 5), _op("fusion.2", 7, 2), _op("while.3", 10, 12),
             _op("fusion.4", 11, 3), _op("fusion.4", 15, 4), _op("dot.1", 23, 3)]
GPU_PLANES = [
    ("/host:CPU", {
        "python": [_event("PjitFunction(step)", 0, 30)],
        "tf_pjrt_launch": [_op("dot.1", 0, 1), _op("fusion.2", 2, 1)],  # launches, not device time
    }),
    ("/device:GPU:0", {
        "Steps": [_event("0", 0, 30)],
        "XLA Modules": [_event("jit_step(1)", 0, 30, "jit_step")],
        "XLA Ops": _GPU0_OPS,
        "Stream #14(Compute)": [_event(f"kernel_{name}", start, duration, "jit_step", name)
                                for name, start, duration, _ in _GPU0_OPS if name != "while.3"],
    }),
    ("/device:GPU:1", {"XLA Ops": [_op("dot.1", 2, 6), _op("fusion.2", 9, 1)]}),
]
GPU_WANT = {("dot.1", "jit_step"): (3, 14.0), ("fusion.2", "jit_step"): (2, 3.0),
            ("fusion.4", "jit_step"): (2, 7.0)}


@functools.cache
def _synthetic(which: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"build_profile_{which}_"))
    atexit.register(shutil.rmtree, folder, True)
    return _write_trace(folder, CPU_PLANES if which == "cpu" else GPU_PLANES)


def _table(m, logdir) -> dict[tuple[str, str], tuple[int, float]]:
    """m.op_times(logdir) as (name, module) -> (runs, µs), checked for its form."""
    ops = m.op_times(logdir)
    assert isinstance(ops, list), f"op_times: returned {type(ops).__name__}, want a list of OpTime"
    table = {}
    for o in ops:
        assert all(hasattr(o, a) for a in ("name", "module", "count", "seconds")), \
            f"op_times: {o!r} has not the fields name, module, count, seconds"
        assert (o.name, o.module) not in table, f"op_times: ({o.name!r}, {o.module!r}) is listed twice"
        table[o.name, o.module] = (o.count, o.seconds * 1e6)
    assert [o.seconds for o in ops] == sorted((o.seconds for o in ops), reverse=True), \
        "op_times: the ops are not sorted by total time, longest first"
    return table


# ---- 8.7: op_times ----

def check_op_times_matches_core(m):
    logdir, hlo = _recorded()
    got, want = _table(m, logdir), _core_ops()
    for name, module in sorted(got.keys() - want.keys()):
        if re.search(rf"^\s*(?:ROOT )?%{re.escape(name)} = ", hlo, re.MULTILINE):
            raise AssertionError(f"op_times: counts {name!r}, an op that other ops run inside (a loop "
                                 "around its body): that time is counted twice")
        raise AssertionError(f"op_times: counts {name!r}, which is no compiled op of the traced "
                             "programs (a host event?)")
    missing = sorted(want.keys() - got.keys())
    assert not missing, f"op_times: misses {len(missing)} op(s) of the trace, e.g. {missing[0]}"
    for key, op in want.items():
        count, us = got[key]
        assert count == op.count, (f"op_times: {key[0]} ran {op.count} times in the trace, you count "
                                   f"{count}: add up every run")
        assert math.isclose(us, op.seconds * 1e6, rel_tol=REL), (
            f"op_times: {key[0]} took {op.seconds * 1e6:.3f} µs over its {op.count} runs, you say "
            f"{us:.3f}: the time is the sum of every run's duration")


def check_op_times_host_events(m):
    got = _table(m, _synthetic("cpu"))
    host = sorted(name for name, _ in got if not re.fullmatch(r"[a-z]+\.\d+", name))
    assert not host, (f"op_times: counts {host[0]!r}, a host event (it carries no hlo_op stat): only "
                      "events that carry an hlo_op stat are compiled ops")


def check_op_times_nested(m):
    got = _table(m, _synthetic("cpu"))
    assert ("while.3", "jit_step") not in got, (
        "op_times: counts 'while.3', an op that the ops after it on its line run inside (a loop "
        "around its body): that time would be counted twice; leave such a container out")
    for key in (("fusion.4", "jit_step"), ("fusion.5", "jit_step")):
        assert key in got and math.isclose(got[key][1], CPU_WANT[key][1], rel_tol=REL), (
            f"op_times: {key[0]}, run inside a loop, took {CPU_WANT[key][1]} µs, you say "
            f"{got.get(key, (0, 0.0))[1]:.3f}: count the ops inside a container")


def check_op_times_repeats(m):
    got = _table(m, _synthetic("cpu"))
    for key, (count, us) in CPU_WANT.items():
        assert key in got, f"op_times: misses {key[0]} of {key[1]} (the same name in two programs is two ops)"
        assert got[key][0] == count, (f"op_times: {key[0]} of {key[1]} ran {count} times (on two "
                                      f"threads), you count {got[key][0]}: add up every run")
        assert math.isclose(got[key][1], us, rel_tol=REL), (
            f"op_times: {key[0]} of {key[1]} ran for {us} µs in all, you say {got[key][1]:.3f}: "
            "the time is the sum of every run's duration")


def check_op_times_device_planes(m):
    got = _table(m, _synthetic("gpu"))
    for key, (count, us) in GPU_WANT.items():
        n, t = got.get(key, (0, 0.0))
        assert n == count and math.isclose(t, us, rel_tol=REL), (
            f"op_times: on the GPU trace {key[0]} ran {count} times for {us} µs on the devices' "
            f"XLA Ops lines, you count {n} runs, {t:.3f} µs: with device planes, only each one's "
            "'XLA Ops' line counts (its other lines repeat that time, the host's events are not device time)")
    extra = sorted(got.keys() - GPU_WANT.keys())
    assert not extra, f"op_times: on the GPU trace counts {extra[0][0]!r}, which is not a device op to count"


def check_op_times_no_trace(m):
    folder = Path(tempfile.mkdtemp(prefix="build_profile_empty_"))
    try:
        m.op_times(folder)
    except FileNotFoundError:
        return
    except NotImplementedError:
        raise
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"op_times: a folder with no .xplane.pb raised {type(e).__name__}, want "
                             "FileNotFoundError") from None
    finally:
        shutil.rmtree(folder, True)
    raise AssertionError("op_times: a folder with no .xplane.pb returned; raise FileNotFoundError")


# ---- 8.8: categorize ----

# (name, category, why): names as XLA's CPU, GPU and TPU backends write them, read without HLO.
NAMES = [
    ("dot.3", "matmul", "a dot is a matrix product"),
    ("gemm_fusion_dot.12", "matmul", "a fusion that holds a dot is a matmul, whatever else it holds"),
    ("convolution_add_fusion.2", "matmul", "a fusion that holds a convolution is a matmul"),
    ("cublas-gemm.1", "matmul", "a gemm kernel is a matrix product"),
    ("all-reduce.1", "collective", "an all-reduce moves data between devices (it is no reduction on one)"),
    ("all-reduce-start.4", "collective", "the start of an asynchronous all-reduce is a collective"),
    ("reduce-scatter.2", "collective", "a reduce-scatter moves data between devices"),
    ("all-gather-done", "collective", "the end of an asynchronous all-gather is a collective"),
    ("collective-permute-start.1", "collective", "a collective-permute moves data between devices"),
    ("flash_attention_fwd", "attention", "a fused attention kernel is attention"),
    ("copy.8", "copy", "a copy moves bytes and computes nothing"),
    ("wrapped_transpose", "copy", "a transpose moves bytes and computes nothing"),
    ("copy_bitcast_fusion.8", "copy", "a fusion of layout ops only moves bytes"),
    ("bitcast_dynamic-update-slice_fusion.14", "copy", "a fusion of layout ops only moves bytes"),
    ("add_transpose_fusion", "elementwise", "a fusion that adds computes, even if it also transposes"),
    ("multiply_convert_fusion.3", "elementwise", "a convert is elementwise, not a convolution"),
    ("loop_add_fusion", "elementwise", "an add fusion is elementwise"),
    ("input_reduce_fusion.1", "elementwise", "a reduction on one device is compute, not a collective"),
    ("fusion.12", "elementwise", "a fusion whose name says nothing else is compute"),
    ("while.5", "other", "a loop is control flow"),
    ("custom-call.2", "other", "a custom call whose name says nothing is other"),
]

# A compiled program, as jitted.lower(...).compile().as_text() prints one (trimmed).
HLO = """\
HloModule jit_handmade, entry_computation_layout={(f32[64,64]{1,0}, f32[64,64]{1,0}, s32[])->f32[64,64]{1,0}}

%fused_dot (param_0: f32[64,64], param_1: f32[64,64]) -> f32[64,64] {
  %param_0 = f32[64,64]{1,0} parameter(0)
  %param_1 = f32[64,64]{1,0} parameter(1)
  %dot.2 = f32[64,64]{1,0} dot(%param_0, %param_1), lhs_contracting_dims={1}, rhs_contracting_dims={0}, metadata={op_name="jit(step)/block/attention/dot_general" stack_frame_id=4}
  %constant.1 = f32[] constant(1)
  %broadcast.1 = f32[64,64]{1,0} broadcast(%constant.1), dimensions={}
  ROOT %add.1 = f32[64,64]{1,0} add(%dot.2, %broadcast.1), metadata={op_name="jit(step)/block/attention/add"}
}

%fused_transpose (param_0.1: f32[64,64], param_1.1: s32[]) -> f32[64,64] {
  %param_0.1 = f32[64,64]{1,0} parameter(0)
  %param_1.1 = s32[] parameter(1)
  %constant.2 = s32[] constant(1)
  %subtract.1 = s32[] subtract(%param_1.1, %constant.2), metadata={op_name="jit(step)/sub"}
  %dynamic-slice.1 = f32[64,64]{1,0} dynamic-slice(%param_0.1, %subtract.1, %subtract.1), dynamic_slice_sizes={64,64}
  %transpose.1 = f32[64,64]{0,1} transpose(%dynamic-slice.1), dimensions={1,0}
  ROOT %copy.1 = f32[64,64]{1,0} copy(%transpose.1)
}

%fused_exp (param_0.2: f32[64,64]) -> f32[64,64] {
  %param_0.2 = f32[64,64]{1,0} parameter(0)
  %exponential.1 = f32[64,64]{1,0} exponential(%param_0.2), metadata={op_name="jit(step)/block/attention/exp"}
  ROOT %multiply.1 = f32[64,64]{1,0} multiply(%exponential.1, %param_0.2), metadata={op_name="jit(step)/block/attention/mul"}
}

%inner_dot (param_0.3: f32[64,64], param_1.3: f32[64,64]) -> f32[64,64] {
  %param_0.3 = f32[64,64]{1,0} parameter(0)
  %param_1.3 = f32[64,64]{1,0} parameter(1)
  ROOT %dot.3 = f32[64,64]{1,0} dot(%param_0.3, %param_1.3), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%outer (param_0.4: f32[64,64], param_1.4: f32[64,64]) -> f32[64,64] {
  %param_0.4 = f32[64,64]{1,0} parameter(0)
  %param_1.4 = f32[64,64]{1,0} parameter(1)
  %fusion.1 = f32[64,64]{1,0} fusion(%param_0.4, %param_1.4), kind=kOutput, calls=%inner_dot
  ROOT %tanh.1 = f32[64,64]{1,0} tanh(%fusion.1)
}

%add_computation (x: f32[], y: f32[]) -> f32[] {
  %x = f32[] parameter(0)
  %y = f32[] parameter(1)
  ROOT %add.9 = f32[] add(%x, %y)
}

%body (arg: (s32[], f32[64,64])) -> (s32[], f32[64,64]) {
  %arg = (s32[], f32[64,64]{1,0}) parameter(0)
  %get-tuple-element.1 = f32[64,64]{1,0} get-tuple-element(%arg), index=1
  %get-tuple-element.2 = s32[] get-tuple-element(%arg), index=0
  %fusion.20 = f32[64,64]{1,0} fusion(%get-tuple-element.1, %get-tuple-element.1), kind=kOutput, calls=%inner_dot
  ROOT %tuple.1 = (s32[], f32[64,64]{1,0}) tuple(%get-tuple-element.2, %fusion.20)
}

%cond (arg.1: (s32[], f32[64,64])) -> pred[] {
  %arg.1 = (s32[], f32[64,64]{1,0}) parameter(0)
  %get-tuple-element.3 = s32[] get-tuple-element(%arg.1), index=0
  %constant.5 = s32[] constant(4)
  ROOT %compare.1 = pred[] compare(%get-tuple-element.3, %constant.5), direction=LT
}

ENTRY %main.1 (a: f32[64,64], b: f32[64,64], i: s32[]) -> f32[64,64] {
  %a = f32[64,64]{1,0} parameter(0), metadata={op_name="a"}
  %b = f32[64,64]{1,0} parameter(1), metadata={op_name="b"}
  %i = s32[] parameter(2), metadata={op_name="i"}
  %fusion.3 = f32[64,64]{1,0} fusion(%a, %b), kind=kOutput, calls=%fused_dot, metadata={op_name="jit(step)/block/attention/dot_general" stack_frame_id=4}
  %fusion.4 = f32[64,64]{1,0} fusion(%fusion.3, %i), kind=kLoop, calls=%fused_transpose, metadata={op_name="jit(step)/transpose"}
  %fusion.5 = f32[64,64]{1,0} fusion(%fusion.4), kind=kLoop, calls=%fused_exp, metadata={op_name="jit(step)/block/attention/exp"}
  %fusion.6 = f32[64,64]{1,0} fusion(%fusion.5, %b), kind=kLoop, calls=%outer
  %psum.7 = f32[64,64]{1,0} all-reduce(%fusion.6), replica_groups={{0,1,2,3,4,5,6,7}}, to_apply=%add_computation, metadata={op_name="jit(step)/psum"}
  %custom-call.8 = f32[64,64]{1,0} custom-call(%psum.7, %b), custom_call_target="__cublas$gemm", backend_config={"gemm_backend_config":{"alpha_real":1}}, metadata={op_name="jit(step)/block/attention/dot_general"}
  %custom-call.9 = f32[64,64]{1,0} custom-call(%custom-call.8, %a, %b), custom_call_target="__cudnn$fmhaSoftmax", metadata={op_name="jit(step)/block/attention/dot_product_attention"}
  %custom-call.10 = f32[64,64]{1,0} custom-call(%custom-call.9, %a, %b), custom_call_target="__gpu$xla.gpu.triton", backend_config={"name":"flash_attention_fwd","grid_x":4}, metadata={op_name="jit(step)/block/attention/pallas_call"}
  %custom-call.11 = f32[64,64]{1,0} custom-call(%custom-call.10), custom_call_target="xla_python_cpu_callback", metadata={op_name="jit(step)/block/attention/pure_callback"}
  %constant.6 = f32[] constant(0)
  %reduce.12 = f32[64]{0} reduce(%custom-call.11, %constant.6), dimensions={1}, to_apply=%add_computation, metadata={op_name="jit(step)/block/attention/reduce_sum"}
  %constant.7 = s32[] constant(0)
  %tuple.2 = (s32[], f32[64,64]{1,0}) tuple(%constant.7, %custom-call.11)
  %while.13 = (s32[], f32[64,64]{1,0}) while(%tuple.2), condition=%cond, body=%body
  ROOT %get-tuple-element.4 = f32[64,64]{1,0} get-tuple-element(%while.13), index=1
}
"""

# (op, category, why) for the ops of HLO, read with it.
HLO_FACTS = [
    ("fusion.3", "matmul", "it holds a dot (the op's metadata, its named scope, says where it came "
                           "from, not what it is)"),
    ("fusion.4", "copy", "it only slices, transposes and copies (the scalar subtract is index arithmetic)"),
    ("fusion.5", "elementwise", "it computes exp and multiply (the op's metadata, its named scope, says "
                                "where it came from, not what it is)"),
    ("fusion.6", "matmul", "it holds a fusion that holds a dot"),
    ("psum.7", "collective", "it is an all-reduce, whatever its name"),
    ("custom-call.8", "matmul", "its target is a cuBLAS gemm"),
    ("custom-call.9", "attention", "its target is cuDNN's fused attention"),
    ("custom-call.10", "attention", "its backend config names a flash-attention kernel"),
    ("custom-call.11", "other", "a custom call to a host callback is other"),
    ("reduce.12", "elementwise", "a reduction on one device is compute"),
    ("while.13", "other", "a loop is control flow, whatever its body holds"),
]


def _categorize(m, name: str, hlo: str = "") -> str:
    got = m.categorize(name, hlo) if hlo else m.categorize(name)
    assert got in CATEGORIES, f"categorize({name!r}) returned {got!r}, not one of CATEGORIES"
    return got


def check_categorize_names(m):
    for name, want, why in NAMES:
        got = _categorize(m, name)
        assert got == want, f"categorize({name!r}) is {got!r}, want {want!r}: {why}"


def check_categorize_hlo(m):
    for name, want, why in HLO_FACTS:
        got = _categorize(m, name, HLO)
        assert got == want, f"categorize({name!r}, hlo) is {got!r}, want {want!r}: {why}"
    for name, want in (("dot.99", "matmul"), ("transpose.98", "copy")):
        got = _categorize(m, name, HLO)
        assert got == want, (f"categorize({name!r}, hlo) is {got!r}, want {want!r}: an op the program "
                             "does not hold is read by its name")


def check_categorize_trace(m):
    logdir, hlo = _recorded()
    seen = set()
    for op in _core_ops().values():
        want = _what_it_holds(hlo, op)
        if want is None:
            continue
        got = _categorize(m, op.name, _module_text(hlo, op.module))
        what = "op that holds its dot" if want == "matmul" else f"{want} op"
        assert got == want, f"categorize({op.name!r}, hlo) is {got!r} for the traced program's {what}, want {want!r}"
        seen.add(want)
    missing = {"matmul", "elementwise", "copy"} - seen
    assert jax.devices()[0].platform != "cpu" or not missing, \
        f"test setup: the traced program shows no {sorted(missing)} op on this CPU"


# ---- 8.9: breakdown ----


def _breakdown(m, ops, steps, hlo=""):
    got = m.breakdown(ops, steps, hlo) if hlo else m.breakdown(ops, steps)
    assert isinstance(got, dict) and tuple(got) == CATEGORIES, \
        f"breakdown: returned keys {list(got) if isinstance(got, dict) else type(got).__name__}, want " \
        "every one of CATEGORIES, in that order"
    return got


def check_breakdown_per_step(m):
    # 3 steps of a 4-layer model: each layer's ops ran 4 times a step, 12 in the trace.
    ops = [OpTime("dot.1", "jit_step", 12, 1.2), OpTime("dot.2", "jit_step", 3, 0.3),
           OpTime("loop_add_fusion", "jit_step", 12, 0.6), OpTime("all-reduce.4", "jit_step", 3, 0.9),
           OpTime("copy.5", "jit_step", 12, 0.24), OpTime("while.6", "jit_step", 3, 0.03)]
    want = {"matmul": 0.5, "attention": 0.0, "elementwise": 0.2, "collective": 0.3, "copy": 0.08,
            "other": 0.01}
    got = _breakdown(m, ops, 3)
    for category, seconds in want.items():
        assert math.isclose(got[category], seconds, rel_tol=1e-9, abs_tol=1e-15), (
            f"breakdown: {category} is {got[category]:.4g} s per step, want {seconds:.4g} (dot.1 ran 12 "
            "times in 1.2 s over 3 steps): per step is the trace's total time divided by the number of "
            "steps, not by an op's runs")
    one = _breakdown(m, ops[:1], 1)
    assert math.isclose(one["matmul"], 1.2, rel_tol=1e-9), \
        f"breakdown: with steps=1 matmul is {one['matmul']:.4g} s, want the total, 1.2"
    try:
        m.breakdown(ops, 0)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"breakdown: steps=0 raised {type(e).__name__}, want ValueError") from None
    raise AssertionError("breakdown: steps=0 returned; a trace holds at least one step: raise ValueError")


def check_breakdown_modules(m):
    two = (HLO.replace("HloModule jit_handmade", "HloModule jit_a")
           + "\n" + HLO.replace("HloModule jit_handmade", "HloModule jit_b")
           .replace("calls=%fused_dot", "calls=%fused_exp"))  # jit_b's fusion.3 computes exp
    ops = [OpTime("fusion.3", "jit_a", 2, 1.0), OpTime("fusion.3", "jit_b", 2, 3.0),
           OpTime("fusion.4", "jit_c", 2, 5.0)]  # jit_c's text is not given: read by its name
    got = _breakdown(m, ops, 1, two)
    want = {"matmul": 1.0, "elementwise": 3.0 + 5.0}
    for category, seconds in want.items():
        assert math.isclose(got[category], seconds, rel_tol=1e-9), (
            f"breakdown: {category} is {got[category]:.4g} s, want {seconds:.4g}: each op is looked up "
            "in its own program's text (the HloModule named like op.module), by its name otherwise")


def check_breakdown_trace(m):
    logdir, hlo = _recorded()
    ops = list(_core_ops().values())
    got = _breakdown(m, ops, CALLS, hlo)
    total = sum(o.seconds for o in ops)
    assert math.isclose(sum(got.values()) * CALLS, total, rel_tol=1e-9), (
        f"breakdown: the categories add up to {sum(got.values()) * CALLS * 1e3:.4f} ms over {CALLS} "
        f"steps, the ops to {total * 1e3:.4f} ms: every op in exactly one category, per step")
    if jax.devices()[0].platform != "cpu":
        return  # an accelerator fuses the program its own way: the sum above is what holds everywhere
    want = {"matmul", "elementwise", "copy"} | ({"collective"} if len(jax.devices()) >= 8 else set())
    empty = sorted(c for c in want if got[c] <= 0)
    assert not empty, f"breakdown: the traced program's {empty[0]} time is {got[empty[0]]}, want > 0"


# ---- 8.10: summarize ----

def check_summarize_trace(m):
    logdir, hlo = _recorded()
    top = 4
    ops, out = _capture(m.summarize, logdir, top=top, steps=CALLS, hlo=hlo)
    want = sorted(_core_ops().values(), key=lambda o: o.seconds, reverse=True)[:top]
    n = len(ops) if isinstance(ops, list) else type(ops).__name__
    assert isinstance(ops, list) and len(ops) == top, f"summarize: returned {n} op(s), want the top {top}"
    assert {(o.name, o.module, o.count) for o in ops} == {(o.name, o.module, o.count) for o in want}, \
        f"summarize: returned {[o.name for o in ops]}, want op_times' first {top}: {[o.name for o in want]}"
    lines = out.splitlines()
    for category in CATEGORIES:
        assert any(line.split()[:1] == [category] for line in lines), \
            f"summarize: no printed line starts with the category {category!r}"
    for o in want:
        per_step = o.seconds / CALLS * 1e3
        assert any(o.name in line.split() and any(abs(float(x) - per_step) < 6e-4 for x in _numbers(line))
                   for line in lines), (
            f"summarize: no printed line names {o.name} with its {per_step:.3f} ms per step (its total "
            f"over the trace divided by the {CALLS} steps, three decimals)")


def check_summarize_no_ops(m):
    folder = Path(tempfile.mkdtemp(prefix="build_profile_idle_"))
    try:
        with core.trace(folder):
            sum(range(1000))  # Python only: no compiled op runs
        try:
            _capture(m.summarize, folder)
        except Error as e:
            assert str(e).strip() and "\n" not in str(e).strip(), \
                f"summarize: the error is not one line: {e!r}"
            return
        except NotImplementedError:
            raise
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"summarize: a trace with no compiled ops raised {type(e).__name__}, want "
                                 "shared.config.Error saying so in one line") from None
        raise AssertionError("summarize: a trace with no compiled ops returned; raise shared.config.Error")
    finally:
        shutil.rmtree(folder, True)


# ---- the tests: your answers (or the solution's, with --solutions) through every check ----

def test_op_times_matches_core(answers):
    check_op_times_matches_core(check_imports(answers))


def test_op_times_host_events(answers):
    check_op_times_host_events(check_imports(answers))


def test_op_times_nested(answers):
    check_op_times_nested(check_imports(answers))


def test_op_times_repeats(answers):
    check_op_times_repeats(check_imports(answers))


def test_op_times_device_planes(answers):
    check_op_times_device_planes(check_imports(answers))


def test_op_times_no_trace(answers):
    check_op_times_no_trace(check_imports(answers))


def test_categorize_names(answers):
    check_categorize_names(check_imports(answers))


def test_categorize_hlo(answers):
    check_categorize_hlo(check_imports(answers))


def test_categorize_trace(answers):
    check_categorize_trace(check_imports(answers))


def test_breakdown_per_step(answers):
    check_breakdown_per_step(check_imports(answers))


def test_breakdown_modules(answers):
    check_breakdown_modules(check_imports(answers))


def test_breakdown_trace(answers):
    check_breakdown_trace(check_imports(answers))


def test_summarize_trace(answers):
    check_summarize_trace(check_imports(answers))


def test_summarize_no_ops(answers):
    check_summarize_no_ops(check_imports(answers))
