"""Paged KV cache: a pool of fixed-size pages, a free list, and a page table per slot (lesson 09).

A contiguous cache reserves max_len positions for every slot; a request that stops
after 40 tokens leaves the rest of its row empty. Here keys and values live in

    k, v    [L, P, K, page, D]    P pages of `page` positions each (the pool)
    table   [slots, max_len/page] int32 (host): page j of a slot's sequence is table[slot, j]

Position p of a slot is offset p % page of page table[slot, p // page]. A slot
holds pages only for positions it has reached: a page is taken from the free list
when the sequence first writes into it and given back when the request ends, so
allocated memory exceeds used memory by less than one page per sequence.

Page 0 is never handed out: it is the sink for writes nobody reads. Table entries a
slot has not reached point there, so the padding of a prefill and the steps of an
empty slot write to it harmlessly, and attention never reads it unmasked (a query at
position p reads only positions <= p, all in pages its slot holds).

Admission: a request is admitted when a slot is free and the pool can cover its worst
case, prompt + max_new_tokens (pages not yet taken are reserved, not held). So a
running request never finds the pool empty: newer requests wait in the queue instead,
and none is dropped or corrupted. (vLLM admits more eagerly and preempts when the
pool runs out; that needs recomputation or swapping, which this course leaves out.)
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from shared import inference
from shared.config import Error, ModelConfig


class PoolError(Error):
    """The pool cannot serve the configuration; the message names the numbers."""


def gather_pages(pages: jax.Array, table: jax.Array) -> jax.Array:
    """One layer's pages [P, K, page, D] read through table [B, n] as sequences [B, K, n * page, D]."""
    B, n = table.shape
    _, K, page, D = pages.shape
    seq = pages[table].transpose(0, 2, 1, 3, 4)  # [B, n, K, page, D] -> [B, K, n, page, D]: a gather
    return seq.reshape(B, K, n * page, D)  # [B, K, T, D], T = n * page


