"""Reference answers to lesson 05's problems, each as the calculation that gives it; the
reasoning step by step is in answers.md beside this file. `python -m shared.check 05
--problems` compares exercises/05_attention/answers.py with these (numbers within 2%)."""

ANSWERS = {
    1: 4 * 1 * 16 * 8192**2,                 # bytes of the float32 scores
    2: 2 * 20 * 4 * 128 * 2 * 4096 / 2**20,  # KV cache of one 4096-token sequence, MiB
    3: 128 / (2 * 2),                        # the reference's arithmetic intensity, FLOP/B
    4: "no",                                 # "yes" or "no"
    5: 2 * 256 / 2,                          # the flash schedule's intensity, FLOP/B
    6: 2 * sum(range(1, 17)),                # tiles computed, a count
}
