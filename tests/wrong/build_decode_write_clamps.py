"""Wrong build (lesson 09): the cache write is a per-row dynamic_update_slice, which clamps a
position past T back into the row: an idle row whose cache is full overwrites its last token."""

from pathlib import Path

import jax
import jax.numpy as jnp

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_extend_own_row", "at or past T is not written")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/09_efficient_inference/build_decode.py")


def _write(cache, layer, new, positions):
    rows = jnp.einsum("BSKD->BKSD", new)  # [B, K, S, D], the cache's order
    put = lambda row, chunk, start: jax.lax.dynamic_update_slice(row, chunk, (0, start, 0))
    return cache.at[layer].set(jax.vmap(put)(cache[layer], rows, positions[:, 0]))


_m._write = _write
extend, admit, retire = _m.extend, _m.admit, _m.retire
