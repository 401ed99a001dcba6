"""Wrong build (lesson 10): the running sum is not rescaled when a key tile raises the running max."""

import jax.numpy as jnp

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_online_softmax", "must be rescaled to the new max")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/10_pallas_aot/build_pallas.py")


def _online_update_sum_not_rescaled(carry, s, v):
    acc, m, l = carry
    m_new = jnp.maximum(m, jnp.max(s, axis=1, keepdims=True))
    p = jnp.exp(s - m_new)
    rescale = jnp.exp(m - m_new)
    l = l + jnp.sum(p, axis=1, keepdims=True)  # l kept at the old max's scale
    acc = rescale * acc + jnp.dot(p.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return acc, m_new, l


_m._online_update = _online_update_sum_not_rescaled
flash_forward = _m.flash_forward
