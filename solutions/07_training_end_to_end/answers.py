"""Reference answers to lesson 07's problems, each as the calculation that gives it; the
reasoning step by step is in answers.md beside this file. `python -m shared.check 07
--problems` compares exercises/07_training_end_to_end/answers.py with these (numbers within 2%)."""

ANSWERS = {
    1: (2048 / 2) / 16_578,             # the wasted fraction padded, estimated (0.05, not 5)
    2: 405e9 * 2 / 80e9,                # the fit floor, chips (a fraction, as the lesson writes them)
    3: 2 * 70e9 * 8192 / 0.5 / 989e12,  # the prefill floor, chips
    4: 8e9 * 2 * 100 / 3.35e12,         # the decode floor, chips
    5: (300 + 1000 * 2 / 2) / 86_400,   # the share of wall time lost to failures, a fraction
    6: "prefill",                       # "fit", "prefill" or "decode"
}
