"""Reference answers to lesson 01's problems, each as the calculation that gives it; the
reasoning step by step is in answers.md beside this file. `python -m shared.check 01
--problems` compares exercises/01_llm_from_scratch/answers.py with these (numbers within 2%)."""

ANSWERS = {
    1: 6 * (4 * 384**2 + 2 * 384 * 1536) + 256 * 384,               # matmul parameters N of the `small` preset, a count
    2: 12 * 6 * 256 * 384 / (6 * 10_715_136 + 12 * 6 * 256 * 384),  # attention's share of `small`'s training FLOPs per token, a fraction (0.25, not 25)
    3: 6 * 819_200 / (12 * 4 * 128),                                # the context S at which tiny's attention FLOPs equal its 6N, tokens
    4: "no",                                                        # "yes" or "no"
    5: 100_000 * 935_460_864 / 312e12,                              # MFU of `125m` at 100,000 tokens/s on an A100, a fraction
    6: 32 ** 0.5,                                                   # standard deviation of q·k before scaling, D = 32
}
