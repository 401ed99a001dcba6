"""Your answers to lesson 10's problems (the "Problems" section of
lessons/10_pallas_aot/README.md).

Replace each None with your answer: a number in the unit the comment names (an expression is
fine, e.g. 989e12 / 3.35e12), or, where the comment lists words, one of them as a string.
Check them with

    python -m shared.check 10 --problems

which says "correct" (a number within 2% of the reference), "wrong" or "not answered" for
each problem, and never shows the reference. The worked answers are in
solutions/10_pallas_aot/answers.md: read them after trying.
"""

ANSWERS = {
    1: None,  # programs in the grid, a count
    2: None,  # the tiled matmul's intensity, FLOP/B
    3: None,  # "yes" or "no"
    4: None,  # tiles computed, a count
    5: None,  # argument bytes of the compiled forward pass
    6: None,  # "yes" or "no"
}
