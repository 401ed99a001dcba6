"""Reference answers to lesson 08's problems, each as the calculation that gives it; the
reasoning step by step is in answers.md beside this file. `python -m shared.check 08
--problems` compares exercises/08_profiling_naive_inference/answers.py with these (numbers within 2%)."""

ANSWERS = {
    1: 7e9 * 2 / 20e-3 / 3.35e12,                              # MBU, a fraction
    2: "decode",                                               # "training", "prefill" or "decode"
    3: 241,                                                    # the smallest batch B, an integer
    4: 1024 / 2,                                               # naive FLOPs over cached FLOPs, a ratio
    5: (127_598_592 * 2 + 8 * 1024 * 55_296) / 3.35e12 * 1e3,  # the least time of the decode step, ms
    6: "no",                                                   # "yes" or "no"
    7: 2 * (2 * 18 * 12 * 64 * 4) * 1024 / 54e9 * 1e3,         # the least time of the copies, ms
}
