"""Your answers to lesson 01's problems (the "Problems" section of
lessons/01_llm_from_scratch/README.md).

Replace each None with your answer: a number in the unit the comment names (an expression is
fine, e.g. 989e12 / 3.35e12), or, where the comment lists words, one of them as a string.
Check them with

    python -m shared.check 01 --problems

which says "correct" (a number within 2% of the reference), "wrong" or "not answered" for
each problem, and never shows the reference. The worked answers are in
solutions/01_llm_from_scratch/answers.md: read them after trying.
"""

ANSWERS = {
    1: None,  # matmul parameters N of the `small` preset, a count
    2: None,  # attention's share of `small`'s training FLOPs per token, a fraction (0.25, not 25)
    3: None,  # the context S at which tiny's attention FLOPs equal its 6N, tokens
    4: None,  # "yes" or "no"
    5: None,  # MFU of `125m` at 100,000 tokens/s on an A100, a fraction
    6: None,  # standard deviation of q·k before scaling, D = 32
}
