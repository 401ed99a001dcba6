"""Speculative decoding: a small draft model proposes, the target verifies (lesson 09).

A decode step of the target reads every weight to produce one token (lesson 08: it is
memory-bound), so running it over k + 1 positions costs about the same as over one.
Speculative decoding (Leviathan et al. 2023, arXiv:2211.17192; Chen et al. 2023,
arXiv:2302.01318) spends that spare compute:

    propose   the draft decodes k tokens d1..dk, one at a time, from its own KV cache
    verify    the target runs [pending, d1, ..., dk] in ONE pass (extend with S = k + 1)
              and gives its greedy choice g0..gk after each of those positions
    accept    the longest prefix with d_i = g_{i-1}: n of the k drafts, then the target's
              own next token g_n; 1..k+1 new tokens for one target pass
    roll back both caches to the accepted tokens: positions past a cache's length are
              never read (a query at position p attends to positions <= p, and the next
              extend writes positions length.. before it attends), so rollback only sets
              Cache.length

With greedy acceptance the output is token for token the target's own greedy output:
every emitted token is the target's argmax given the tokens before it (tests/
test_speculative.py checks it). Sampling with a temperature (the papers' rejection
sampling) is not implemented here.

One round is one compiled program (propose + verify + accept + rollback) and one host
sync for the number accepted. `generate` serves one prompt at a time: speculative
decoding buys latency at small batch, where the target's step leaves compute idle.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from shared import inference, model
from shared.config import ModelConfig
from shared.inference import Cache, InferenceError


def verify(params: dict, cache: Cache, tokens: jax.Array, config: ModelConfig
           ) -> tuple[jax.Array, Cache]:
    """The target over tokens [B, S] at positions cache.length..+S-1: float32 logits
    [B, S, V] at EVERY position (inference.extend keeps only the last), and the cache
    with all S written (length + S).

    The same blocks and cache as inference.run: model.hidden with kv=cache, then the
    unembedding of all S positions instead of one.
    """
    S = tokens.shape[1]
    positions = cache.length[:, None] + jnp.arange(S)  # [B, S]
    x, cache = model.hidden(params, tokens, config, positions=positions, kv=cache)  # [B, S, E]
    logits = model.unembed(params, x, config)  # [B, S, V]
    return logits, dataclasses.replace(cache, length=cache.length + S)


def rollback(cache: Cache, length: jax.Array) -> Cache:
    """The cache cut back to length [B] positions per row: only the length changes."""
    return dataclasses.replace(cache, length=jnp.asarray(length, jnp.int32))


def propose(params: dict, cache: Cache, first: jax.Array, n_first: jax.Array, k: int,
            config: ModelConfig) -> tuple[jax.Array, Cache]:
    """The draft's k greedy tokens [B, k] and its cache.

    first [B, 2] holds what the draft has not seen yet: n_first [B] = 1 (the pending
    token, then padding) or 2 (the last draft token of a fully accepted round, then the
    pending token). Then k - 1 steps of one token each, fed from the draft's own output.
    """
    logits, cache = inference.extend(params, cache, first, n_first, config)
    token = jnp.argmax(logits, axis=-1).astype(jnp.int32)  # [B]
    out = [token]
    one = jnp.ones_like(n_first)
    for _ in range(k - 1):  # k is static: unrolled, one program
        logits, cache = inference.extend(params, cache, token[:, None], one, config)
        token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        out.append(token)
    return jnp.stack(out, axis=1), cache


def accept_greedy(drafts: jax.Array, logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(n [B], next [B]): how many of drafts [B, k] the target's argmax agrees with, in a
    row from the first, and the target's own token after them (logits [B, k + 1, V])."""
    greedy = jnp.argmax(logits, axis=-1).astype(jnp.int32)  # [B, k + 1]: g0..gk
    k = drafts.shape[1]
    agree = drafts == greedy[:, :k]  # d_i = g_{i-1}
    n = jnp.cumprod(agree.astype(jnp.int32), axis=1).sum(axis=1)  # the agreeing prefix
    return n, jnp.take_along_axis(greedy, n[:, None], axis=1)[:, 0]


@functools.partial(jax.jit, static_argnames=("k", "target_config", "draft_config"),
                   donate_argnames=("target_cache", "draft_cache"))
