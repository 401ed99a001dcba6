"""Wrong answer (exercise 4.11): every chip all-reduces the whole gradient across slices, as DP
without FSDP would; after FSDP within a slice a chip holds, and sends, only its rows."""

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_hybrid_bytes_per_level", "only the rows it holds")


def hybrid_bytes_per_level(E, L, n_across, n_within, itemsize, grad_reduce):
    weight = E * E * itemsize
    gather = weight * (n_within - 1) / n_within
    reduce = gather if grad_reduce == "reduce-scatter" else 2 * gather
    return {"fast": L * (gather + reduce), "network": L * 2 * weight * (n_across - 1) / n_across}
