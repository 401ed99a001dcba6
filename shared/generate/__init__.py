"""Text from a trained model's parameters, for one prompt or many (lessons 01, 09).

    mc, params = shared.train.load_params("runs/tiny")
    generate_all(params, mc, [data.encode("def ")], max_new_tokens=40)

Naive (the default) reruns the whole window for every token (shared.sampling) and
can run past the context by sliding it; kv_cache=True serves every prompt through
the continuous-batching engine (shared.engine), which stops a request at the context.
The command line is `__main__`: `python -m shared.generate --help`.
"""

from __future__ import annotations

from shared import data, engine, sampling
from shared.config import ModelConfig


def generate_all(params, mc: ModelConfig, prompts: list, *, max_new_tokens: int, kv_cache: bool = False,
                 temperature: float = 0.8, top_k: int | None = 40, top_p: float | None = None,
                 seed: int = 0) -> list[tuple[str, str]]:
    """(text, error) per prompt (token arrays), the text being prompt + continuation; prompt
    i samples with seed + i. A prompt that cannot be served gets an error and no text."""
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