def round_(target: dict, draft: dict, target_cache: Cache, draft_cache: Cache,
           pending: jax.Array, caught: jax.Array, n_first: jax.Array, *, k: int,
           target_config: ModelConfig, draft_config: ModelConfig):
    """One round: propose k, verify k + 1 in one target pass, accept, roll back.

    On entry the target's cache holds every token but `pending` [B]; the draft's lacks
    `caught` [B] too where n_first [B] is 2. Returns (emitted [B, k + 1]: the first n + 1
    are new tokens, n [B], the next pending, caught and n_first, and both caches).
    """
    start = target_cache.length  # [B]
    first = jnp.where((n_first == 2)[:, None], jnp.stack([caught, pending], 1),
                      jnp.stack([pending, jnp.zeros_like(pending)], 1))  # [B, 2]
    drafts, draft_cache = propose(draft, draft_cache, first, n_first, k, draft_config)
    logits, target_cache = verify(target, target_cache, jnp.concatenate([pending[:, None], drafts], 1),
                                  target_config)
    n, nxt = accept_greedy(drafts, logits)
    # kept: pending and the n accepted drafts. The draft has fed pending..d_{k-1}: after
    # a full acceptance it still lacks d_k, which it reads first next round.
    full = n == k
    target_cache = rollback(target_cache, start + 1 + n)
    draft_cache = rollback(draft_cache, start + 1 + n - full)
    i = jnp.arange(k + 1)
    emitted = jnp.where(i < n[:, None], jnp.pad(drafts, ((0, 0), (0, 1))), nxt[:, None])
    return emitted, n, nxt, drafts[:, -1], 1 + full.astype(jnp.int32), target_cache, draft_cache


@functools.partial(jax.jit, static_argnames=("config",), donate_argnames=("cache",))
def _prefill(params, cache, tokens, config):
    logits, cache = inference.extend(params, cache, tokens, jnp.full(tokens.shape[:1], tokens.shape[1]),
                                     config)
    return jnp.argmax(logits, axis=-1).astype(jnp.int32), cache


@dataclass
class Stats:
    """What a speculative generation did: rounds (= target passes after the prefill),
    drafts proposed and accepted, and the tokens each round produced (before cutting
    the last round to max_new_tokens)."""

    k: int
    rounds: int = 0
    accepted: int = 0
    produced: int = 0  # sum over rounds of accepted + 1

    @property
    def proposed(self) -> int:
        return self.k * self.rounds

    @property
    def acceptance(self) -> float:
        """Fraction of draft tokens the target accepted."""
        return self.accepted / max(self.proposed, 1)

    @property
    def tokens_per_pass(self) -> float:
        """New tokens per target forward pass (1 for plain decoding; at most k + 1)."""
        return self.produced / max(self.rounds, 1)


def check_draft(target_config: ModelConfig, draft_config: ModelConfig) -> None:
    if target_config.vocab_size != draft_config.vocab_size:
        raise InferenceError(f"the draft's vocabulary ({draft_config.vocab_size}) must be the "
                             f"target's ({target_config.vocab_size})")


def generate(target: dict, target_config: ModelConfig, draft: dict, draft_config: ModelConfig,
             prompt: np.ndarray, max_new_tokens: int, *, k: int = 4,
             max_len: int | None = None) -> tuple[np.ndarray, Stats]:
    """Greedy decoding of one prompt [S] with the target, sped up by the draft's guesses:
    (the max_new_tokens new tokens, int32, equal to inference.generate's greedy ones;
    Stats). max_len: cache positions of both models (default the target's seq_len); it
    must hold the prompt, the new tokens and k more (a round writes k + 1 before it
    rolls back).
    """
    if k < 1:
        raise InferenceError(f"k (draft tokens per round) must be >= 1, got {k}")
    check_draft(target_config, draft_config)
    T = max_len or target_config.seq_len
    prompt = np.asarray(prompt, np.int32)
    inference.check_fits(len(prompt), max_new_tokens, T)
    if len(prompt) + max_new_tokens + k - 1 > T:  # the last round writes up to k positions ahead
        raise InferenceError(f"a prompt of {len(prompt)} tokens plus {max_new_tokens} new tokens with "
                             f"k = {k} drafts per round needs {len(prompt) + max_new_tokens + k - 1} "
                             f"cache positions; the cache holds {T}")
    tp, dp = inference.prepare(target, target_config), inference.prepare(draft, draft_config)
    tcache = inference.init_cache(target_config, 1, T)
    dcache = inference.init_cache(draft_config, 1, T)
    pending, tcache = _prefill(tp, tcache, prompt[None], target_config)
    _, dcache = _prefill(dp, dcache, prompt[None], draft_config)
    out = [int(pending[0])]
    caught, n_first = jnp.zeros(1, jnp.int32), jnp.ones(1, jnp.int32)
    stats = Stats(k)
    while len(out) < max_new_tokens:
        emitted, n, pending, caught, n_first, tcache, dcache = round_(
            tp, dp, tcache, dcache, pending, caught, n_first, k=k,
            target_config=target_config, draft_config=draft_config)
        n0 = int(n[0])
        out.extend(np.asarray(emitted[0, :n0 + 1]).tolist())
        stats.rounds += 1
        stats.accepted += n0
        stats.produced += n0 + 1
    return np.array(out[:max_new_tokens], np.int32), stats
