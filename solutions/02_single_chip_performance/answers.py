"""Reference answers to lesson 02's problems, each as the calculation that gives it; the
reasoning step by step is in answers.md beside this file. `python -m shared.check 02
--problems` compares exercises/02_single_chip_performance/answers.py with these (numbers within 2%)."""

ANSWERS = {
    1: 989e12 / 4.8e12,                  # the H200's bfloat16 ridge point, FLOP/B
    2: 1181,                             # the smallest n, an integer
    3: 3 * 256 * 2**20 / 3.35e12 * 1e3,  # the least time of the add on an H100, ms
    4: "no",                             # "yes" or "no"
    5: 2 * 8192**3 / 1.56e-3 / 989e12,   # MFU of the 8192² matmul, a fraction
}
