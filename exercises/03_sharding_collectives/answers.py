"""Your answers to lesson 03's problems (the "Problems" section of
lessons/03_sharding_collectives/README.md).

Replace each None with your answer: a number in the unit the comment names (an expression is
fine, e.g. 989e12 / 3.35e12), or, where the comment lists words, one of them as a string.
Check them with

    python -m shared.check 03 --problems

which says "correct" (a number within 2% of the reference), "wrong" or "not answered" for
each problem, and never shows the reference. The worked answers are in
solutions/03_sharding_collectives/answers.md: read them after trying.
"""

ANSWERS = {
    1: None,  # elements each device holds, a count
    2: None,  # bytes each device sends
    3: None,  # time of the all-gather, ms
    4: None,  # the factor (bytes at n = 1024 over bytes at n = 8)
    5: None,  # "all-gather", "reduce-scatter", "all-reduce", "all-to-all" or "none"
    6: None,  # the modelled link of one simulated device, GB/s
}
