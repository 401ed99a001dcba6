"""Reading a traced program for the exercise checks: the jaxprs inside an equation (a scan's
body, a custom_vjp's function, a kernel), and every primitive a program uses."""

from __future__ import annotations

from typing import Iterator


def sub_jaxprs(eqn) -> Iterator:
    """The jaxprs an equation holds in its parameters (closed or open, alone or in a list)."""
    for param in eqn.params.values():
        for sub in param if isinstance(param, (list, tuple)) else [param]:
            sub = getattr(sub, "jaxpr", sub)
            if hasattr(sub, "eqns"):
                yield sub


def primitives(jaxpr, *, into_kernels: bool = True) -> set[str]:
    """The primitive names in jaxpr and the jaxprs inside it (a pallas_call's kernel's only
    when into_kernels)."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        if eqn.primitive.name == "pallas_call" and not into_kernels:
            continue
        for sub in sub_jaxprs(eqn):
            names |= primitives(sub, into_kernels=into_kernels)
    return names
