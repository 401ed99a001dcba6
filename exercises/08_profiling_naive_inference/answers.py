"""Your answers to lesson 08's problems (the "Problems" section of
lessons/08_profiling_naive_inference/README.md).

Replace each None with your answer: a number in the unit the comment names (an expression is
fine, e.g. 989e12 / 3.35e12), or, where the comment lists words, one of them as a string.
Check them with

    python -m shared.check 08 --problems

which says "correct" (a number within 2% of the reference), "wrong" or "not answered" for
each problem, and never shows the reference. The worked answers are in
solutions/08_profiling_naive_inference/answers.md: read them after trying.
"""

ANSWERS = {
    1: None,  # MBU, a fraction
    2: None,  # "training", "prefill" or "decode"
    3: None,  # the smallest batch B, an integer
    4: None,  # naive FLOPs over cached FLOPs, a ratio
    5: None,  # the least time of the decode step, ms
    6: None,  # "yes" or "no"
    7: None,  # the least time of the copies, ms
}
