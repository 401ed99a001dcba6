"""Your answers to lesson 04's problems (the "Problems" section of
lessons/04_sharding_strategies/README.md).

Replace each None with your answer: a number in the unit the comment names (an expression is
fine, e.g. 989e12 / 3.35e12), or, where the comment lists words, one of them as a string.
Check them with

    python -m shared.check 04 --problems

which says "correct" (a number within 2% of the reference), "wrong" or "not answered" for
each problem, and never shows the reference. The worked answers are in
solutions/04_sharding_strategies/answers.md: read them after trying.
"""

ANSWERS = {
    1: None,  # bytes each device sends per layer (forward)
    2: None,  # TP's bytes over FSDP's, a ratio
    3: None,  # the least tokens per device B/n
    4: None,  # "yes" or "no"
    5: None,  # the least width E
    6: None,  # ms, the forward pass
    7: None,  # MB each GPU sends across nodes per step
}
