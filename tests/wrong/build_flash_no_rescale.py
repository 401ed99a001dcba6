"""Wrong build (lesson 05): the running weighted sum is not rescaled when a block raises the max."""

import jax.numpy as jnp

from pathlib import Path

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_forward_online_softmax", "must be rescaled to the new max")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/05_attention/build_flash.py")


def _online_update_acc_not_rescaled(carry, s, v_blk):
    acc, m, l = carry
    m_new = jnp.maximum(m, s.max(axis=-1))
    p = jnp.exp(s - m_new[..., None])
    pv = jnp.einsum("BKGST,BTKD->BKGSD", p.astype(v_blk.dtype), v_blk, preferred_element_type=jnp.float32)
    return acc + pv, m_new, jnp.exp(m - m_new) * l + p.sum(axis=-1)  # acc kept at the old max's scale


_m._online_update = _online_update_acc_not_rescaled
flash_attention = _m.flash_attention
