"""Text from a trained model's parameters, for one prompt or many (lessons 01, 09).

    mc, params = shared.train.load_params("runs/tiny")
    generate_all(params, mc, [data.encode("def ")], max_new_tokens=40)

Naive (the default) reruns the whole window for every token (shared.sampling) and
can run past the context by sliding it, up to NAIVE_WINDOWS contexts of new tokens;
kv_cache=True serves every prompt through the continuous-batching engine
(shared.engine), whose cache holds one context: a prompt of n tokens leaves room for
seq_len - n + 1 new ones (the last token is never fed back). `check_length` says so
in one line, before any work.
The command line is `__main__`: `python -m shared.generate --help`.
"""

from __future__ import annotations

from shared import data, engine, sampling
from shared.config import Error, ModelConfig

# The naive path slides its window past the context, so only time bounds it: one full-window
# forward pass per token. It takes at most this many contexts of new tokens (tiny: 16 x 128).
NAIVE_WINDOWS = 16


def max_new_tokens_allowed(mc: ModelConfig, prompt_lengths: list[int], kv_cache: bool) -> int:
    """The most new tokens every prompt that fits the context can get: the KV cache holds
    seq_len positions (a prompt of n leaves seq_len - n + 1, the last token never fed back);
    the naive path, NAIVE_WINDOWS * seq_len. Prompts longer than the context are refused one
    by one (generate_all) and do not count here."""
    if not kv_cache:
        return NAIVE_WINDOWS * mc.seq_len
    fitting = [n for n in prompt_lengths if 0 < n <= mc.seq_len]
    return mc.seq_len - max(fitting, default=1) + 1


def check_length(mc: ModelConfig, prompt_lengths: list[int], max_new_tokens: int,
                 kv_cache: bool) -> None:
    """Raise a one-line Error if max_new_tokens is < 1 or more than the context allows."""
    if max_new_tokens < 1:
        raise Error(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
    allowed = max_new_tokens_allowed(mc, prompt_lengths, kv_cache)
    if max_new_tokens <= allowed:
        return
    if kv_cache:
        n = mc.seq_len - allowed + 1  # the longest prompt that fits
        raise Error(f"--max-new-tokens {max_new_tokens} does not fit the KV cache: a prompt of {n} "
                    f"tokens leaves room for {allowed} new ones in the model's context of "
                    f"{mc.seq_len}; ask for at most {allowed} (or --naive, which slides the window)")
    raise Error(f"--max-new-tokens {max_new_tokens} is more than the naive path's limit of "
                f"{allowed} ({NAIVE_WINDOWS} contexts of {mc.seq_len}, one full forward pass per "
                f"token); ask for at most {allowed}")


def generate_all(params, mc: ModelConfig, prompts: list, *, max_new_tokens: int, kv_cache: bool = False,
                 temperature: float = 0.8, top_k: int | None = 40, top_p: float | None = None,
                 seed: int = 0) -> list[tuple[str, str]]:
    """(text, error) per prompt (token arrays), the text being prompt + continuation; prompt
    i samples with seed + i. A prompt that cannot be served gets an error and no text;
    max_new_tokens beyond max_new_tokens_allowed is an Error before any work."""
    check_length(mc, [len(p) for p in prompts], max_new_tokens, kv_cache)
    if not kv_cache:
        results = []
        for i, p in enumerate(prompts):
            if len(p) > mc.seq_len:
                results.append(("", f"prompt {i + 1} is {len(p)} tokens (bytes), longer than the "
                                    f"model's context of {mc.seq_len}"))
                continue
            out = sampling.generate(params, mc, p, max_new_tokens, temperature=temperature,
                                    top_k=top_k, top_p=top_p, seed=seed + i)
            results.append((data.decode(out), ""))
        return results
    eng = engine.Engine(params, mc, slots=min(len(prompts), 8), temperature=temperature,
                        top_k=top_k, top_p=top_p)
    requests = [engine.Request(i, p.astype("int32"), max_new_tokens, seed=seed + i)
                for i, p in enumerate(prompts)]
    by_id = {c.id: c for c in eng.run(requests)}
    return [(data.decode(list(p) + list(by_id[i].tokens)), by_id[i].error.replace(f"request {i}", f"prompt {i + 1}"))
            for i, p in enumerate(prompts)]
