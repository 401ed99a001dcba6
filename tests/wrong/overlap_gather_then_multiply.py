"""Wrong answer (exercise 4.4): gather all of x with n - 1 ppermutes, then one matmul: right
values and no all-gather, but no matmul overlaps a transfer."""

import jax
import jax.numpy as jnp

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_collective_matmul_block_interleaved", "no matmul between them")


def collective_matmul_block(x_block, w_cols, axis, n):
    me = jax.lax.axis_index(axis)
    to_right = [(i, (i + 1) % n) for i in range(n)]
    blocks = [x_block]  # blocks[t]: device (me - t)'s columns of x
    for _ in range(n - 1):
        blocks.append(jax.lax.ppermute(blocks[-1], axis, to_right))
    w_rows = w_cols.reshape(n, x_block.shape[1], w_cols.shape[1])  # [n, E/n, F/n]
    w_held = jnp.concatenate([w_rows[(me - t) % n] for t in range(n)])  # rows in the blocks' order
    return jnp.matmul(jnp.concatenate(blocks, axis=1), w_held,
                      preferred_element_type=jnp.float32).astype(x_block.dtype)
