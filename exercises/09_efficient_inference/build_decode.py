"""Build exercise (9.7-9.9): the KV-cached forward pass, and continuous batching's scheduler.

You write the two halves of serving:

- `extend` (9.7), the model's forward pass through a KV cache: prefill (a prompt chunk per
  row) and decode (one token per row) are both this one function. It has exactly the
  contract of shared.inference.extend, so static batching (shared.inference.generate) and
  the engine's contiguous cache (shared.engine.ContiguousKV) run on it in its place.
- `admit` (9.8) and `retire` (9.9), the host half of the engine's step (shared.engine.Engine):
  which waiting requests start in which free slots, and which requests are done and give
  their slot and memory back. The engine does the rest: prefills, decode steps, sampling.

Once the tests pass (`python -m pytest exercises/09_efficient_inference/test_build_decode.py`),
the serving jobs run on your pieces:

    python -m shared.generate --checkpoint runs/tiny --prompt "def " --kv-cache --mine
    python -m shared.bench serving --mine

Letters, in every shape below:

    B  batch rows (decode slots)      L  layers
    S  new tokens per row this call   T  cache positions per row (max_len)
    E  model width                    V  vocabulary
    H  query heads                    K  key/value heads (H a multiple of K)
    G  query heads per K head (H / K) D  head width

The cache is shared.inference.Cache, a pytree of one buffer per layer and the lengths:

    k       L x [B, K, D, T]   a tuple: each layer's keys (after RoPE), per row and head,
                               position last
    v       L x [B, K, T, D]   a tuple: each layer's values, per row, head and position
    length  int32 [B]          how many positions of each row are filled

The keys are stored as the scores' matmul reads them: q . k contracts over D, so one head's
keys are a [D, T] matrix; stored [T, D], they would be transposed by a copy of the whole layer
at every step (shared.inference's docstring says more, and why a buffer per layer).

Imports: jax, numpy, the standard library, shared.config, shared.inference's Cache and
init_cache (the data structure), and shared.model's building blocks: rms_norm, rope, matmul,
mlp_block, unembed and cast. Not the cached forward itself: the tests read this file and fail
if it uses shared.model's hidden, block, attention_block or forward, anything else of
shared.inference (extend, run), a cache's own update method, shared.attention or
shared.engine. Helper functions are yours to add; name them with a leading underscore.
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Protocol

import jax

from shared.config import ModelConfig
from shared.inference import Cache


def extend(params: dict, cache: Cache, tokens: jax.Array, n_valid: jax.Array,
           config: ModelConfig) -> tuple[jax.Array, Cache]:
    """Exercise 9.7: run new tokens through the model and its KV cache.

    params: the model's parameters (shared.model.init's tree), with params["blocks"] either
      stacked over the L layers or a list of L per-layer dicts (shared.inference.prepare's
      form, which generate and the engine pass). Cast weights to config.dtype (cast) as the
      core does; float32 logits.
    tokens: int [B, S]; row b's S new tokens go at positions cache.length[b] ..
      cache.length[b] + S - 1 of its sequence. Only the first n_valid[b] of them are real
      (int [B]): the rest is padding (prompts of different lengths, right-padded), and a row
      with n_valid[b] = 0 takes no step (an idle slot). Every row has
      length + n_valid <= T.

    The model is shared.model's, layer by layer (pre-norm: x + attention(rms_norm(x)), then
    x + mlp(rms_norm(x)); the final rms_norm; unembed), with attention through the cache:
    - each layer writes its new keys (rotated by RoPE) and values into that layer's cache,
      each at its token's position in its own row; positions before a row's length are
      never changed, nor any position past the chunk. Padding's keys may be written
      (a later step overwrites them) or not. A position at or past T is not written.
      (Speed, not graded: a write indexed by arrays for row, head and position is a scatter
      XLA:CPU runs in place; `.at[rows, :, :, positions]` also copies the layer; lesson 08 §5.)
    - a new token's query at position p reads the cache of its own row at positions
      0..p (the tokens before it, and itself), whatever else the cache holds; the scores
      are q . k / sqrt(D), softmax over the allowed positions in float32, and query head h
      reads key/value head h // G.
    Returns (logits float32 [B, V] at each row's last valid token (anything for a row with
    n_valid = 0), the new Cache: tuples of L buffers again, each of the same shape, and each
    row's length grown by n_valid).
    It runs under jax.jit with config static (no Python `if` on array values).
    """
    raise NotImplementedError("Exercise 9.7: the model's forward pass through a KV cache")


class Memory(Protocol):
    """The engine's KV memory bookkeeping (shared.engine.ContiguousKV, shared.paged.PagedKV)."""

    def can_admit(self, n_prompt: int, budget: int) -> bool:
        """Whether the memory still free can take a request of n_prompt + budget tokens."""

    def admit(self, slot: int, n_prompt: int, budget: int) -> None:
        """Reserve memory for such a request in decode slot `slot`."""

    def release(self, slot: int) -> None:
        """Give back everything decode slot `slot` holds."""


def admit(queue: collections.deque, active: list, kv: Memory,
          budget: Callable[[Any], int]) -> list[tuple[int, tuple]]:
    """Exercise 9.8: the waiting requests that start now, each in a free decode slot.

    queue: the engine's waiting entries, oldest first. Each is a tuple (request, submitted):
      request.prompt is an int array [P]; pass the entries on as they are.
    active: what each decode slot holds, None when it is free. Read it, do not change it
      (the engine fills each slot once its prompt is prefilled).
    kv: the engine's KV memory (Memory above). budget(request) -> int: the tokens the
      request may generate; kv is asked about (len(request.prompt), budget(request)).

    The policy (continuous batching, first come first served):
    - a free slot takes a waiting request at once, whatever the other slots are doing;
      every free slot is used while requests wait and the memory takes them; each slot
      takes one request, the lowest-numbered free slots first;
    - requests start in the order they arrived; when the memory cannot take the oldest
      waiting request now, it waits, and every request behind it waits too (none may
      overtake it, or a long request could wait forever);
    - each admitted request's memory is reserved (kv.admit) before the next is asked about.
    Returns [(slot, entry), ...] in the order the requests arrived, those entries removed
    from the front of the queue; [] when none starts.
    """
    raise NotImplementedError("Exercise 9.8: admit waiting requests into free decode slots")


def retire(active: list, kv: Memory) -> list[tuple[int, Any, str]]:
    """Exercise 9.9: end the requests that are done, and free their slots and memory.

    active: what each decode slot holds, None when free; a held slot's record has
      record.out: list[int], the tokens the request generated so far, the newest last
        (retire runs after every new token, so a request is done at most one token ago);
      record.budget: int, how many tokens it may generate;
      record.request.stop: a tuple of stop sequences (tuples of tokens).
    A request is done when its output ends with one of its stop sequences: finish "stop",
    and that stop sequence is removed from record.out (an empty sequence never matches);
    otherwise when its output holds `budget` tokens: finish "length".
    For each done request, its slot becomes free (active[slot] = None) and its memory is
    given back (kv.release(slot)); the other slots are left as they are.
    Returns [(slot, record, finish), ...] for the done requests, in slot order.
    """
    raise NotImplementedError("Exercise 9.9: retire finished requests and release their slots")
