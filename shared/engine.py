"""A continuous-batching engine: decode slots, a request queue, prompt-length buckets (lesson 09).

    engine = Engine(params, config, slots=8)
    done = engine.run([Request(0, prompt, max_new_tokens=64), ...])

Static batching (inference.generate) starts a batch together and keeps every row
until the longest is done. Here each of `slots` rows is a decode slot; every
`step()`:

  1. admits queued requests, oldest first, into free slots (`admit`, the scheduler's
     first half): prefill of the prompt, right-padded to the smallest bucket that holds
     it, written into the slot's cache; its first token comes from the prefill's logits;
  2. runs one decode step for all slots together (free slots take no step);
  3. finishes requests at max_new_tokens or at a stop sequence (`retire`, its second
     half), freeing their slots for the next step's admissions.

Every program is compiled at start-up: one prefill per bucket and one decode, so the
number of programs is len(buckets) + 1 whatever the traffic. A request draws its
tokens from its own seed and token index (inference.sample), and reads only its own
slot, so its output does not depend on the other requests.

Where the keys and values live is the `kv` object's business: ContiguousKV (below)
reserves max_len positions per slot; shared.paged.PagedKV hands out fixed-size pages.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from shared import compile_options, inference, serving_tp
from shared.collectives import Collective, hlo_collectives
from shared.config import ModelConfig


@dataclass(frozen=True)
class Request:
    id: int
    prompt: np.ndarray  # int tokens [P]
    max_new_tokens: int = 32
    stop: tuple[tuple[int, ...], ...] = ()  # token sequences that end the output (not included)
    seed: int = 0


@dataclass
class Completion:
    id: int
    tokens: np.ndarray  # int32 [n]: the generated tokens, a stop sequence removed
    finish: str  # "length" (max tokens or full context), "stop", or "rejected"
    error: str = ""  # why a request was rejected
    submitted: float = 0.0  # time.perf_counter() at submit
    first_token: float | None = None
    finished: float = 0.0

    @property
    def latency(self) -> float:
        return self.finished - self.submitted


def cut_at_stop(tokens: list[int], stops: tuple[tuple[int, ...], ...]) -> int | None:
    """Length of tokens without a stop sequence it ends with, or None if it ends with none."""
    for s in stops:
        if s and len(tokens) >= len(s) and tuple(tokens[-len(s):]) == tuple(s):
            return len(tokens) - len(s)
    return None


def default_buckets(max_len: int, smallest: int = 16) -> tuple[int, ...]:
    """Powers of two from `smallest`, then max_len: a padded prompt wastes under half its length."""
    buckets, b = [], smallest
    while b < max_len:
        buckets.append(b)
        b *= 2
    return (*buckets, max_len)


class ContiguousKV:
    """One cache row of max_len positions per slot, reserved whether it is used or not."""

    def __init__(self, config: ModelConfig, slots: int, max_len: int | None = None):
        self.config, self.slots = config, slots
        self.max_len = max_len or config.seq_len
        self.state = inference.init_cache(config, slots, self.max_len)

    # ---- device programs (pure; the engine compiles them) ----

    def prefill(self, params, cache, tokens, n, slot):
        """tokens [1, S] with n [1] real ones into row `slot`; logits [1, V] and the cache.

        The prompt runs against a fresh cache of S positions (attention over S, not
        max_len), which is then copied into the slot's row.
        """
        fresh = inference.init_cache(self.config, 1, tokens.shape[1])
        logits, fresh = inference.extend(params, fresh, tokens, n, self.config)
        put = lambda big, small: jax.lax.dynamic_update_slice(big, small, (slot, 0, 0, 0))
        return logits, inference.Cache(jax.tree.map(put, cache.k, fresh.k),
                                       jax.tree.map(put, cache.v, fresh.v),
                                       cache.length.at[slot].set(n[0]))

    def decode(self, params, cache, tokens, n_valid):
        return inference.extend(params, cache, tokens, n_valid, self.config)

    def prefill_aux(self, slot: int) -> tuple:
        return ()

    def decode_aux(self, lengths: np.ndarray) -> tuple:
        return ()

    # ---- host bookkeeping ----

    def refusal(self, n_prompt: int, budget: int) -> str:
        return ""  # a request that fits max_len fits its row

    def can_admit(self, n_prompt: int, budget: int) -> bool:
        return True

    def admit(self, slot: int, n_prompt: int, budget: int) -> None:
        pass

    def grow(self, slot: int, length: int) -> None:
        pass

    def release(self, slot: int) -> None:
        pass

    def memory(self, lengths: list[int]) -> tuple[int, int]:
        """(bytes allocated for keys and values, bytes holding a live token's)."""
        per = inference.kv_bytes_per_token(self.config)
        return self.slots * self.max_len * per, sum(lengths) * per


def admit(queue: collections.deque, active: list, kv, budget: Callable[[Request], int]
          ) -> list[tuple[int, tuple[Request, float]]]:
    """The scheduler's first half (lesson 09's build exercise 9.8 writes it): the waiting
    (request, submitted) entries that start now, each with its free slot. Oldest first and
    none overtakes: when the oldest does not fit the memory (kv.can_admit), the rest wait
    behind it. Each is taken off `queue` and its memory reserved (kv.admit) before the next
    is asked about."""
    started = []
    for slot in [i for i, s in enumerate(active) if s is None]:
        if not queue:
            break
        request = queue[0][0]
        n, b = len(request.prompt), budget(request)
        if not kv.can_admit(n, b):
            break  # oldest first: later requests wait behind it rather than overtake
        kv.admit(slot, n, b)
        started.append((slot, queue.popleft()))
    return started


def retire(active: list, kv) -> list[tuple[int, "_Slot", str]]:
    """The scheduler's second half (exercise 9.9): end every active request whose output ends
    with one of its stop sequences ("stop", the sequence cut off) or fills its budget
    ("length"); free its slot (active[slot] = None) and its memory (kv.release)."""
    done = []
    for slot, s in enumerate(active):
        if s is None:
            continue
        cut = cut_at_stop(s.out, s.request.stop)
        if cut is not None:
            del s.out[cut:]
            finish = "stop"
        elif len(s.out) >= s.budget:
            finish = "length"
        else:
            continue
        active[slot] = None
        kv.release(slot)
        done.append((slot, s, finish))
    return done


@dataclass
class _Slot:
    request: Request
    budget: int  # tokens it may generate: max_new_tokens, capped by the context
    length: int  # cache positions filled
    out: list[int] = field(default_factory=list)
    completion: Completion | None = None


class Engine:
    def __init__(self, params: dict, config: ModelConfig, *, slots: int = 4,
                 max_len: int | None = None, buckets: tuple[int, ...] | None = None,
                 kv=None, temperature: float = 0.0, top_k: int | None = None,
                 top_p: float | None = None, mesh: Mesh | None = None):
        """mesh: serve tensor-parallel over its `model` axis (shared.serving_tp); None: one device."""
        self.config = config
        self.kv = kv or ContiguousKV(config, slots, max_len)
        self.slots, self.max_len = self.kv.slots, self.kv.max_len
        self.buckets = tuple(sorted(buckets or default_buckets(self.max_len)))
        if self.buckets[-1] < self.max_len:
            raise inference.InferenceError(f"the largest bucket {self.buckets[-1]} is shorter than "
                                           f"max_len {self.max_len}: long prompts would have none")
        if self.buckets[-1] > self.max_len:
            raise inference.InferenceError(f"bucket {self.buckets[-1]} is longer than max_len {self.max_len}")
        out_shardings = None  # one device: wherever the inputs are
        if mesh is not None:
            params, self.kv.state, state_shardings = serving_tp.place(params, self.kv.state, config, mesh)
            out_shardings = (NamedSharding(mesh, P()), state_shardings)
        self.params = params = inference.prepare(params, config)
        sample = lambda logits, seeds, counts: inference.sample(
            logits, seeds, counts, temperature=temperature, top_k=top_k, top_p=top_p)

        def prefill(params, state, tokens, n, slot, seed, *aux):
            logits, state = self.kv.prefill(params, state, tokens, n, slot, *aux)
            return sample(logits, seed[None], jnp.zeros(1, jnp.int32)), state

        def decode(params, state, tokens, n_valid, seeds, counts, *aux):
            logits, state = self.kv.decode(params, state, tokens, n_valid, *aux)
            return sample(logits, seeds, counts), state

        i32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.int32)
        B, options = self.slots, compile_options.for_dtype(config.dtype)
        self._prefill = {
            b: jax.jit(prefill, donate_argnums=1, out_shardings=out_shardings).lower(
                params, self.kv.state, i32(1, b), i32(1), i32(), i32(), *self.kv.prefill_aux(0)
            ).compile(compiler_options=options)
            for b in self.buckets}
        self._decode = jax.jit(decode, donate_argnums=1, out_shardings=out_shardings).lower(
            params, self.kv.state, i32(B, 1), i32(B), i32(B), i32(B),
            *self.kv.decode_aux(np.zeros(B, np.int32))).compile(compiler_options=options)
        self.queue: collections.deque[tuple[Request, float]] = collections.deque()
        self.active: list[_Slot | None] = [None] * B
        self.steps = 0  # decode steps run
        self._memory = np.zeros(2)  # (allocated, used) KV bytes, summed over decode steps

    @property
    def compiled_programs(self) -> int:
        return len(self._prefill) + 1

    def decode_collectives(self) -> list[Collective]:
        """The collectives one decode step runs (none on one device)."""
        return hlo_collectives(self._decode.as_text())

    @property
    def idle(self) -> bool:
        return not self.queue and all(s is None for s in self.active)

    def submit(self, request: Request) -> Completion | None:
        """Queue a request; a request that can never be served is answered at once, rejected."""
        now = time.perf_counter()
        n = len(request.prompt)
        error = ""
        if n == 0:
            error = "the prompt is empty"
        elif n > self.max_len:
            error = f"the prompt is {n} tokens, longer than the context of {self.max_len}"
        elif request.max_new_tokens < 1:
            error = f"max_new_tokens must be >= 1, got {request.max_new_tokens}"
        else:
            error = self.kv.refusal(n, self._budget(request))
        if error:
            return Completion(request.id, np.zeros(0, np.int32), "rejected", f"request {request.id}: {error}",
                              now, None, now)
        self.queue.append((request, now))
        return None

    def _budget(self, request: Request) -> int:
        # Token i is fed back at position n + i - 1; the last one is never fed back.
        return min(request.max_new_tokens, self.max_len - len(request.prompt) + 1)

    def _start(self) -> list[Completion]:
        """Prefill every request `admit` starts; those done at their first token finish here."""
        done = []
        while started := admit(self.queue, self.active, self.kv, self._budget):
            for slot, (request, submitted) in started:
                n = len(request.prompt)
                bucket = next(b for b in self.buckets if b >= n)
                tokens = np.zeros((1, bucket), np.int32)  # [1, bucket], right-padded
                tokens[0, :n] = request.prompt
                first, self.kv.state = self._prefill[bucket](
                    self.params, self.kv.state, tokens, np.array([n], np.int32), np.int32(slot),
                    np.int32(request.seed), *self.kv.prefill_aux(slot))
                self.active[slot] = _Slot(request, self._budget(request), n, [int(first[0])],
                                          Completion(request.id, np.zeros(0, np.int32), "", "",
                                                     submitted, time.perf_counter()))
            done += self._retire()  # its slot is free again for the next admit
        return done

    def _retire(self) -> list[Completion]:
        now, done = time.perf_counter(), []
        for _, s, finish in retire(self.active, self.kv):
            c = s.completion
            c.tokens, c.finish, c.finished = np.array(s.out, np.int32), finish, now
            done.append(c)
        return done

    def step(self) -> list[Completion]:
        """Admit what fits, then one decode step for every active slot; the requests that finished."""
        done = self._start()
        live = [i for i, s in enumerate(self.active) if s is not None]
        if not live:
            return done
        B = self.slots
        tokens, n_valid, seeds, counts, lengths = (np.zeros(B, np.int32) for _ in range(5))
        for i in live:
            s = self.active[i]
            self.kv.grow(i, s.length)  # the step writes position s.length
            tokens[i], n_valid[i], seeds[i], counts[i], lengths[i] = \
                s.out[-1], 1, s.request.seed, len(s.out), s.length
        self._track_memory()
        new, self.kv.state = self._decode(self.params, self.kv.state, tokens[:, None], n_valid,
                                          seeds, counts, *self.kv.decode_aux(lengths))
        new = np.asarray(new)
        self.steps += 1
        for i in live:
            self.active[i].length += 1
            self.active[i].out.append(int(new[i]))
        return done + self._retire()

    def _track_memory(self) -> None:
        self._memory += self.kv.memory([s.length + 1 for s in self.active if s is not None])

    @property
    def mean_memory(self) -> tuple[float, float]:
        """(allocated, used) KV bytes averaged over the decode steps run so far: what the
        cache held for the workload as a whole, not at one lucky or unlucky step."""
        return tuple(self._memory / max(self.steps, 1))

    def run(self, requests: list[Request]) -> list[Completion]:
        """Serve all requests (all queued at once); completions in the order they finished."""
        done = [c for r in requests if (c := self.submit(r)) is not None]
        while not self.idle:
            done += self.step()
        return done
