"""Your answers to lesson 06's problems (the "Problems" section of
lessons/06_optimised_training/README.md).

Replace each None with your answer: a number in the unit the comment names (an expression is
fine, e.g. 989e12 / 3.35e12), or, where the comment lists words, one of them as a string.
Check them with

    python -m shared.check 06 --problems

which says "correct" (a number within 2% of the reference), "wrong" or "not answered" for
each problem, and never shows the reference. The worked answers are in
solutions/06_optimised_training/answers.md: read them after trying.
"""

ANSWERS = {
    1: None,  # bytes of float32 weights and AdamW moments
    2: None,  # the factor on the matmul FLOPs per token
    3: None,  # the step time for 60% MFU, seconds
    4: None,  # bytes each device sends per step
    5: None,  # "yes" or "no"
    6: None,  # GB moved per step writing the stack
}
