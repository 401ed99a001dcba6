"""Reference answers to lesson 10's problems, each as the calculation that gives it; the
reasoning step by step is in answers.md beside this file. `python -m shared.check 10
--problems` compares exercises/10_pallas_aot/answers.py with these (numbers within 2%)."""

ANSWERS = {
    1: (1024 // 128) * (768 // 256),                                             # programs in the grid, a count
    2: 2 * 4096**3 / ((4096 * 4096 * (4096 // 512) * 2) * 2 + 4096 * 4096 * 2),  # the tiled matmul's intensity, FLOP/B
    3: "no",                                                                     # "yes" or "no"
    4: sum(range(1, 2048 // 128 + 1)),                                           # tiles computed, a count
    5: 10_818_432 * 4 + 32 * 256 * 4,                                            # argument bytes of the compiled forward pass
    6: "yes",                                                                    # "yes" or "no"
}
