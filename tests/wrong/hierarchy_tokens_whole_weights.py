"""Wrong answer (exercise 4.10): DP across slices priced as if each chip all-reduced whole
gradients, forgetting that FSDP within the slice left it 1/n_within of them."""

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_hybrid_tokens_per_chip", "only its 1/")


def hybrid_tokens_per_chip(peak, fast_bw, network_bw, n_within, n_across, itemsize):
    fsdp = peak / fast_bw * itemsize / 2 * (n_within - 1) / n_within
    dp = peak / network_bw * itemsize / 3 * (n_across - 1) / n_across
    return max(fsdp, dp)