def locate(table: jax.Array, positions: jax.Array, page: int) -> tuple[jax.Array, jax.Array]:
    """(page id, offset) [B, S] each of positions [B, S] through table [B, n]."""
    return jnp.take_along_axis(table, positions // page, axis=1), positions % page


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PagedCache:
    """Keys and values in pages, read through a page table (shared.model.KVCache).

    The keys keep the values' [page, D] layout, unlike the contiguous cache's [D, T]: the
    gather copies the pages anyway, and gathering the keys into [D, T] made decoding slower
    (lesson 09 §4)."""

    k: jax.Array  # [L, P, K, page, D]
    v: jax.Array  # [L, P, K, page, D]
    table: jax.Array  # int32 [B, n]: page j of row b's sequence is table[b, j]

    def update(self, layer, k, v, positions):
        page_ids, offsets = locate(self.table, positions, self.k.shape[3])
        # One scatter per array: the slots [B, S] of page ids and offsets take [B, S, K, D].
        k_pages = self.k.at[layer, page_ids, :, offsets].set(k)
        v_pages = self.v.at[layer, page_ids, :, offsets].set(v)
        view = lambda pages: jnp.einsum("BKTD->BTKD", gather_pages(pages[layer], self.table))
        B, T = self.table.shape[0], self.table.shape[1] * self.k.shape[3]
        return (dataclasses.replace(self, k=k_pages, v=v_pages), view(k_pages), view(v_pages),
                jnp.broadcast_to(jnp.arange(T), (B, T)))


def extend(params: dict, cache: PagedCache, lengths: jax.Array, tokens: jax.Array,
           n_valid: jax.Array, config: ModelConfig) -> tuple[jax.Array, PagedCache]:
    """inference.extend through a page table: tokens [B, S] at positions lengths..+S of the
    sequences cache.table [B, n] describes; logits [B, V] at each row's last valid token.
    (The lengths are the engine's to keep: it knows them on the host.)"""
    positions = lengths[:, None] + jnp.arange(tokens.shape[1])  # [B, S]
    return inference.run(params, cache, tokens, positions, n_valid, config)


class PagedKV:
    """Engine storage (see shared.engine.ContiguousKV for the interface) with pages.

    pages: pool size including the sink page; default enough for every slot at max_len.
    """

    def __init__(self, config: ModelConfig, slots: int, max_len: int | None = None, *,
                 page: int = 16, pages: int | None = None):
        self.config, self.slots, self.page = config, slots, page
        self.max_len = max_len or config.seq_len
        if self.max_len % page:
            raise PoolError(f"max_len {self.max_len} must be a multiple of the page size {page}")
        self.pages_per_seq = self.max_len // page
        self.pages = pages or slots * self.pages_per_seq + 1
        if self.pages < 2:
            raise PoolError(f"a pool of {self.pages} pages has no page to hand out (page 0 is the sink)")
        c = config
        shape = (c.n_layers, self.pages, c.kv_heads, page, c.head_dim)  # [L, P, K, page, D]
        self.table = np.zeros((slots, self.pages_per_seq), np.int32)  # 0: the sink
        self.state = PagedCache(jnp.zeros(shape, c.dtype), jnp.zeros(shape, c.dtype),
                                jnp.asarray(self.table))
        self.free = list(range(self.pages - 1, 0, -1))  # pop() hands out low ids first
        self.held: list[list[int]] = [[] for _ in range(slots)]
        self.reserved = [0] * slots  # pages each slot may still need, worst case, held included

    # ---- device programs ----

    def prefill(self, params, cache, tokens, n, slot, table_row):
        """The prompt through its slot's row of the table (the cache keeps the whole table)."""
        row = dataclasses.replace(cache, table=table_row)
        logits, row = extend(params, row, jnp.zeros(1, jnp.int32), tokens, n, self.config)
        return logits, dataclasses.replace(row, table=cache.table)

    def decode(self, params, cache, tokens, n_valid, table, lengths):
        """One step of every slot through the host's current table."""
        return extend(params, dataclasses.replace(cache, table=table), lengths, tokens, n_valid,
                      self.config)

    def prefill_aux(self, slot: int) -> tuple:
        return (self.table[slot:slot + 1].copy(),)

    def decode_aux(self, lengths: np.ndarray) -> tuple:
        return self.table.copy(), lengths

    # ---- host bookkeeping ----

    def pages_for(self, positions: int) -> int:
        return math.ceil(positions / self.page)

    def refusal(self, n_prompt: int, budget: int) -> str:
        """Why a request can never be served by this pool, or "" if it can."""
        need = self.pages_for(n_prompt + budget - 1)
        if need > self.pages - 1:
            return (f"needs {need} pages of {self.page} positions for {n_prompt} prompt + "
                    f"{budget} new tokens; the pool has {self.pages - 1}")
        return ""

    def can_admit(self, n_prompt: int, budget: int) -> bool:
        return sum(self.reserved) + self.pages_for(n_prompt + budget - 1) <= self.pages - 1

    def admit(self, slot: int, n_prompt: int, budget: int) -> None:
        self.reserved[slot] = self.pages_for(n_prompt + budget - 1)
        self.grow(slot, n_prompt - 1)

    def grow(self, slot: int, position: int) -> None:
        """Hold pages up to the one `position` falls in (taken from the free list)."""
        while len(self.held[slot]) <= position // self.page:
            assert len(self.held[slot]) < self.reserved[slot], "a slot outgrew its reservation"
            page = self.free.pop()
            self.table[slot, len(self.held[slot])] = page
            self.held[slot].append(page)

    def release(self, slot: int) -> None:
        self.free.extend(reversed(self.held[slot]))
        self.held[slot], self.reserved[slot] = [], 0
        self.table[slot] = 0

    def memory(self, lengths: list[int]) -> tuple[int, int]:
        """(bytes of the pages held, bytes holding a live token's keys and values)."""
        per = inference.kv_bytes_per_token(self.config)
        return sum(map(len, self.held)) * self.page * per, sum(lengths) * per

    @property
    def pool_bytes(self) -> int:
        return self.pages * self.page * inference.kv_bytes_per_token(self.config)
