"""Your answers to lesson 02's problems (the "Problems" section of
lessons/02_single_chip_performance/README.md).

Replace each None with your answer: a number in the unit the comment names (an expression is
fine, e.g. 989e12 / 3.35e12), or, where the comment lists words, one of them as a string.
Check them with

    python -m shared.check 02 --problems

which says "correct" (a number within 2% of the reference), "wrong" or "not answered" for
each problem, and never shows the reference. The worked answers are in
solutions/02_single_chip_performance/answers.md: read them after trying.
"""

ANSWERS = {
    1: None,  # the H200's bfloat16 ridge point, FLOP/B
    2: None,  # the smallest n, an integer
    3: None,  # the least time of the add on an H100, ms
    4: None,  # "yes" or "no"
    5: None,  # MFU of the 8192² matmul, a fraction
}
