"""Your answers to lesson 05's problems (the "Problems" section of
lessons/05_attention/README.md).

Replace each None with your answer: a number in the unit the comment names (an expression is
fine, e.g. 989e12 / 3.35e12), or, where the comment lists words, one of them as a string.
Check them with

    python -m shared.check 05 --problems

which says "correct" (a number within 2% of the reference), "wrong" or "not answered" for
each problem, and never shows the reference. The worked answers are in
solutions/05_attention/answers.md: read them after trying.
"""

ANSWERS = {
    1: None,  # bytes of the float32 scores
    2: None,  # KV cache of one 4096-token sequence, MiB
    3: None,  # the reference's arithmetic intensity, FLOP/B
    4: None,  # "yes" or "no"
    5: None,  # the flash schedule's intensity, FLOP/B
    6: None,  # tiles computed, a count
}
