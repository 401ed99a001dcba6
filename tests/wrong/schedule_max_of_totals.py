"""Wrong answer (exercise 4.9): each layer costs the slower of its gather and its matmul, L
times over, as if the first gather could hide behind a matmul before it."""

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_fsdp_forward_overlapped", "the first gather has nothing to hide behind")


def fsdp_forward_overlapped(B, E, L, n, peak, link, itemsize):
    matmul = 2 * (B / n) * E * E / peak
    gather = E * E * itemsize * (n - 1) / n / link
    return L * max(gather, matmul)
