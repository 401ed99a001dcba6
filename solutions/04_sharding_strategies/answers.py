"""Reference answers to lesson 04's problems, each as the calculation that gives it; the
reasoning step by step is in answers.md beside this file. `python -m shared.check 04
--problems` compares exercises/04_sharding_strategies/answers.py with these (numbers within 2%)."""

ANSWERS = {
    1: 8192**2 * 2 * 15 / 16,            # bytes each device sends per layer (forward)
    2: 16_384 / 4096,                    # TP's bytes over FSDP's, a ratio
    3: 312e12 / 3e11 * (2 / 2) * 7 / 8,  # the least tokens per device B/n
    4: "yes",                            # "yes" or "no"
    5: 989e12 / 4.5e11 * (2 / 2) * 3,    # the least width E
    6: (8192**2 * 2 * 7 / 8 / 4.5e11 + 2 * 4096 * 8192**2 / 989e12 * 4) * 1e3,  # ms, the forward pass
    7: 32 * 2 * (8192**2 * 2 / 8) * (2 - 1) / 2 / 1e6,  # MB each GPU sends across nodes per step
}
