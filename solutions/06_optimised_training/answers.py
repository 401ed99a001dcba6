"""Reference answers to lesson 06's problems, each as the calculation that gives it; the
reasoning step by step is in answers.md beside this file. `python -m shared.check 06
--problems` compares exercises/06_optimised_training/answers.py with these (numbers within 2%)."""

ANSWERS = {
    1: 10_818_432 * 12,                    # bytes of float32 weights and AdamW moments
    2: 8 / 6,                              # the factor on the matmul FLOPs per token
    3: 8192 * 71_368_704 / (0.6 * 998e9),  # the step time for 60% MFU, seconds
    4: 853_120 * 4 * 2 * 3 / 4,            # bytes each device sends per step
    5: "no",                               # "yes" or "no"
    6: 6 * 2 * (6 * 32 * 256 * 1536 * 2) / 1e9,  # GB moved per step writing the stack
}
