"""Reference answers to lesson 09's problems, each as the calculation that gives it; the
reasoning step by step is in answers.md beside this file. `python -m shared.check 09
--problems` compares exercises/09_efficient_inference/answers.py with these (numbers within 2%)."""

ANSWERS = {
    1: 2 * 20 * 8 * 128 * 2 * 32 * 2048 / 2**30,      # the KV cache, GiB
    2: 312e12 / 2.039e12 * 2 / 2,                     # the largest batch with a flat step time
    3: (16 / 2) / (300 + 16 / 2),                     # the paged cache's waste, a fraction of what it allocates
    4: 768 * 3072 * 2 / (768 * 3072 * 1 + 3072 * 4),  # bfloat16 bytes over int8 bytes, a ratio
    5: 70e9 * 2 * (1 - 1 / 8) / 3.35e12 * 1e3,        # time saved per decode step, ms
    6: "yes",                                         # "yes" or "no"
    7: 384 * 1536 * 2 / 506e-6 / 50e9 * 100,          # the one-row product's share of the read bandwidth, percent
}
