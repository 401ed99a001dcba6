"""Your answers to lesson 09's problems (the "Problems" section of
lessons/09_efficient_inference/README.md).

Replace each None with your answer: a number in the unit the comment names (an expression is
fine, e.g. 989e12 / 3.35e12), or, where the comment lists words, one of them as a string.
Check them with

    python -m shared.check 09 --problems

which says "correct" (a number within 2% of the reference), "wrong" or "not answered" for
each problem, and never shows the reference. The worked answers are in
solutions/09_efficient_inference/answers.md: read them after trying.
"""

ANSWERS = {
    1: None,  # the KV cache, GiB
    2: None,  # the largest batch with a flat step time
    3: None,  # the paged cache's waste, a fraction of what it allocates
    4: None,  # bfloat16 bytes over int8 bytes, a ratio
    5: None,  # time saved per decode step, ms
    6: None,  # "yes" or "no"
    7: None,  # the one-row product's share of the read bandwidth, percent
}
