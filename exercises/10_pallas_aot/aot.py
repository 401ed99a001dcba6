"""Exercises 10.5-10.6: compiling ahead of time and shipping a compiled program."""

from __future__ import annotations

from typing import Callable

import jax


def export_roundtrip(fn: Callable, *args: jax.Array) -> tuple[bytes, jax.Array]:
    """Exercise 10.5: export fn, serialise it, load it back and call it.

    Export jax.jit(fn) for the shapes and dtypes of args (jax.export.export), serialise
    the result to bytes, deserialise those bytes (jax.export.deserialize) and call the
    loaded program on args. Returns (the serialised bytes, the loaded program's output).
    """
    raise NotImplementedError("Exercise 10.5: a function's round trip through jax.export")


def compiled_cost(fn: Callable, *specs: jax.ShapeDtypeStruct) -> dict[str, float]:
    """Exercise 10.6: the cost of fn read from the compiler, without running it.

    specs describe the arguments (jax.ShapeDtypeStruct: shape and dtype, no data).
    Lower and compile jax.jit(fn) for them and return {"flops": ..., "argument bytes": ...}
    from the compiled program's cost analysis and memory analysis.
    """
    raise NotImplementedError("Exercise 10.6: a function's cost from the compiler, without running it")
