"""Wrong build (lesson 09): the cache write is a per-row dynamic_update_slice, which clamps a
position past T back into the row: an idle row whose cache is full overwrites its last token."""

from pathlib import Path

import jax
import jax.numpy as jnp

from shared.course.pytest_plugin import load_module

# the check that rejects this build, and words its one-line reason must say
REJECTED_BY = ("check_extend_own_row", "at or past T is not written")

_m = load_module(Path(__file__).resolve().parents[2] / "solutions/09_efficient_inference/build_decode.py")


def _clamping(order: str, start_at):
    """A write of new [B, S, K, D] rearranged by `order` into the layer buffer's layout, per row
    with dynamic_update_slice at start_at(position)."""
    def write(layer, new, positions):
        put = lambda row, chunk, start: jax.lax.dynamic_update_slice(row, chunk, start_at(start))
        return jax.vmap(put)(layer, jnp.einsum(order, new), positions[:, 0])
    return write


_m._write_keys = _clamping("BSKD->BKDS", lambda start: (0, 0, start))  # [B, K, D, S]
_m._write_values = _clamping("BSKD->BKSD", lambda start: (0, start, 0))  # [B, K, S, D]
extend, admit, retire = _m.extend, _m.admit, _m.retire
