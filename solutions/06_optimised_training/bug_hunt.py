"""Exercises 6.10-6.11, answered: debugging tools (section 10)."""

from __future__ import annotations

import re
from typing import Any, Callable

import jax
import jax.extend.core as jex
from jax import monitoring
from jax.experimental import checkify

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # one per backend compilation
# The checked program runs once: ask XLA for a quick compile, not a fast program.
QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _name_stack(jaxpr, traceback) -> str | None:
    """The name stack of the equation traced with this traceback, searched into the jaxprs
    inside equations (jit, scan, custom_vjp), each outer equation's scopes put in front."""
    for eqn in jaxpr.eqns:
        if eqn.source_info.traceback is traceback:
            return str(eqn.source_info.name_stack)
        for sub in jex.jaxprs_in_params(eqn.params):
            inner = _name_stack(sub, traceback)
            if inner is not None:
                return "/".join(s for s in (str(eqn.source_info.name_stack), inner) if s)
    return None


def first_nan(fn: Callable, *args: Any) -> tuple[str, str] | None:
    """Exercise 6.10: where fn(*args) made its first NaN or indexed out of bounds."""
    # Trace once, then replay that jaxpr under checkify: the error then carries the
    # traceback of one of the jaxpr's own equations, and that equation has the name stack.
    closed = jax.make_jaxpr(fn)(*args)
    checked = checkify.checkify(jex.jaxpr_as_fun(closed),
                                errors=checkify.float_checks | checkify.index_checks)
    flat = jax.tree.leaves(args)
    lowered = jax.jit(checked).lower(*flat)  # one program: op by op, every op compiles alone
    try:
        program = lowered.compile(compiler_options=QUICK_COMPILE)
    except Exception:  # a backend that does not take these options
        program = lowered.compile()
    error, _ = program(*flat)
    exc = error.get_exception()
    if exc is None:
        return None
    stack = _name_stack(closed.jaxpr, exc.traceback_info) or ""
    # "transpose(jvp(layer1))/mlp" -> "layer1/mlp"
    parts = [re.sub(r"^(?:\w+\()+", "", p).rstrip(")") for p in stack.split("/")]
    return "/".join(p for p in parts if p), str(exc)


def _signature(value: Any) -> tuple:
    """What jit's cache keys a traced argument on (shape, dtype, weak type); a value that
    cannot be traced (a string, say) can only be a static argument: its value."""
    try:
        aval = jax.typeof(value)
    except TypeError:
        return ("static", value)
    return (aval.shape, str(aval.dtype), aval.weak_type)


def recompiles(fn: Callable, calls: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Exercise 6.11: which calls made a jitted function compile, and which argument caused it."""
    compiled = [0]

    def count(event: str, seconds: float, **kwargs) -> None:
        if event == COMPILE_EVENT:
            compiled[0] += 1

    found: list[tuple[int, str]] = []
    monitoring.register_event_duration_secs_listener(count)
    try:
        for i, call in enumerate(calls):
            before = compiled[0]
            jax.block_until_ready(fn(**call))
            if compiled[0] == before:
                continue
            if i == 0:
                found.append((0, ""))
                continue
            previous = calls[i - 1]
            changed = [k for k in call if _signature(call[k]) != _signature(previous[k])]
            if not changed:  # a static number: same type, new value
                changed = [k for k in call if type(call[k]) is not type(previous[k])
                           or not hasattr(call[k], "shape") and call[k] != previous[k]]
            found.append((i, changed[0] if changed else "?"))
    finally:
        monitoring.unregister_event_duration_listener(count)
    return found
