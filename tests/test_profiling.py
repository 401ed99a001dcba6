"""shared.profiling: a trace of a jitted function on the CPU, read back headlessly."""

import jax
import jax.numpy as jnp
import pytest

from shared import profiling

CALLS = 3


def traced_ops(tmp_path):
    def tanh_of_matmul(a, b):
        return jnp.tanh(a @ b)

    f = jax.jit(tanh_of_matmul)
    a = jnp.ones((256, 256))
    jax.block_until_ready(f(a, a))  # compile outside the trace
    with profiling.trace(tmp_path):
        for _ in range(CALLS):
            jax.block_until_ready(f(a, a))
    return f.lower(a, a).compile().as_text(), profiling.summarize(tmp_path)


def test_summarize_finds_the_compiled_ops(tmp_path, capsys):
    hlo, ops = traced_ops(tmp_path)
    assert ops, "summarize returned no ops for a traced jitted function"
    for op in ops:
        assert f"%{op.name} " in hlo, f"op {op.name!r} from the trace is not an instruction of the compiled HLO"
        assert "tanh_of_matmul" in op.module, f"op {op.name} belongs to {op.module!r}, not jit_tanh_of_matmul"
        assert op.count == CALLS, f"op {op.name} ran {op.count} times in the trace, expected {CALLS}"
        assert op.seconds > 0, f"op {op.name} has no duration"
    assert ops == sorted(ops, key=lambda o: o.seconds, reverse=True), "ops are not sorted by time"
    assert ops[0].name in capsys.readouterr().out, "the top op was not printed"


def test_no_trace_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .xplane.pb"):
        profiling.summarize(tmp_path)
