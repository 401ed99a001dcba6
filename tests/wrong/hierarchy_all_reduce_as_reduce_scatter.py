"""Wrong answer (exercise 4.11): the gradient's reduction within a slice priced as a
reduce-scatter whichever collective the compiler emits; an all-reduce sends twice as much."""

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_hybrid_bytes_per_level", "an all-reduce twice that")


def hybrid_bytes_per_level(E, L, n_across, n_within, itemsize, grad_reduce):
    weight = E * E * itemsize
    gather = weight * (n_within - 1) / n_within
    across = 2 * (weight / n_within) * (n_across - 1) / n_across
    return {"fast": L * 2 * gather, "network": L * across}
