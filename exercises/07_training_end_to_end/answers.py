"""Your answers to lesson 07's problems (the "Problems" section of
lessons/07_training_end_to_end/README.md).

Replace each None with your answer: a number in the unit the comment names (an expression is
fine, e.g. 989e12 / 3.35e12), or, where the comment lists words, one of them as a string.
Check them with

    python -m shared.check 07 --problems

which says "correct" (a number within 2% of the reference), "wrong" or "not answered" for
each problem, and never shows the reference. The worked answers are in
solutions/07_training_end_to_end/answers.md: read them after trying.
"""

ANSWERS = {
    1: None,  # the wasted fraction padded, estimated (0.05, not 5)
    2: None,  # the fit floor, chips (a fraction, as the lesson writes them)
    3: None,  # the prefill floor, chips
    4: None,  # the decode floor, chips
    5: None,  # the share of wall time lost to failures, a fraction
    6: None,  # "fit", "prefill" or "decode"
}
